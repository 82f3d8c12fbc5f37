/**
 * `#/search/<text>` — find what a text names and go there: a height → its block; 64 hex
 * digits → a transaction (the order or group it created, if it did), else a block hash, else
 * an order, else a group; sec1 text → that
 * account; a genesis name or "dev:name" → its account. No match → what was tried, and why.
 */

import {el} from "../ui.js";
import {NOT_FOUND, RpcError} from "../rpc.js";
import {formatAddress, parseAddress} from "../verify/bech32m.js";

const MAX_TEXT = 200;

/** Go to `hash`, replacing the search entry in the history (Back returns to the page before). */
function go(hash) {
  // Only while the reader still waits on this search (an answer may come after they left).
  if (window.location.hash.startsWith("#/search/")) window.location.replace(hash);
}

/**
 * Where a transaction hash leads: an order id or group id is the hash of the transaction that
 * created it, so a successful `order.create` or `group.open` leads to the order or group.
 */
function txRoute(answer) {
  const created = answer.receipt && answer.receipt.ok;
  if (created && answer.tx.type === "order.create") return `#/order/${answer.hash}`;
  if (created && answer.tx.type === "group.open") return `#/group/${answer.hash}`;
  return `#/tx/${answer.hash}`;
}

/**
 * Ask the node whether a 64-hex id is a transaction, block, order or group (in that order).
 * @returns {Promise<{route: string|null, tried: string[]}>}
 */
async function lookupHash(ctx, hex) {
  const attempts = [
    ["a transaction", "sec_getTransaction", {hash: hex}, txRoute],
    ["a block hash", "sec_getBlock", {hash: hex}, (r) => `#/block/${r.header.height}`],
    ["an order id", "sec_getOrder", {order_id: hex}, () => `#/order/${hex}`],
    ["a group id", "sec_getGroup", {group_id: hex}, () => `#/group/${hex}`],
  ];
  const tried = [];
  for (const [what, method, params, route] of attempts) {
    try {
      const result = await ctx.rpc.call(method, params);
      if (result && result.exists === false) {
        tried.push(`${what} (${method}: none)`);
        continue;
      }
      return {route: route(result), tried};
    } catch (error) {
      if (!(error instanceof RpcError) || error.code !== NOT_FOUND) throw error;
      tried.push(`${what} (${method}: ${error.message})`);
    }
  }
  return {route: null, tried};
}

/**
 * Render the search page (it usually redirects at once).
 * @param {object} ctx
 * @param {HTMLElement} view
 * @param {string} raw the search text
 */
export async function render(ctx, view, raw) {
  const text = String(raw || "").trim().slice(0, MAX_TEXT);
  const input = document.getElementById("search");
  if (input && input.value !== text) input.value = text;
  view.append(el("h1", {text: "Search"}));
  const status = el("p", {role: "status", text: `Looking for “${text}”…`});
  view.append(status);
  let tried = [];
  try {
    if (/^\d{1,19}$/.test(text.replace(/[,_ ]/g, ""))) {
      return go(`#/block/${BigInt(text.replace(/[,_ ]/g, ""))}`);
    }
    const hex = text.toLowerCase().replace(/^0x/, "");
    if (/^[0-9a-f]{64}$/.test(hex)) {
      const found = await lookupHash(ctx, hex);
      if (found.route) return go(found.route);
      tried = found.tried;
    } else if (/^sec1/i.test(text)) {
      let address;
      try {
        address = formatAddress(parseAddress(text));
      } catch (error) {
        tried = [`a sec1 address: ${error.message}`];
      }
      if (address) return go(`#/account/${address}`);
    } else {
      const address = ctx.names.resolve(text);
      if (address) return go(`#/account/${address}`);
      tried = [`a block height (digits only)`, `a 64-digit hex hash or id`,
        `a sec1 address (42 characters)`,
        `an account name of the genesis file (${[...ctx.names.byName.keys()].slice(0, 12).join(", ") || "none"}), also as dev:NAME`];
    }
  } catch (error) {
    status.textContent = `The search for “${text}” failed: ${error.message}`;
    return undefined;
  }
  status.textContent = `No match for “${text}”.`;
  view.append(el("div", {class: "no-match", dataset: {testid: "no-match"}},
    el("p", {text: "What was tried:"}),
    el("ul", {}, tried.map((line) => el("li", {text: line})))));
  return undefined;
}
