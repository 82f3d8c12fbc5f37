/**
 * `#/trust/<sec1>` — the trust neighbourhood of an account: who attested it (with weights)
 * and who attested those (two hops), drawn as an SVG with the account in the centre,
 * labelled nodes and edge labels whose sign is text ("+", "−", "±"), and the same edges as a
 * list for screen readers; and the sentence why the account has its score.
 *
 * Bounded: at most PER_HOP accounts per hop, one page of attestations per account.
 */

import {el, errorBox, formatInt, formatScore, section, shortHash, svg} from "../ui.js";
import {accountLink} from "../links.js";
import {NOT_FOUND, RpcError} from "../rpc.js";
import {attestationsAbout, whySentence} from "../trustwords.js";

const PER_HOP = 12;
const SIZE = 760;
const CENTRE = SIZE / 2;
const RADIUS = [0, 170, 320];
const MARGIN = 70;
const EDGE_GAP = 5;
const LABEL_GAP = 18;

/**
 * Sum the attestations about one subject by attester: {attester, subject, positive,
 * negative, weight}, heaviest first, at most PER_HOP.
 */
function edgesOf(subject, attestations) {
  const byAttester = new Map();
  for (const a of attestations) {
    const edge = byAttester.get(a.attester)
      ?? {attester: a.attester, subject, positive: 0, negative: 0, weight: 0n};
    if (Number(a.value) > 0) edge.positive += 1;
    else edge.negative += 1;
    edge.weight += BigInt(a.weight);
    byAttester.set(a.attester, edge);
  }
  return [...byAttester.values()].sort((x, y) => (y.weight > x.weight ? 1 : y.weight < x.weight ? -1 : 0))
    .slice(0, PER_HOP);
}

function signText(edge) {
  if (edge.negative === 0) return "+";
  if (edge.positive === 0) return "−";
  return "±";
}

function edgeWords(names, edge) {
  const label = (address) => names.nameOf(address) || shortHash(address);
  return `${label(edge.attester)} attested ${label(edge.subject)}: ${edge.positive} positive, ${edge.negative} negative, weight ${formatInt(edge.weight)}`;
}

/** Place hop-1 nodes on the inner circle and hop-2 nodes on the outer one. */
function layout(centre, hop1, hop2) {
  const places = new Map([[centre, {x: CENTRE, y: CENTRE, hop: 0}]]);
  const ring = (addresses, radius, hop) => addresses.forEach((address, i) => {
    const angle = (2 * Math.PI * i) / addresses.length - Math.PI / 2;
    places.set(address, {x: CENTRE + radius * Math.cos(angle), y: CENTRE + radius * Math.sin(angle), hop});
  });
  ring(hop1, RADIUS[1], 1);
  ring(hop2, RADIUS[2], 2);
  return places;
}

/** Where a node's name goes: under the centre, else outside its ring (away from the edges). */
function labelPlace(place) {
  if (place.hop === 0) return {x: place.x, y: place.y + 46, "text-anchor": "middle"};
  const dx = place.x - CENTRE;
  const dy = place.y - CENTRE;
  const length = Math.hypot(dx, dy) || 1;
  const side = Math.abs(dx) > length * 0.3;
  const anchor = !side ? "middle" : dx > 0 ? "start" : "end";
  const down = !side && dy > 0 ? 12 : 0;
  return {x: place.x + (dx / length) * 26, y: place.y + (dy / length) * 26 + 5 + down, "text-anchor": anchor};
}

