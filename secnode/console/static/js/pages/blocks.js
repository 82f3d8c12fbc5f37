/**
 * `#/blocks` (and `#/blocks/<top>`) — the block list, newest first, a page of PAGE_SIZE
 * blocks at a time (one batch of sec_getBlock calls), with links to older and newer pages.
 */

import {el, errorBox, formatInt, shortHash, table, timeElement} from "../ui.js";
import {accountLink, blockLink} from "../links.js";

const PAGE_SIZE = 20;

/**
 * Render a page of blocks from `top` (default: the head) down.
 * @param {object} ctx
 * @param {HTMLElement} view
 * @param {string} [topText]
 */
export async function render(ctx, view, topText) {
  view.append(el("h1", {text: "Blocks"}));
  let top;
  try {
    const head = (await ctx.rpc.call("sec_status")).height;
    top = topText === undefined ? head : Math.min(Number(topText), head);
    const heights = [];
    for (let h = top; h >= 0 && heights.length < PAGE_SIZE; h--) heights.push(h);
    const blocks = await Promise.all(heights.map((height) => ctx.rpc.call("sec_getBlock", {height})));
    view.append(table(`Blocks ${formatInt(heights[heights.length - 1])} to ${formatInt(top)} of ${formatInt(head)}`,
      ["Height", "Hash", "Time", "Transactions", "Proposer", "View"],
      blocks.map((b) => {
        const row = el("tr", {dataset: {testid: "block-row", height: String(b.header.height)}},
          el("td", {}, blockLink(b.header.height)),
          el("td", {}, el("code", {title: b.hash, text: shortHash(b.hash)})),
          el("td", {}, timeElement(b.header.timestamp_ms)),
          el("td", {text: formatInt(b.tx_count)}),
          el("td", {}, accountLink(ctx.names, b.header.proposer)),
          el("td", {text: String(b.header.view)}));
        return row;
      })));
    const nav = el("nav", {class: "pager", "aria-label": "Block pages"});
    if (top < head) nav.append(el("a", {href: `#/blocks/${Math.min(head, top + PAGE_SIZE)}`, text: "← Newer blocks"}));
    if (top - PAGE_SIZE >= 0) nav.append(el("a", {href: `#/blocks/${top - PAGE_SIZE}`, text: "Older blocks →"}));
    view.append(nav);
  } catch (error) {
    view.append(errorBox("Could not load the block list", error));
  }
}
