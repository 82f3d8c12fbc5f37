/**
 * Chain vocabulary in words a buyer or merchant reads: order states, transaction types and
 * what a transaction's body says (docs/protocol.md §5.5, §16).
 */

import {el, append, formatFen, formatInt, hashView, timeOfSeconds} from "./ui.js";
import {accountLink, groupLink, orderLink} from "./links.js";

/** Order states in words (§16.1). */
export const ORDER_STATES = {
  CREATED: "created, waiting for payment",
  FUNDED: "paid into escrow, waiting for shipment",
  SHIPPED: "shipped, waiting for the buyer",
  RECEIVED: "received; the return window is open",
  DISPUTED: "disputed, waiting for the arbiter",
  AT_PICKUP: "at the pickup point",
  RETURN_REQUESTED: "return requested",
  RETURN_SHIPPED: "return shipped back",
  COMPLETED: "completed (final): paid out",
  CANCELLED: "cancelled (final): nothing was paid",
  REFUNDED: "refunded (final)",
  RESOLVED: "resolved by the arbiter (final)",
};

/** Transaction types as a short verb phrase. */
export const TX_VERBS = {
  "account.register": "registered an account",
  "account.roles": "changed roles",
  "credit.mint": "minted credits",
  "credit.burn": "burned credits",
  "credit.transfer": "transferred credits",
  "param.set": "set a parameter",
  "validator.update": "changed the validators",
  "referral.bind": "recorded who invited them",
  "order.create": "created the order",
  "order.pay": "paid into escrow",
  "order.ship": "shipped",
  "order.confirm": "confirmed receipt",
  "order.cancel": "cancelled",
  "order.dispute": "opened a dispute",
  "order.resolve": "resolved the dispute",
  "order.arrive": "confirmed arrival at the pickup point",
  "order.pickup": "handed over at the pickup point",
  "order.return": "asked for a return",
  "order.return-ship": "shipped the return",
  "order.return-received": "received the return",
  "trust.attest": "attested",
  "review.post": "posted a review",
  "review.reply": "replied to a review",
  "group.open": "opened a group buy",
  "group.join": "joined a group buy",
  "group.cancel": "cancelled a group buy",
  deadline: "deadline passed (no transaction)",
};

/**
 * An order state with its meaning: "FUNDED — paid into escrow, waiting for shipment".
 * @param {string} state
 */
export function stateText(state) {
  return ORDER_STATES[state] ? `${state} — ${ORDER_STATES[state]}` : String(state);
}

/**
 * Order lines as a table-ready list of rows: [#, sku, quantity, unit price, line total, returnable].
 * @param {Array<{sku: string, quantity: any, unit_price: any, returnable?: boolean}>} items
 */
export function itemRows(items) {
  return items.map((item, index) => [
    String(index), String(item.sku), formatInt(item.quantity), formatFen(item.unit_price),
    formatFen(BigInt(item.quantity) * BigInt(item.unit_price)),
    item.returnable === false ? "no" : "yes",
  ]);
}

/**
 * What a transaction body says, as [label, value] rows (values: text or nodes).
 * Unknown fields are shown as they are, so nothing the body holds is hidden.
 * @param {object} names the genesis directory
 * @param {string} type transaction type
 * @param {object} body the body as JSON (addresses sec1, bytes hex)
 */
export function bodyRows(names, type, body) {
  const shown = new Set();
  const rows = [];
  const add = (label, key, format) => {
    if (!(key in body)) return;
    shown.add(key);
    rows.push([label, format(body[key])]);
  };
  const account = (value) => accountLink(names, value);
  const fen = (value) => formatFen(value);
  const hash = (value) => hashView(String(value));
  const bps = (value) => `${(Number(value) / 100).toFixed(2)} % (${value} bps)`;
  add("Order", "order_id", (v) => orderLink(v));
  add("To", "to", account);
  add("Amount", "amount", fen);
  add("Memo", "memo", String);
  add("Buyer", "buyer", account);
  if ("items" in body && Array.isArray(body.items)) {
    shown.add("items");
    const goods = body.items.reduce((sum, i) => sum + BigInt(i.quantity) * BigInt(i.unit_price), 0n);
    rows.push(["Items", body.items.map((i) => `${i.quantity} × ${i.sku} at ${formatFen(i.unit_price)}`).join("; ")]);
    rows.push(["Goods", formatFen(goods)]);
    if ("shipping" in body) rows.push(["Total", `${formatFen(goods + BigInt(body.shipping))} (goods + shipping)`]);
  }
  add("Shipping", "shipping", fen);
  add("Arbiter", "arbiter", account);
  add("Sharer", "sharer", account);
  add("Sharer's commission", "commission_bps", bps);
  add("Leader", "leader", account);
  add("Leader's commission", "leader_commission_bps", bps);
  add("Refund to the buyer", "refund", fen);
  add("Subject", "subject", account);
  add("Value", "value", (v) => (Number(v) > 0 ? "+1 (positive)" : "−1 (negative)"));
  add("Rating", "rating", (v) => `${"★".repeat(Number(v))}${"☆".repeat(5 - Number(v))} (${v} of 5)`);
  add("Returned lines", "lines", (v) => v.join(", "));
  add("Group", "group_id", (v) => groupLink(v));
  add("Price per member", "unit_price", fen);
  add("Discount for the opener", "opener_discount", fen);
  add("Members needed", "min_members", String);
  add("Members at most", "max_members", String);
  add("Join before", "deadline_s", (v) => timeOfSeconds(v));
  add("Item", "item_hash", hash);
  add("Item", "item", hash);
  add("Text (SHA-256; the text is kept off-chain)", "text_hash", hash);
  add("Shipment reference (SHA-256)", "shipment_hash", hash);
  add("Return shipment reference (SHA-256)", "tracking_hash", hash);
  add("Complaint (SHA-256)", "reason_hash", hash);
  add("Pickup code (SHA-256)", "pickup_hash", hash);
  add("Pickup code", "code", hash);
  add("Address", "address", account);
  add("Inviter", "inviter", account);
  add("Name", "name", String);
  add("Roles", "roles", (v) => v.join(", ") || "none");
  add("Grant", "grant", (v) => v.join(", ") || "none");
  add("Revoke", "revoke", (v) => v.join(", ") || "none");
  for (const [key, value] of Object.entries(body)) {
    if (shown.has(key)) continue;
    rows.push([key, typeof value === "object" ? JSON.stringify(value, (k, v) =>
      (typeof v === "bigint" ? v.toString() : v)) : String(value)]);
  }
  return rows;
}

/**
 * A receipt event as one readable line: its name and its fields (addresses linked).
 * @param {object} names
 * @param {object} event
 */
export function eventLine(names, event) {
  const line = el("span", {}, el("strong", {text: String(event.event)}));
  for (const [key, value] of Object.entries(event)) {
    if (key === "event") continue;
    let shown;
    if (typeof value === "string" && /^sec1/.test(value)) shown = accountLink(names, value);
    else if (key === "order_id") shown = orderLink(value);
    else if (key === "group_id") shown = groupLink(value);
    else if (["amount", "total", "refund", "paid"].includes(key)) shown = formatFen(value);
    else if (key.endsWith("_s") && typeof value !== "object") shown = timeOfSeconds(value);
    else shown = typeof value === "object" ? JSON.stringify(value, (k, v) =>
      (typeof v === "bigint" ? v.toString() : v)) : String(value);
    append(line, ` ${key}: `, shown);
  }
  return line;
}
