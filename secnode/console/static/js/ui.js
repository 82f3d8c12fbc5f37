/**
 * DOM helpers and formatting shared by the pages.
 *
 * Invariants: text from the node or the user only ever reaches the DOM as text nodes or
 * attribute values (`el`, `textContent`), never as markup; amounts are formatted with BigInt
 * arithmetic, so a balance of 2^63 − 1 fen is shown to the last fen.
 */

/**
 * Create an element. `attrs` keys: `class`, `text`, `dataset` (object), `on<event>`
 * (listener), anything else an attribute. Children: nodes, strings (as text) or null.
 * @param {string} tag
 * @param {object} [attrs]
 * @param {...(Node|string|number|bigint|null|undefined)} children
 * @returns {HTMLElement}
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "text") node.textContent = String(value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  append(node, ...children);
  return node;
}

/**
 * Append children (nodes, or anything else as text; null/undefined skipped).
 * @param {Node} parent
 * @param {...any} children
 */
export function append(parent, ...children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

/** @param {number|bigint} value an integer @returns {bigint} */
function toBigInt(value) {
  return typeof value === "bigint" ? value : BigInt(value);
}

/**
 * Fen (1/100 yuan, integer, Number or BigInt) as "¥12.34", exactly.
 * @param {number|bigint} fen
 */
export function formatFen(fen) {
  const value = toBigInt(fen);
  const sign = value < 0n ? "−" : "";
  const abs = value < 0n ? -value : value;
  return `${sign}¥${formatInt(abs / 100n)}.${String(abs % 100n).padStart(2, "0")}`;
}

/**
 * An integer with thousands separators ("8,412"), exact for BigInt.
 * @param {number|bigint} value
 */
export function formatInt(value) {
  const text = toBigInt(value).toString();
  const negative = text.startsWith("-");
  const digits = negative ? text.slice(1) : text;
  const grouped = digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return negative ? `−${grouped}` : grouped;
}

/** Trust scores are integers in units of 1/10^9 of all trust (docs/protocol.md §17). */
export const SCORE_SCALE = 1000000000n;

/**
 * A trust score as a decimal fraction of all trust, e.g. 412000000 → "0.412"; exact with the
 * default 9 digits, else cut (not rounded) to `digits` decimals.
 * @param {number|bigint} score
 * @param {number} [digits]
 */
export function formatScore(score, digits = 9) {
  const value = toBigInt(score);
  const fraction = String(value % SCORE_SCALE).padStart(9, "0").slice(0, digits).replace(/0+$/, "");
  return `${value / SCORE_SCALE}.${fraction || "0"}`;
}

/**
 * A trust score as a percentage of all trust with two decimals (cut), e.g. "64.91 %".
 * @param {number|bigint} score
 */
export function scorePercent(score) {
  const hundredths = (toBigInt(score) * 10000n) / SCORE_SCALE;
  return `${hundredths / 100n}.${String(hundredths % 100n).padStart(2, "0")} %`;
}

/**
 * How long ago (or until) `ms` is, in words: "12 s ago", "in 3 min".
 * @param {number} ms epoch milliseconds
 * @param {number} [now]
 */
export function relativeTime(ms, now = Date.now()) {
  const delta = Math.round((Number(ms) - now) / 1000);
  const abs = Math.abs(delta);
  let text;
  if (abs < 60) text = `${abs} s`;
  else if (abs < 3600) text = `${Math.round(abs / 60)} min`;
  else if (abs < 86400) text = `${Math.round(abs / 3600)} h`;
  else text = `${Math.round(abs / 86400)} d`;
  return delta <= 0 ? `${text} ago` : `in ${text}`;
}

/**
 * A time element for epoch milliseconds: "2026-12-07 05:20:14 UTC (12 s ago)".
 * @param {number} ms
 * @param {{relativeOnly?: boolean}} [options] relative text only (the full time in `title`)
 */
export function timeElement(ms, {relativeOnly = false} = {}) {
  const date = new Date(Number(ms));
  const iso = date.toISOString();
  const absolute = `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`;
  return el("time", {datetime: iso, title: absolute,
    text: relativeOnly ? relativeTime(ms) : `${absolute} (${relativeTime(ms)})`});
}

/**
 * A time element for block time in seconds (order and group times), as `timeElement`.
 * @param {number|bigint} s
 */
export function timeOfSeconds(s) {
  return timeElement(Number(s) * 1000);
}

/**
 * A long hex hash shortened to "abcd1234…9f0e", the full value in `title`.
 * @param {string} hash
 */
export function shortHash(hash) {
  const text = String(hash);
  return text.length <= 16 ? text : `${text.slice(0, 8)}…${text.slice(-4)}`;
}

/**
 * A hash (or address) shown short with the full value in `title`: a link when `href` is given
 * (the linked page shows the value in full, with its copy button), else the text with a
 * copy button. Links carry no copy button so a keyboard user has one stop per value.
 * @param {string} value the full text
 * @param {string|null} [href]
 * @param {string|null} [label] text to show instead of the shortened value
 */
export function hashView(value, href = null, label = null) {
  const text = label ?? shortHash(value);
  if (href) return el("a", {href, title: value, class: "hash", text});
  const copy = el("button", {type: "button", class: "copy", "aria-label": `Copy ${value}`,
    title: "Copy", text: "copy"});
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(value);
      copy.textContent = "✓";
    } catch {
      copy.textContent = "✗";
    }
    setTimeout(() => { copy.textContent = "copy"; }, 1500);
  });
  return el("span", {class: "hash"}, el("code", {title: value, text}), copy);
}

