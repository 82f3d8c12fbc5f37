/**
 * `#/block/<height>` — one block: header, the certificate's signers (sec_getCommit), its
 * transactions with their outcome, and a verify control (verifyBlock).
 */

import {el, loadOrExplain, append, errorBox, fields, formatInt, hashView, section, table, timeElement} from "../ui.js";
import {accountLink, blockHref, txLink} from "../links.js";
import {TX_VERBS} from "../words.js";
import {verifyControl} from "../verifycontrol.js";

function header(ctx, block) {
  const h = block.header;
  return fields([
    ["Hash", hashView(block.hash)],
    ["Chain", h.chain_id],
    ["Time", timeElement(h.timestamp_ms)],
    ["Proposer", accountLink(ctx.names, h.proposer)],
    ["View", String(h.view)],
    ["Previous block", h.height > 0 ? hashView(h.prev_hash, blockHref(h.height - 1)) : hashView(h.prev_hash)],
    ["Transaction root", hashView(h.tx_root)],
    ["Receipts root", hashView(h.receipts_root)],
    ["State root", hashView(h.state_root)],
    ["Validators hash", hashView(h.validators_hash)],
  ]);
}

function signers(ctx, commit) {
  if (!commit.certificate) {
    return el("p", {text: "Block 0 (genesis) has no certificate: the genesis file vouches for it."});
  }
  const signatures = commit.certificate.signatures;
  return append(el("div"),
    el("p", {text: `${signatures.length} validators signed this block:`}),
    table("Certificate signatures", ["Validator", "Signature"], signatures.map((s) => [
      accountLink(ctx.names, s.validator), hashView(s.signature)])));
}

function transactions(ctx, block) {
  if (block.tx_count === 0) return el("p", {text: "No transactions."});
  return table("Transactions", ["#", "Hash", "Type", "Sender", "Outcome"],
    block.transactions.map((tx, i) => {
      const receipt = block.receipts[i];
      return [String(i), txLink(tx.hash), `${tx.type} (${TX_VERBS[tx.type] || ""})`,
        accountLink(ctx.names, tx.sender_address),
        receipt.ok ? "✓ ok" : `✗ failed: ${receipt.code}`];
    }));
}

/**
 * Render the block page.
 * @param {object} ctx
 * @param {HTMLElement} view
 * @param {string} heightText
 */
export async function render(ctx, view, heightText) {
  const height = Number(heightText);
  view.append(el("h1", {text: `Block ${formatInt(height)}`}));
  const block = await loadOrExplain(view, `Could not load block ${formatInt(height)}`, () => ctx.rpc.call("sec_getBlock", {height, full: true}));
  if (block === null) return;
  const nav = el("nav", {class: "pager", "aria-label": "Neighbouring blocks"});
  if (height > 0) nav.append(el("a", {href: blockHref(height - 1), text: "← Previous block"}));
  if (ctx.height === null || height < Number(ctx.height)) {
    nav.append(el("a", {href: blockHref(height + 1), text: "Next block →"}));
  }
  const certificate = el("div");
  view.append(nav, section("Header", header(ctx, block)),
    section("Verify", verifyControl(ctx, "Verify this block", (v) => v.verifyBlock(height), null,
      () => ({hash: block.hash, header: block.header}))),
    section("Certificate", certificate),
    section(`Transactions (${formatInt(block.tx_count)})`, transactions(ctx, block)));
  try {
    certificate.append(signers(ctx, await ctx.rpc.call("sec_getCommit", {height})));
  } catch (error) {
    certificate.append(errorBox("Could not load the certificate (sec_getCommit)", error));
  }
}
