/**
 * `#/` — the network: head, block time, view, mempool, peers, validators with their last
 * signed height, recent blocks with finality (sec_getNetwork), new blocks live from newHeads,
 * and a "Start here" box listing the genesis accounts by role.
 */

import {el, append, errorBox, fields, formatInt, section, shortHash, table, timeElement} from "../ui.js";
import {accountLink, blockLink} from "../links.js";

// As many rows as sec_getNetwork gives: the list stays one screen, one keyboard stop per row.
const MAX_ROWS = 20;
const REFRESH_MS = 2000;
/** The role an account is listed under: the first of these it holds. */
const ROLE_PRIORITY = ["merchant", "arbiter", "issuer", "admin", "leader", "member"];
/** The order of the lists: merchants first (what a newcomer looks for), then buyers. */
const ROLE_ORDER = ["merchant", "member", "leader", "arbiter", "issuer", "admin"];
const ROLE_HINT = {
  merchant: "see its trust score", member: "see its orders", arbiter: "resolves disputes",
  issuer: "issues credits", admin: "registers accounts", leader: "runs a pickup point",
};

function mainRole(roles) {
  return ROLE_PRIORITY.find((role) => roles.includes(role)) || roles[0] || "member";
}

function startHere(ctx) {
  const accounts = [...ctx.names.byName.values()].filter((e) => e.kind === "account");
  const box = el("section", {class: "start-here", "aria-labelledby": "start-here-title"},
    el("h2", {id: "start-here-title", text: "Start here"}),
    el("p", {text: "Each account below is named in this network's genesis file. Open a merchant to see its trust score, why it has it, and verify it in your browser. Or search by block height, transaction or order id, sec1 address or name."}));
  if (accounts.length === 0) {
    box.append(el("p", {text: "The genesis file names no accounts."}));
    return box;
  }
  const byRole = new Map();
  for (const account of accounts) {
    const role = mainRole(account.roles);
    if (!byRole.has(role)) byRole.set(role, []);
    byRole.get(role).push(account);
  }
  const roles = [...byRole.keys()].sort((a, b) => ROLE_ORDER.indexOf(a) - ROLE_ORDER.indexOf(b));
  for (const role of roles) {
    const list = el("ul", {class: "accounts"});
    for (const account of byRole.get(role)) {
      list.append(el("li", {},
        el("a", {href: `#/account/${account.address}`, text: account.name}),
        ` — ${ROLE_HINT[role] || role}`));
    }
    const heading = role === "member" ? "Buyers and members" : `${role[0].toUpperCase()}${role.slice(1)}s`;
    box.append(el("h3", {text: heading}), list);
  }
  return box;
}

function blockRow(block) {
  const row = el("tr", {dataset: {testid: "block-row", height: String(block.height)}});
  row.replaceChildren(...blockCells(block));
  return row;
}

function blockCells(block) {
  const finality = block.finality_ms === null || block.finality_ms === undefined
    ? "—" : `${formatInt(block.finality_ms)} ms`;
  return [
    el("td", {}, blockLink(block.height)),
    el("td", {}, el("code", {title: block.hash, text: shortHash(block.hash)})),
    el("td", {}, timeElement(block.timestamp_ms, {relativeOnly: true})),
    el("td", {text: block.tx_count ?? "—"}),
    el("td", {text: block.signers ?? "—"}),
    el("td", {text: finality}),
  ].map((cell) => cell);
}

function blockTime(all) {
  // Block 0 carries the genesis time, not a block interval: a young chain would average it in.
  const recent = all.filter((block) => Number(block.height) > 0);
  if (recent.length < 2) return "—";
  const newest = Number(recent[0].timestamp_ms);
  const oldest = Number(recent[recent.length - 1].timestamp_ms);
  return `${((newest - oldest) / (recent.length - 1) / 1000).toFixed(2)} s (average of the last ${recent.length} blocks)`;
}

function statusPanel(net) {
  const peers = net.peers.length === 0 ? "none"
    : net.peers.map((p) => p.name || p.host || p.address || "unknown").join(", ");
  return fields([
    ["Head", append(el("span"), blockLink(net.height), " ", timeElement(net.head_time_ms))],
    ["Block time", blockTime(net.recent_blocks)],
    ["View", `${net.view} (${formatInt(net.view_changes)} view changes)`],
    ["Mempool", `${formatInt(net.mempool_size)} transactions waiting`],
    ["Peers", `${net.peers.length}: ${peers}`],
  ]);
}

function validatorTable(ctx, net) {
  return table("Validators", ["#", "Name", "Address", "Last signed block"],
    net.validators.map((v) => [
      String(v.index), v.name || ctx.names.nameOf(v.address) || "—", accountLink(ctx.names, v.address),
      v.last_signed_height === null ? "—" : blockLink(v.last_signed_height),
    ]));
}

/**
 * Render the network page.
 * @param {object} ctx page context
 * @param {HTMLElement} view
 */
export async function render(ctx, view) {
  const status = el("div", {class: "panel"});
  const validators = el("div");
  const body = el("tbody");
  const rows = new Map();
  const blocks = el("div", {class: "table-wrap", tabindex: "0", role: "region",
    "aria-label": "Recent blocks"},
  el("table", {dataset: {testid: "block-list"}},
    el("caption", {text: "Recent blocks (newest first; new ones appear live)"}),
    el("thead", {}, el("tr", {}, ["Height", "Hash", "Time", "Txs", "Signers", "Finality"]
      .map((h) => el("th", {scope: "col", text: h})))),
    body));
  const problem = el("div");
  view.append(el("h1", {text: "Network"}), problem,
    el("div", {class: "columns"}, startHere(ctx), section("Status", status)),
    section("Recent blocks", blocks), section("Validators", validators));

  const place = (block) => {
    const key = String(block.height);
    let row = rows.get(key);
    if (row) {
      row.replaceChildren(...blockCells(block));
      return;
    }
    row = blockRow(block);
    rows.set(key, row);
    const after = [...body.children].find((r) => Number(r.dataset.height) < Number(block.height));
    body.insertBefore(row, after || null);
    while (body.children.length > MAX_ROWS) {
      const last = body.lastElementChild;
      rows.delete(last.dataset.height);
      last.remove();
    }
  };

  const load = async () => {
    try {
      const net = await ctx.rpc.call("sec_getNetwork");
      problem.replaceChildren();
      status.replaceChildren(statusPanel(net));
      validators.replaceChildren(validatorTable(ctx, net));
      for (const block of net.recent_blocks.slice(0, MAX_ROWS).reverse()) place(block);
    } catch (error) {
      problem.replaceChildren(errorBox("Could not read the network state (sec_getNetwork)", error));
    }
  };
  // At most one sec_getNetwork per REFRESH_MS however fast blocks come.
  let timer = null;
  const refresh = () => {
    if (timer === null) timer = setTimeout(() => { timer = null; load(); }, REFRESH_MS);
  };
  // Listen first: a head that arrives while the first sec_getNetwork is on its way still shows.
  const stop = ctx.onHead((head) => {
    place({height: head.header.height, hash: head.hash, timestamp_ms: head.header.timestamp_ms,
      tx_count: null, signers: null, finality_ms: null});
    refresh();
  });
  await load();
  return () => {
    stop();
    clearTimeout(timer);
  };
}
