/**
 * `#/trust` — the latest epoch's score distribution (sec_getTrustDistribution): an SVG bar
 * chart whose bars carry their counts as text, the same numbers as a table, and the top
 * accounts with links to their neighbourhood.
 */

import {el, fields, fill, formatInt, formatScore, section, svg, table} from "../ui.js";
import {accountLink} from "../links.js";

const WIDTH = 640;
const BAR_AREA = 220;
const TOP = 24;

function rangeText(bucket) {
  return `${formatScore(bucket.low)}–${formatScore(bucket.high)}`;
}

/**
 * A bar chart of bucket counts; every bar has its count and range as visible text, and the
 * chart has a title and a description for screen readers (the table repeats the data).
 */
function chart(distribution) {
  const buckets = distribution.buckets;
  const most = Math.max(1, ...buckets.map((b) => Number(b.count)));
  const slot = WIDTH / Math.max(1, buckets.length);
  const picture = svg("svg", {viewBox: `0 0 ${WIDTH} ${TOP + BAR_AREA + 60}`, role: "img",
    "aria-labelledby": "chart-title chart-desc", class: "chart"},
  svg("title", {id: "chart-title", text: `Trust score distribution, epoch ${distribution.epoch}`}),
  svg("desc", {id: "chart-desc", text: buckets.map((b) => `${rangeText(b)}: ${b.count} accounts`).join("; ")}));
  buckets.forEach((bucket, i) => {
    const count = Number(bucket.count);
    const height = Math.round((count / most) * BAR_AREA);
    const x = i * slot + 4;
    const y = TOP + BAR_AREA - height;
    picture.append(
      svg("rect", {x, y, width: slot - 8, height: Math.max(height, 1), class: "bar"}),
      svg("text", {x: x + (slot - 8) / 2, y: y - 6, "text-anchor": "middle", class: "bar-count", text: String(count)}),
      svg("text", {x: x + (slot - 8) / 2, y: TOP + BAR_AREA + 18, "text-anchor": "middle", class: "bar-label",
        text: formatScore(bucket.low, 3)}),
    );
  });
  picture.append(svg("text", {x: WIDTH / 2, y: TOP + BAR_AREA + 48, "text-anchor": "middle",
    class: "axis-label", text: "score (fraction of all trust), lower bound of each range"}));
  return el("figure", {class: "chart-box", tabindex: "0"}, picture,
    el("figcaption", {text: "Number of accounts per score range (the table below has the same numbers)."}));
}

/**
 * Render the trust page.
 * @param {object} ctx
 * @param {HTMLElement} view
 */
export async function render(ctx, view) {
  view.append(el("h1", {text: "Trust scores"}),
    el("p", {text: "Scores come from attestations that buyers and merchants leave after a completed order, weighted by the order's value and by the trust of whoever attests; a few accounts named in the genesis file are pre-trusted. Open an account to see why it has its score."}));
  const body = el("div");
  view.append(body);
  const load = () => fill(body, "Could not load the score distribution (sec_getTrustDistribution)",
    async () => distributionView(ctx, await ctx.rpc.call("sec_getTrustDistribution", {})));
  await load();
  // A new epoch changes every number here: show it when it is committed.
  return ctx.subscriptions.subscribe("epochs", {}, () => load());
}

function distributionView(ctx, distribution) {
  return [
    fields([
      ["Epoch", String(distribution.epoch)],
      ["Accounts", formatInt(distribution.accounts)],
      ["With a score", formatInt(distribution.scored)],
    ]),
    section("Distribution", chart(distribution),
      table("Accounts per score range", ["Score range", "Accounts"],
        distribution.buckets.map((b) => [rangeText(b), formatInt(b.count)]))),
    section("Highest scores", distribution.top.length === 0 ? el("p", {text: "No scores yet."})
      : table("Highest scores", ["#", "Account", "Score", "Neighbourhood"], distribution.top.map((t, i) => [
        String(i + 1), accountLink(ctx.names, t.address), formatScore(t.score),
        el("a", {href: `#/trust/${t.address}`, text: "who attested it"})]))),
  ];
}
