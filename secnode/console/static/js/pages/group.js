/**
 * `#/group/<id>` — a group buy: merchant, price, members, progress to the minimum ("3 of 5
 * needed" and a bar), deadline; verify control (verifyGroup).
 */

import {el, append, errorBox, fields, formatFen, hashView, section, table, timeOfSeconds} from "../ui.js";
import {accountLink, orderLink} from "../links.js";
import {verifyControl} from "../verifycontrol.js";

const MEMBER_PAGE = 100;
const MAX_MEMBER_PAGES = 10;

const STATES = {
  OPEN: "open: buyers can join until the deadline",
  FORMED: "formed: the minimum was reached, every member has an order",
  FAILED: "failed: the minimum was not reached by the deadline; members were refunded",
  CANCELLED: "cancelled by the merchant; members were refunded",
};

function progress(group) {
  const joined = Number(group.members);
  const needed = Number(group.min_members);
  const text = `${joined} of ${needed} needed`;
  return el("div", {class: "progress-box"},
    el("p", {dataset: {testid: "group-progress"}, text: `${text} (at most ${group.max_members})`}),
    el("progress", {max: String(needed), value: String(Math.min(joined, needed)), "aria-label": text}));
}

async function allMembers(ctx, id) {
  const members = [];
  let group = null;
  let from = 0;
  for (let page = 0; page < MAX_MEMBER_PAGES && from !== null; page++) {
    const answer = await ctx.rpc.call("sec_getGroup", {group_id: id, members_from: from,
      members_limit: MEMBER_PAGE});
    members.push(...answer.members);
    from = answer.next_member;
    group = answer.group;
  }
  return {group, members};
}

/**
 * Render the group page.
 * @param {object} ctx
 * @param {HTMLElement} view
 * @param {string} groupId 64 hex digits
 */
export async function render(ctx, view, groupId) {
  const id = groupId.toLowerCase();
  view.append(el("h1", {}, "Group buy ", hashView(id)));
  let group;
  let members;
  try {
    ({group, members} = await allMembers(ctx, id));
  } catch (error) {
    view.append(errorBox(`Could not load group ${id}`, error));
    return;
  }
  view.append(section("Group", fields([
    ["State", el("span", {dataset: {testid: "group-state"}, text: `${group.state} — ${STATES[group.state] || ""}`})],
    ["Progress", progress(group)],
    ["Merchant", accountLink(ctx.names, group.merchant)],
    ["Arbiter", accountLink(ctx.names, group.arbiter)],
    ["Item reference", hashView(group.item_hash)],
    ["Price for the opener", formatFen(group.opener_total)],
    ["Price for each later member", `${formatFen(group.member_total)} (${formatFen(group.unit_price)} + ${formatFen(group.shipping)} shipping)`],
    ["Join before", timeOfSeconds(group.deadline_s)],
    ["Opened", timeOfSeconds(group.created_s)],
    group.formed_s === null ? null : ["Formed", timeOfSeconds(group.formed_s)],
    group.closed_s === null ? null : ["Closed", timeOfSeconds(group.closed_s)],
    group.leader === null ? null : ["Pickup leader", accountLink(ctx.names, group.leader)],
    ["Held for members", formatFen(group.pool)],
  ])), section("Verify", verifyControl(ctx, "Verify this group", (v) => v.verifyGroup(id),
    (r) => (r.group ? `state ${r.group.state}, ${r.group.members} of ${r.group.min_members} members needed` : "no such group"),
    (r) => ({group, members: members.slice(0, r.members.length)
      .map(({proof: _proof, value: _value, ...shown}) => shown)}))),
  section("Members", members.length === 0 ? el("p", {text: "Nobody has joined yet."})
    : table("Members", ["#", "Buyer", "Paid", "Joined", "Order", "Refunded"], members.map((m) => [
      String(m.index), accountLink(ctx.names, m.buyer), formatFen(m.paid), timeOfSeconds(m.joined_s),
      m.order_id ? orderLink(m.order_id) : "— (until the group forms)", formatFen(m.refunded)]))));
}
