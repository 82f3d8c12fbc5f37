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
 * Render a Report into the result element: status, summary, then the checks in order (and
 * what failed, when it failed).
 * @param {HTMLElement} result
 * @param {{ok: boolean, summary: string, checks: string[], error: string|null}} report
 */
function show(result, report) {
  result.dataset.status = report.ok ? "ok" : "failed";
  const items = (report.checks || []).map((check) => el("li", {text: String(check)}));
  if (!report.ok && report.error) items.push(el("li", {class: "failed-check", text: String(report.error)}));
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
 */
export function verifyControl(ctx, label, run, describe = null) {
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