/**
 * A definition list of [label, value] rows (values: nodes or text; null rows skipped).
 * @param {Array<[string, any]|null>} rows
 */
export function fields(rows) {
  const list = el("dl", {class: "fields"});
  for (const row of rows) {
    if (!row) continue;
    append(list, el("dt", {text: row[0]}), el("dd", {}, row[1] ?? "—"));
  }
  return list;
}

/**
 * Most rows a table shows (a group's 10 pages of 100 members): a node answering with a huge
 * list must not make the page lay out hundreds of thousands of rows.
 */
export const MAX_TABLE_ROWS = 1000;

/**
 * A table inside a horizontally scrolling wrapper (the page itself never scrolls sideways);
 * at most MAX_TABLE_ROWS rows, then one row saying how many were left out.
 * @param {string} caption
 * @param {string[]} headers
 * @param {Array<Array<any>|HTMLTableRowElement>} rows cells (nodes or text) or ready rows
 */
export function table(caption, headers, rows) {
  const body = el("tbody");
  for (const row of rows.slice(0, MAX_TABLE_ROWS)) {
    append(body, row instanceof HTMLTableRowElement ? row
      : el("tr", {}, row.map((cell) => el("td", {}, cell ?? "—"))));
  }
  if (rows.length > MAX_TABLE_ROWS) {
    append(body, el("tr", {class: "omitted"}, el("td", {colspan: String(headers.length),
      text: `${formatInt(rows.length - MAX_TABLE_ROWS)} more rows not shown`})));
  }
  return el("div", {class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption},
    el("table", {},
      el("caption", {text: caption}),
      el("thead", {}, el("tr", {}, headers.map((h) => el("th", {scope: "col", text: h})))),
      body));
}

/**
 * A section with a heading.
 * @param {string} title
 * @param {...any} children
 */
export function section(title, ...children) {
  return el("section", {}, el("h2", {text: title}), ...children);
}

/**
 * A readable error box (an `RpcError`'s message is the node's own words).
 * @param {string} what what the page tried, e.g. "Could not load block 12"
 * @param {any} error
 */
export function errorBox(what, error) {
  const message = error && error.message ? error.message : String(error);
  return el("div", {class: "error", role: "alert"},
    el("strong", {text: `✗ ${what}`}), el("p", {text: message}));
}

/**
 * Fill `container` with the result of `load()` (a node or array), or an error box on failure.
 * @param {HTMLElement} container
 * @param {string} what
 * @param {() => Promise<any>} load
 */
export async function fill(container, what, load) {
  container.replaceChildren(el("p", {class: "loading", text: "Loading…"}));
  try {
    const content = await load();
    container.replaceChildren();
    append(container, content);
  } catch (error) {
    container.replaceChildren(errorBox(what, error));
  }
}

const SVG_NS = "http://www.w3.org/2000/svg";

/**
 * Create an SVG element (attributes as strings; `text` sets its text content).
 * @param {string} tag
 * @param {object} [attrs]
 * @param {...(Node|string|null)} children
 */
export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined) continue;
    if (key === "text") node.textContent = String(value);
    else node.setAttribute(key, String(value));
  }
  append(node, ...children);
  return node;
}

/**
 * The result of `load()`, or null after appending an error box about `what` to `view`.
 * @template T
 * @param {HTMLElement} view
 * @param {string} what e.g. "Could not load block 12"
 * @param {() => Promise<T>} load
 * @returns {Promise<T|null>}
 */
export async function loadOrExplain(view, what, load) {
  try {
    return await load();
  } catch (error) {
    view.append(errorBox(what, error));
    return null;
  }
}
