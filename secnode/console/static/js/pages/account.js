/**
 * `#/account/<sec1>` — an account: balance, roles, name, nonce; its trust score and the
 * sentence why; orders as merchant and as buyer; a merchant's groups and reviews with
 * replies; verify controls for the account record and for the trust score.
 */

import {el, append, fields, fill, formatFen, formatInt, formatScore, hashView, loadOrExplain, scorePercent, section, table, timeOfSeconds} from "../ui.js";
import {accountLink, blockLink, groupLink, orderLink} from "../links.js";
import {NOT_FOUND, RpcError} from "../rpc.js";
import {attestationsAbout, whySentence} from "../trustwords.js";
import {stateText} from "../words.js";
import {verifyControl} from "../verifycontrol.js";

const LIST_LIMIT = 20;

async function trustSection(ctx, address, roles) {
  let score;
  try {
    score = await ctx.rpc.call("sec_getTrustScore", {address});
  } catch (error) {
    if (error instanceof RpcError && error.code === NOT_FOUND) {
      return [el("p", {dataset: {testid: "trust-score"}, text: "No trust epoch has been computed yet."}),
        el("p", {dataset: {testid: "trust-why"}, text: `No score yet: the chain computes scores every few blocks, from attestations after completed orders (${error.message}).`})];
    }
    throw error;
  }
  const attestations = await attestationsAbout(ctx.rpc, address, Number(score.epoch.input_height));
  return [
    fields([
      ["Score", el("span", {dataset: {testid: "trust-score"},
        text: `${formatScore(score.score)} of all trust (${scorePercent(score.score)}; exactly ${score.score} / 10^9)`})],
      ["Epoch", append(el("span"), `${score.epoch.epoch}: inputs up to block `, blockLink(score.epoch.input_height),
        `, committed in block `, blockLink(score.epoch.committed_height))],
      ["Attestations", `+${score.positive} / −${score.negative}`],
    ]),
    el("p", {class: "why", dataset: {testid: "trust-why"}, text: whySentence(score, attestations, roles)}),
    el("p", {}, el("a", {href: `#/trust/${address}`, text: "See who attested it (trust neighbourhood) →"})),
    verifyControl(ctx, "Verify this trust score", (v) => v.verifyTrustScore(address),
      (r) => `score ${formatScore(r.score ?? 0)} of all trust (+${r.positive ?? 0} / −${r.negative ?? 0}), epoch ${r.epoch?.epoch ?? "?"}`,
      () => ({score: score.score, positive: score.positive, negative: score.negative, epoch: score.epoch})),
  ];
}

async function ordersTable(ctx, address, role) {
  const answer = await ctx.rpc.call("sec_listOrders", {party: address, role, limit: LIST_LIMIT});
  if (answer.orders.length === 0) return el("p", {text: `No orders as ${role}.`});
  const other = role === "merchant" ? "buyer" : "merchant";
  return append(el("div"), table(`Orders as ${role}`, ["Order", "State", other[0].toUpperCase() + other.slice(1), "Total", "Next deadline"],
    // The node lists by order id; the newest first reads better.
    [...answer.orders].sort((a, b) => Number(b.order.created_s) - Number(a.order.created_s)).map(({order}) => [
      orderLink(order.order_id), stateText(order.state), accountLink(ctx.names, order[other]),
      formatFen(order.total), order.due_s === null ? "none (final)" : timeOfSeconds(order.due_s),
    ])),
  answer.next_cursor === null ? null : el("p", {class: "hint", text: `Showing the first ${answer.orders.length}; more exist.`}));
}

async function groupsTable(ctx, address) {
  const answer = await ctx.rpc.call("sec_listGroups", {merchant: address, limit: LIST_LIMIT});
  if (answer.groups.length === 0) return el("p", {text: "No group buys."});
  return table("Group buys", ["Group", "State", "Members", "Price", "Deadline"],
    answer.groups.map((g) => [groupLink(g.group_id), g.state,
      `${g.members} of ${g.min_members} needed (max ${g.max_members})`, formatFen(g.member_total),
      timeOfSeconds(g.deadline_s)]));
}

async function reviewsList(ctx, address) {
  const answer = await ctx.rpc.call("sec_getReviews", {merchant: address, limit: LIST_LIMIT});
  if (Number(answer.count) === 0) return el("p", {text: "No reviews yet."});
  const average = (Number(answer.rating_sum) / Number(answer.count)).toFixed(2);
  return append(el("div"),
    el("p", {text: `${formatInt(answer.count)} review${Number(answer.count) === 1 ? "" : "s"}, average ${average} of 5.`}),
    el("ul", {class: "reviews"}, answer.reviews.map((r) => el("li", {},
      el("p", {}, `${"★".repeat(Number(r.rating))}${"☆".repeat(5 - Number(r.rating))} (${r.rating} of 5) by `,
        accountLink(ctx.names, r.author), ", ", timeOfSeconds(r.time_s), " · order ", orderLink(r.order_id)),
      el("p", {class: "hint"}, "Review text hash ", hashView(r.text_hash), " (the text is kept off-chain)"),
      r.reply_hash === null ? el("p", {text: "No reply from the merchant yet."})
        : el("p", {}, "Merchant replied ", timeOfSeconds(r.reply_s), ": text hash ", hashView(r.reply_hash))))));
}

/**
 * Render the account page.
 * @param {object} ctx
 * @param {HTMLElement} view
 * @param {string} address sec1 text
 */
export async function render(ctx, view, address) {
  const name = ctx.names.nameOf(address);
  view.append(el("h1", {}, name ? `${name} ` : "Account ", hashView(address)));
  const account = await loadOrExplain(view, `Could not load account ${address}`, () => ctx.rpc.call("sec_getAccount", {address}));
  if (account === null) return;
  const roles = account.roles || [];
  view.append(section("Account", fields([
    ["Name", account.name ?? name ?? "—"],
    ["Balance", el("span", {dataset: {testid: "balance"}, text: formatFen(account.balance)})],
    ["Roles", roles.join(", ") || "none"],
    ["Nonce", `${formatInt(account.nonce)} transactions sent`],
    ["Public key", hashView(account.public_key)],
    ["Read at", blockLink(account.height)],
  ]), verifyControl(ctx, "Verify this account",
    (v) => v.verifyAccount(address), (r) => (r.exists
      ? `balance ${formatFen(r.balance)}, nonce ${formatInt(r.nonce)}, roles ${r.roles.join(", ") || "none"}`
      : "no such account"),
    () => Object.fromEntries(["public_key", "nonce", "balance", "roles", "name"].map((k) => [k, account[k]])))));
  const trust = el("div");
  const asMerchant = el("div");
  const asBuyer = el("div");
  view.append(section("Trust", trust));
  const isMerchant = roles.includes("merchant");
  const groups = el("div");
  const reviews = el("div");
  if (isMerchant) view.append(section("Orders as merchant", asMerchant));
  view.append(section("Orders as buyer", asBuyer));
  if (isMerchant) view.append(section("Reviews received", reviews), section("Group buys", groups));
  await Promise.all([
    fill(trust, "Could not load the trust score", () => trustSection(ctx, address, roles)),
    isMerchant ? fill(asMerchant, "Could not list orders", () => ordersTable(ctx, address, "merchant")) : null,
    fill(asBuyer, "Could not list orders", () => ordersTable(ctx, address, "buyer")),
    isMerchant ? fill(reviews, "Could not load reviews", () => reviewsList(ctx, address)) : null,
    isMerchant ? fill(groups, "Could not list groups", () => groupsTable(ctx, address)) : null,
  ]);
}
