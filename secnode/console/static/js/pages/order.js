/**
 * `#/order/<id>` — an order: state, parties, items, totals, settlement (sec_getOrder), its
 * life as a timeline with who acted and when, and the next deadline (sec_getOrderHistory),
 * and a verify control (verifyOrder). New events arrive live (orderEvents of the buyer).
 */

import {el, append, fields, formatFen, errorBox, section, table, timeElement, hashView} from "../ui.js";
import {accountLink, blockLink, txLink} from "../links.js";
import {TX_VERBS, itemRows, stateText} from "../words.js";
import {verifyControl} from "../verifycontrol.js";

function seconds(s) {
  return timeElement(Number(s) * 1000);
}

function details(ctx, answer) {
  const order = answer.order;
  const settlement = order.settlement || {};
  const state = el("span", {dataset: {testid: "order-state"}, class: `state state-${order.state}`,
    text: stateText(order.state)});
  return el("div", {},
    fields([
      ["State", state],
      ["Merchant", accountLink(ctx.names, order.merchant)],
      ["Buyer", accountLink(ctx.names, order.buyer)],
      ["Arbiter", accountLink(ctx.names, order.arbiter)],
      order.sharer ? ["Sharer", append(el("span"), accountLink(ctx.names, order.sharer),
        ` (${(Number(order.commission_bps) / 100).toFixed(2)} % of the goods)`)] : null,
      order.leader ? ["Pickup leader", append(el("span"), accountLink(ctx.names, order.leader),
        ` (${(Number(order.leader_commission_bps) / 100).toFixed(2)} % of the goods)`)] : null,
      ["Created", append(el("span"), seconds(order.created_s),
        answer.created_height === null ? "" : " in block ",
        answer.created_height === null ? "" : blockLink(answer.created_height))],
      ["Last change", seconds(order.updated_s)],
      ["Goods", formatFen(order.goods)],
      ["Shipping", formatFen(order.shipping)],
      ["Total", formatFen(order.total)],
      ["In escrow now", formatFen(order.held)],
      ["Settlement", `buyer refunded ${formatFen(settlement.refunded ?? 0)}, merchant ${formatFen(settlement.merchant ?? 0)}, sharer ${formatFen(settlement.sharer ?? 0)}, leader ${formatFen(settlement.leader ?? 0)}`],
      order.disputed_by ? ["Disputed by", accountLink(ctx.names, order.disputed_by)] : null,
      order.returned && order.returned.length ? ["Returned lines", order.returned.join(", ")] : null,
      order.shipment_hash ? ["Shipment reference hash", hashView(order.shipment_hash)] : null,
    ]),
    table("Items", ["#", "Item", "Quantity", "Unit price", "Line total", "Returnable"],
      itemRows(answer.items || order.items || [])));
}

function timelineItem(ctx, event) {
  const verb = TX_VERBS[event.type] || event.type;
  const who = event.actor ? accountLink(ctx.names, event.actor) : el("span", {text: "the chain"});
  return el("li", {dataset: {event: String(event.event)}},
    el("p", {class: "when"}, seconds(event.time_s), " · block ", blockLink(event.height)),
    el("p", {}, who, ` ${verb} → `, el("strong", {text: String(event.state)})),
    el("p", {class: "detail"}, `event ${event.event}`,
      event.tx_hash ? " · transaction " : "", event.tx_hash ? txLink(event.tx_hash) : ""));
}

function nextDeadline(history) {
  const next = history.next_deadline;
  const box = el("p", {dataset: {testid: "next-deadline"}, class: "next-deadline"});
  if (!next) {
    append(box, `No deadline comes next: the order is ${history.order.state}, a final state.`);
  } else {
    append(box, `Next deadline: while ${next.state}, `, seconds(next.due_s),
      ` (${new Date(Number(next.due_s) * 1000).toISOString()}). If nobody acts by then: ${next.outcome}.`);
  }
  return box;
}

async function timeline(ctx, orderId) {
  const history = await ctx.rpc.call("sec_getOrderHistory", {order_id: orderId});
  const list = el("ol", {dataset: {testid: "timeline"}, class: "timeline"},
    history.events.map((event) => timelineItem(ctx, event)));
  return [nextDeadline(history), list];
}

/**
 * Render the order page.
 * @param {object} ctx
 * @param {HTMLElement} view
 * @param {string} orderId 64 hex digits
 */
export async function render(ctx, view, orderId) {
  const id = orderId.toLowerCase();
  view.append(el("h1", {}, "Order ", hashView(id)));
  const top = el("div");
  const life = el("div");
  view.append(top,
    section("Verify", verifyControl(ctx, "Verify this order", (v) => v.verifyOrder(id))),
    section("Timeline", life));
  let answer;
  try {
    answer = await ctx.rpc.call("sec_getOrder", {order_id: id});
  } catch (error) {
    top.append(errorBox(`Could not load order ${id}`, error));
    return undefined;
  }
  top.append(details(ctx, answer));
  const load = async () => {
    try {
      life.replaceChildren(...await timeline(ctx, id));
    } catch (error) {
      life.replaceChildren(errorBox("Could not load the order's history (sec_getOrderHistory)", error));
    }
  };
  await load();
  // A transaction on this order names its buyer: follow the buyer's order events, reload on ours.
  return ctx.subscriptions.subscribe("orderEvents", {address: answer.order.buyer}, async (event) => {
    const touches = JSON.stringify(event.receipt?.events ?? [], (k, v) =>
      (typeof v === "bigint" ? v.toString() : v)).includes(id) || event.tx_hash === id;
    if (!touches) return;
    try {
      const fresh = await ctx.rpc.call("sec_getOrder", {order_id: id});
      top.replaceChildren(details(ctx, fresh));
    } catch (error) {
      top.replaceChildren(errorBox(`Could not reload order ${id}`, error));
    }
    await load();
  });
}
