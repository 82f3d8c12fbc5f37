/**
 * `#/tx/<hash>` — a transaction: its body in words by type, its receipt and events, the
 * block that holds it, and a verify control (verifyTransaction: inclusion under tx_root).
 */

import {el, loadOrExplain, append, fields, formatInt, hashView, section} from "../ui.js";
import {accountLink, blockLink} from "../links.js";
import {TX_VERBS, bodyRows, eventLine} from "../words.js";
import {verifyControl} from "../verifycontrol.js";

function receiptView(ctx, receipt) {
  const outcome = receipt.ok ? "✓ applied" : `✗ failed (${receipt.code}): ${receipt.message}`;
  const events = receipt.events.length === 0 ? el("p", {text: "No events."})
    : el("ul", {class: "events"}, receipt.events.map((event) => el("li", {}, eventLine(ctx.names, event))));
  return append(el("div"), el("p", {class: receipt.ok ? "ok" : "failed", text: outcome}), events);
}

/**
 * Render the transaction page.
 * @param {object} ctx
 * @param {HTMLElement} view
 * @param {string} hashText 64 hex digits
 */
export async function render(ctx, view, hashText) {
  const hash = hashText.toLowerCase();
  view.append(el("h1", {}, "Transaction ", hashView(hash)));
  const answer = await loadOrExplain(view, `Could not load transaction ${hash}`, () => ctx.rpc.call("sec_getTransaction", {hash}));
  if (answer === null) return;
  const tx = answer.tx;
  view.append(el("p", {class: "lead"}, accountLink(ctx.names, tx.sender_address), ` ${TX_VERBS[tx.type] || tx.type}`,
    ` (${tx.type})`),
  section("Summary", fields([
    ["Status", answer.status === "committed"
      ? append(el("span"), `committed in block `, blockLink(answer.height), ` at position ${answer.index}`)
      : "pending (in the mempool, not in a block yet)"],
    ["Type", tx.type],
    ["Sender", accountLink(ctx.names, tx.sender_address)],
    ["Sender's public key", hashView(tx.sender)],
    ["Nonce", formatInt(tx.nonce)],
    ["Size", `${formatInt(tx.size)} bytes`],
    ["Signature", hashView(tx.signature)],
  ])),
  section("What it says", fields(bodyRows(ctx.names, tx.type, tx.body))));
  if (answer.receipt && answer.receipt.ok && tx.type === "order.create") {
    view.append(el("p", {class: "lead"}, "This transaction created an order: ", el("a", {href: `#/order/${hash}`, text: "see the order and its timeline"}), "."));
  }
  if (answer.receipt && answer.receipt.ok && tx.type === "group.open") {
    view.append(el("p", {class: "lead"}, "This transaction opened a group buy: ", el("a", {href: `#/group/${hash}`, text: "see the group and its members"}), "."));
  }
  if (answer.receipt) view.append(section("Receipt", receiptView(ctx, answer.receipt)));
  if (answer.status === "committed") {
    view.append(section("Verify",
      verifyControl(ctx, "Verify this transaction", (v) => v.verifyTransaction(hash), null,
        () => tx)));
  }
}
