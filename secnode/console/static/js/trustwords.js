/**
 * Where a trust score comes from, in words: the sentence `[data-testid=trust-why]` of the
 * account and trust pages, built from sec_getTrustScore (score, beta counts, epoch and its
 * pre-trusted accounts) and the attestations about the account (sec_getAttestations).
 *
 * Bounded: at most MAX_PAGES pages of attestations are read; beyond that the sentence says
 * "at least".
 */

import {formatInt, formatScore} from "./ui.js";

const PAGE = 100;
const MAX_PAGES = 5;

/**
 * The attestations about `address` recorded up to `maxHeight` (inputs of that epoch).
 * @returns {Promise<{list: any[], complete: boolean, total: number}>}
 */
export async function attestationsAbout(rpc, address, maxHeight = Infinity, limit = MAX_PAGES) {
  const list = [];
  let cursor = 0;
  let total = 0;
  for (let page = 0; page < limit; page++) {
    const answer = await rpc.call("sec_getAttestations", {subject: address, cursor, limit: PAGE});
    total = Number(answer.total);
    list.push(...answer.attestations.filter((a) => Number(a.height) <= maxHeight));
    if (answer.next_cursor === null) return {list, complete: true, total};
    cursor = answer.next_cursor;
  }
  return {list, complete: false, total};
}

function plural(count, one, many) {
  return `${formatInt(count)} ${count === 1 ? one : many}`;
}

/**
 * The sentence why an account has its score, e.g. "Score 0.412 of all trust (epoch 7):
 * 12 buyers with completed orders attested it (10 positive, 2 negative); it is one of 2
 * pre-trusted accounts."
 * @param {any} score sec_getTrustScore's result
 * @param {{list: any[], complete: boolean}} attestations about the account (epoch inputs)
 * @param {string[]} roles the account's roles
 * @returns {string}
 */
export function whySentence(score, attestations, roles) {
  const epoch = score.epoch;
  const pretrusted = epoch.parameters.pretrusted;
  const isPretrusted = pretrusted.includes(score.address);
  const attesters = new Set(attestations.list.map((a) => a.attester)).size;
  const who = roles.includes("merchant") ? ["buyer", "buyers"] : ["trading partner", "trading partners"];
  const atLeast = attestations.complete ? "" : "at least ";
  const head = score.scored
    ? `Score ${formatScore(score.score)} of all trust (epoch ${epoch.epoch})`
    : `No score in epoch ${epoch.epoch} (score 0)`;
  const positive = Number(score.positive);
  const negative = Number(score.negative);
  let reason;
  if (positive + negative === 0) {
    reason = "nobody with a completed order has attested it yet";
  } else {
    reason = `${atLeast}${plural(attesters, who[0], who[1])} with completed orders attested it `
      + `(${formatInt(positive)} positive, ${formatInt(negative)} negative)`;
  }
  const seed = isPretrusted
    ? `it is one of ${plural(pretrusted.length, "pre-trusted account", "pre-trusted accounts")}, which start with a share of trust`
    : `it is not pre-trusted (${plural(pretrusted.length, "account is", "accounts are")}); its trust flows only from those who attested it, weighted by their own trust and the value of the orders`;
  return `${head}: ${reason}; ${seed}.`;
}