function drawing(ctx, centre, edges, places) {
  const label = (address) => ctx.names.nameOf(address) || shortHash(address);
  // Fit the view to the rings in use, so one hop is drawn as large as two.
  const reach = Math.max(...[...places.values()].map((p) => RADIUS[p.hop])) + MARGIN;
  const box = `${CENTRE - reach} ${CENTRE - reach} ${2 * reach} ${2 * reach}`;
  const picture = svg("svg", {viewBox: box, class: "graph", role: "img",
    "aria-labelledby": "graph-title"},
  svg("title", {id: "graph-title", text: `Who attested ${label(centre)}, two hops out (the list below says the same)`}),
  svg("defs", {}, svg("marker", {id: "arrow", viewBox: "0 0 10 10", refX: "10", refY: "5",
    markerWidth: "8", markerHeight: "8", orient: "auto-start-reverse"},
  svg("path", {d: "M 0 0 L 10 5 L 0 10 z", class: "arrow-head"}))));
  for (const edge of edges) {
    const from = places.get(edge.attester);
    const to = places.get(edge.subject);
    if (!from || !to) continue;
    const dx = to.x - from.x;
    const dy = to.y - from.y;
    const length = Math.hypot(dx, dy) || 1;
    const shrink = 22 / length;
    // Each direction runs on its own side (A→B and B→A are two parallel arrows), label outside.
    const nx = -dy / length;
    const ny = dx / length;
    const [ox, oy] = [nx * EDGE_GAP, ny * EDGE_GAP];
    const kind = edge.negative > 0 && edge.positive === 0 ? "negative" : edge.negative > 0 ? "mixed" : "positive";
    picture.append(svg("line", {x1: from.x + dx * shrink + ox, y1: from.y + dy * shrink + oy,
      x2: to.x - dx * shrink + ox, y2: to.y - dy * shrink + oy, class: `edge ${kind}`,
      "marker-end": "url(#arrow)"}),
    svg("text", {x: (from.x + to.x) / 2 + nx * LABEL_GAP, y: (from.y + to.y) / 2 + ny * LABEL_GAP + 5,
      "text-anchor": "middle", class: "edge-label", text: `${signText(edge)}${formatInt(edge.weight)}`}));
  }
  for (const [address, place] of places) {
    const link = svg("a", {href: `#/trust/${address}`},
      svg("circle", {cx: place.x, cy: place.y, r: place.hop === 0 ? 26 : 18, class: `node hop${place.hop}`}),
      svg("text", {...labelPlace(place), class: "node-label", text: label(address)}));
    picture.append(link);
  }
  return el("figure", {class: "graph-box", tabindex: "0"}, picture,
    el("figcaption", {text: "Arrows point from the attester to the account it attested. Edge labels: + all positive, − all negative, ± mixed, then the summed weight (whole yuan of the orders)."}));
}

/**
 * Render the neighbourhood page.
 * @param {object} ctx
 * @param {HTMLElement} view
 * @param {string} address sec1 text
 */
export async function render(ctx, view, address) {
  const name = ctx.names.nameOf(address);
  view.append(el("h1", {}, "Trust neighbourhood of ", accountLink(ctx.names, address)));
  const why = el("p", {class: "why", dataset: {testid: "trust-why"}, text: "Loading why…"});
  view.append(why);
  try {
    const [score, account] = await Promise.all([
      ctx.rpc.call("sec_getTrustScore", {address}).catch((error) => {
        if (error instanceof RpcError && error.code === NOT_FOUND) return null;
        throw error;
      }),
      ctx.rpc.call("sec_getAccount", {address}),
    ]);
    const maxHeight = score ? Number(score.epoch.input_height) : Infinity;
    const about = await attestationsAbout(ctx.rpc, address, Infinity, 1);
    why.textContent = score
      ? whySentence(score, await attestationsAbout(ctx.rpc, address, maxHeight), account.roles || [])
      : "No trust epoch has been computed yet, so no account has a score.";
    if (score) {
      why.before(el("p", {dataset: {testid: "trust-score"},
        text: `${name || "This account"}: ${formatScore(score.score)} of all trust (epoch ${score.epoch.epoch})`}));
    }
    const first = edgesOf(address, about.list);
    const hop1 = first.map((e) => e.attester);
    const second = (await Promise.all(hop1.map(async (attester) =>
      edgesOf(attester, (await attestationsAbout(ctx.rpc, attester, Infinity, 1)).list)))).flat();
    const placed = new Set([address, ...hop1]);
    const hop2 = [];
    for (const edge of second) {
      if (!placed.has(edge.attester) && hop2.length < PER_HOP) {
        placed.add(edge.attester);
        hop2.push(edge.attester);
      }
    }
    const edges = [...first, ...second.filter((e) => placed.has(e.attester))];
    const places = layout(address, hop1, hop2);
    view.append(
      first.length === 0 ? el("p", {text: "Nobody has attested this account yet."}) : drawing(ctx, address, edges, places),
      section("The same as a list",
        el("ul", {class: "edge-list", dataset: {testid: "trust-edges"}},
          edges.map((edge) => el("li", {}, edgeWords(ctx.names, edge))))),
      el("p", {class: "hint", text: `At most ${PER_HOP} accounts per hop are shown (the heaviest first), from the first page of each account's attestations (current, which can be newer than the latest epoch).`}));
  } catch (error) {
    view.append(errorBox("Could not load the trust neighbourhood", error));
  }
}
