/**
 * `#/order/<id>` — an order: state, parties, items, totals, settlement (sec_getOrder), its
 * life as a timeline with who acted and when, and the next deadline (sec_getOrderHistory),
 * and a verify control (verifyOrder). New events arrive live (orderEvents of the buyer).
 */

import {el, loadOrExplain, append, fields, formatFen, errorBox, section, table, timeOfSeconds, hashView} from "../ui.js";
import {accountLink, blockLink, txLink} from "../links.js";
import {TX_VERBS, itemRows, stateText} from "../words.js";
import {verifyControl} from "../verifycontrol.js";

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
      ["Created", append(el("span"), timeOfSeconds(order.created_s),
        answer.created_height === null ? "" : " in block ",
        answer.created_height === null ? "" : blockLink(answer.created_height))],
      ["Last change", timeOfSeconds(order.updated_s)],
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

/** Which window closes when an open state's deadline passes (§16.1). */
const WINDOWS = {
  CREATED: "the payment window closed",
  FUNDED: "the ship deadline passed",
  SHIPPED: "the confirm window closed",
  RECEIVED: "the return window closed",
  DISPUTED: "the dispute deadline passed",
  AT_PICKUP: "the pickup window closed",
  RETURN_REQUESTED: "the return-shipping window closed",
  RETURN_SHIPPED: "the return-receiving window closed",
};

/**
 * One timeline entry: when, who did what (or which deadline passed), the state after.
 * @param {string|null} before the state before this event
 */
function timelineItem(ctx, event, before) {
  const deadline = event.type === "deadline";
  const verb = deadline
    ? `Nobody acted in time: ${WINDOWS[before] || "a deadline passed"} (no transaction)`
    : ` ${TX_VERBS[event.type] || event.type}`;
  const who = event.actor ? accountLink(ctx.names, event.actor) : null;
  return el("li", {dataset: {event: String(event.event)}},
    el("p", {class: "when"}, timeOfSeconds(event.time_s), " · block ", blockLink(event.height)),
    el("p", {}, who, `${verb} → `, el("strong", {text: String(event.state)})),
    el("p", {class: "detail"}, `event ${event.event}`,
      event.tx_hash ? " · transaction " : "", event.tx_hash ? txLink(event.tx_hash) : ""));
}

/** What happens when an open state's deadline passes (docs/protocol.md §16.1). */
const DEFAULT_OUTCOMES = {
  CREATED: "cancelled if the buyer has not paid",
  FUNDED: "full refund to the buyer if not shipped",
  SHIPPED: "receipt assumed if the buyer does not confirm it",
  RECEIVED: "completed and paid out if nothing is returned or disputed",
  DISPUTED: "full refund to the buyer if the arbiter does not resolve it",
  AT_PICKUP: "receipt assumed if not picked up",
  RETURN_REQUESTED: "the return lapses and the order is paid out if not shipped back",
  RETURN_SHIPPED: "returned lines refunded, the rest paid out, if the merchant does not confirm receipt",
};

/**
 * The next deadline: the node's `next_deadline` (sec_getOrderHistory) or, without it, the
 * order record's `due_s` and the protocol's default outcome.
 * @param {{state: string, due_s: any, outcome?: string}|null} next
 * @param {string} state the order's current state
 */
function nextDeadline(next, state) {
  const box = el("p", {dataset: {testid: "next-deadline"}, class: "next-deadline"});
  if (!next) {
    append(box, `No deadline comes next: the order is ${state}, a final state.`);
  } else {
    const outcome = next.outcome || DEFAULT_OUTCOMES[next.state] || "its default outcome";
    append(box, "Next deadline: ", timeOfSeconds(next.due_s), ` — ${outcome} (the order is ${next.state}).`);
  }
  return box;
}

async function timeline(ctx, orderId) {
  const history = await ctx.rpc.call("sec_getOrderHistory", {order_id: orderId});
  const list = el("ol", {dataset: {testid: "timeline"}, class: "timeline"},
    history.events.map((event, i) => timelineItem(ctx, event, i > 0 ? history.events[i - 1].state : null)));
  return [nextDeadline(history.next_deadline, history.order.state), list];
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
  let answer = null;
  view.append(top,
    section("Verify", verifyControl(ctx, "Verify this order", (v) => v.verifyOrder(id),
      (r) => (r.exists === false ? "no such order"
        : `state ${r.state}, total ${formatFen(r.total)}, in escrow ${formatFen(r.held)}`),
      () => (answer ? {...answer.order, items: answer.items || answer.order.items} : {}))),
    section("Timeline", life));
  answer = await loadOrExplain(top, `Could not load order ${id}`, () => ctx.rpc.call("sec_getOrder", {order_id: id}));
  if (answer === null) return undefined;
  top.append(details(ctx, answer));
  const loadHistory = async () => {
    try {
      life.replaceChildren(...await timeline(ctx, id));
    } catch (error) {
      const order = answer.order;
      life.replaceChildren(
        nextDeadline(order.due_s === null ? null : {state: order.state, due_s: order.due_s}, order.state),
        errorBox("Could not load the order's history (sec_getOrderHistory)", error));
    }
  };
  const reloadOnce = async () => {
    try {
      answer = await ctx.rpc.call("sec_getOrder", {order_id: id});
      top.replaceChildren(details(ctx, answer));
    } catch (error) {
      top.replaceChildren(errorBox(`Could not reload order ${id}`, error));
    }
    await loadHistory();
  };
  // One reload at a time: notifications arriving meanwhile fold into one more, so a node's
  // flood of events or heads costs the page (and the node) at most two reloads in a row.
  let reloading = null;
  let again = false;
  const reload = () => {
    if (reloading) {
      again = true;
      return reloading;
    }
    reloading = (async () => {
      do {
        again = false;
        await reloadOnce();
      } while (again);
      reloading = null;
    })();
    return reloading;
  };
  await loadHistory();
  // A transaction on this order is an order event of its buyer; a deadline passes in a block.
  const stopEvents = ctx.subscriptions.subscribe("orderEvents", {address: answer.order.buyer}, (event) => {
    const text = JSON.stringify(event.receipt?.events ?? [], (k, v) => (typeof v === "bigint" ? v.toString() : v));
    if (text.includes(id) || event.tx_hash === id) reload();
  });
  const stopHeads = ctx.onHead((head) => {
    const due = answer.order.due_s;
    if (due !== null && Number(head.header.timestamp_ms) >= Number(due) * 1000) reload();
  });
  return () => {
    stopEvents();
    stopHeads();
  };
}
