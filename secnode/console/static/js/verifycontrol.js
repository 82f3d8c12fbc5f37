/**
 * The "verify" control of every page (interface D): a button `[data-testid=verify]` and its
 * result `[data-testid=verify-result]` with `data-status` "running", "ok" or "failed": the
 * Report's summary first (`.verify-summary`), then its checks in a list (`.verify-checks`).
 *
 * The verifier (js/verify/verifier.js, interface B) is loaded on first use, so a page shows
 * even when it cannot load; then the control reports the load failure as a failed check.
 */

import {el, append} from "./ui.js";

let verifierModule = null;

async function loadVerifier() {
  if (!verifierModule) verifierModule = import("./verify/verifier.js");
  return verifierModule;
}

/**
 * A verifier for the context's node and genesis (one per page context).
 * @param {{rpc: any, genesis: any, pinned: boolean, verifier?: any}} ctx
 */
async function verifierFor(ctx) {
  if (!ctx.verifier) {
    const {Verifier} = await loadVerifier();
    ctx.verifier = new Verifier(ctx.rpc, ctx.genesis, {pinned: ctx.pinned});
  }
  return ctx.verifier;
}

/**
 * The Report, failed when the page shows a value other than the proven record's: the page
 * reads the node without `prove` (an answer the verifier never saw), so a lying node could
 * show one value and prove another beside a "✓ Verified".
 * @param {object} report an ok Report with a record
 * @param {object} displayed the page's values, keyed like the record's fields
 * @returns {Promise<object>}
 */
async function againstPage(report, displayed) {
  const {difference} = await import("./verify/records.js");
  const proven = Object.fromEntries(Object.keys(displayed).map((name) => [name, report.record[name] ?? null]));
  const field = difference(displayed, proven, "page");
  if (field === null) {
    return {...report, checks: [...report.checks, "the values shown on this page are the proven ones"]};
  }
  const error = `this page shows ${field} other than the proven record holds `
    + "(the node showed the page one value and proved another)";
  return {...report, ok: false, summary: `Verification failed: ${error}`, error, record: null,
    checks: [...report.checks, `✗ ${error}`]};
}

/**
 * Render a Report into the result element: status, summary, then the checks in order (and
 * what failed, when it failed).
 * @param {HTMLElement} result
 * @param {{ok: boolean, summary: string, checks: string[], error: string|null}} report
 */
function show(result, report) {
  result.dataset.status = report.ok ? "ok" : "failed";
  const checks = (report.checks || []).map(String);
  const items = checks.map((check) => el("li", {text: check}));
  if (!report.ok && report.error) {
    // The verifier ends its checks with the failed one ("✗ <error>"): mark it, never list it twice.
    const error = String(report.error);
    if (checks.length && checks[checks.length - 1].endsWith(error)) {
      items[items.length - 1].classList.add("failed-check");
    } else {
      items.push(el("li", {class: "failed-check", text: error}));
    }
  }
  const icon = el("span", {class: "icon", "aria-hidden": "true", text: report.ok ? "✓ " : "✗ "});
  result.replaceChildren(el("p", {class: "verify-summary"}, icon, String(report.summary)),
    items.length ? el("ol", {class: "verify-checks", "aria-label": "What was checked"}, items) : null);
}

/**
 * A verify control: `label` on the button; `run(verifier)` returns the Report promise.
 * @param {object} ctx page context (rpc, genesis, pinned)
 * @param {string} label e.g. "Verify this order"
 * @param {(verifier: any) => Promise<any>} run
 * @param {((record: any) => string)|null} [describe] the proven record in words, shown under
 *   a passed check (so the reader sees values decoded from the verified bytes)
 * @param {((record: object) => object)|null} [displayed] the values the page shows now, keyed
 *   like the proven record's fields: a passed check fails unless they equal the record's
 */
export function verifyControl(ctx, label, run, describe = null, displayed = null) {
  const button = el("button", {type: "button", class: "verify", dataset: {testid: "verify"},
    text: label});
  const result = el("div", {class: "verify-result", dataset: {testid: "verify-result"},
    role: "status", "aria-live": "polite"});
  result.hidden = true;
  button.addEventListener("click", async () => {
    button.disabled = true;
    result.hidden = false;
    result.dataset.status = "running";
    result.replaceChildren(el("p", {class: "verify-summary"},
      el("span", {class: "icon", "aria-hidden": "true", text: "… "}), "Verifying in this browser…"));
    let report;
    try {
      report = await run(await verifierFor(ctx));
      if (report.ok && report.record && displayed) report = await againstPage(report, displayed(report.record));
    } catch (error) {
      report = {ok: false, summary: `Verification failed: ${error.message}`, checks: [],
        error: String(error.message), height: null, record: null};
    }
    show(result, report);
    if (report.ok && report.record && describe) {
      result.append(el("p", {class: "proven"},
        `Proven at block ${report.height}, decoded from the verified bytes: ${describe(report.record)}.`));
    }
    button.disabled = false;
  });
  const note = el("p", {class: "hint", text: ctx.pinned
    ? "Checked against the genesis file you gave (pinned)."
    : "Checked in your browser against the genesis document; for full independence run `sec console --genesis` with your own copy."});
  return append(el("div", {class: "verify-box"}), button, result, note);
}
