// The validator schedule traced from genesis (docs/protocol.md §13.2, §15.1): which set rules
// each height, as far as proven changes tell, and what the "validators" record (§12.3) after a
// block must then hold. Pure bookkeeping: the verifier proves each record before it is added.
//
// Invariant: entries ascend strictly by `from`; the first is the genesis set from height 1; a
// set rules from its `from` until the next entry's `from`. Only a record proven under a header
// certified by the set this schedule says rules that header's height may extend it.

import { equal, toHex } from "./bytes.js";
import { validatorSet } from "./chain.js";
import { requireThat } from "./errors.js";

function short(bytes) {
  return `${toHex(bytes).slice(0, 12)}…`;
}

/** The traced schedule; see the module comment. */
export class Schedule {
  /** @param {{hash: Uint8Array}} genesisSet the genesis validator set (validatorSet's form) */
  constructor(genesisSet) {
    this.entries = [{ from: 1, set: genesisSet }];
  }

  /**
   * The set ruling `height` (≥ 1) as traced: the last entry whose `from` ≤ height.
   * @param {number} height
   */
  rulingAt(height) {
    let found = this.entries[0];
    for (const entry of this.entries) if (entry.from <= height) found = entry;
    return found.set;
  }

  /**
   * Check a proven record (decodeValidators' form) as of the state after block `height`
   * against the schedule, then add its pending entries not yet known (`extend`), or refuse
   * any (`extend` false: the head, where every change must already be traced). Returns the
   * effective heights added. Throws ProofError naming the first height that disagrees.
   * @param {{current: Uint8Array[], pending: object[], history: object[]}} record
   * @param {number} height
   * @param {boolean} extend
   * @returns {Promise<number[]>}
   */
  async check(record, height, extend) {
    const ruling = this.entries.filter((entry) => entry.from <= height);
    const current = await validatorSet(record.current);
    requireThat(equal(current.hash, ruling[ruling.length - 1].set.hash),
      `the record after block ${height} names current set ${short(current.hash)}, not the `
      + `traced set ${short(ruling[ruling.length - 1].set.hash)}`);
    requireThat(record.history.length === ruling.length - 1,
      `the record after block ${height} lists ${record.history.length} former sets, the trace `
      + `${ruling.length - 1}`);
    for (const [i, former] of record.history.entries()) {
      const until = Number(former.height);
      requireThat(until === ruling[i + 1].from, `the record after block ${height} says a former `
        + `set ruled until ${until}, the trace until ${ruling[i + 1].from}`);
      const set = await validatorSet(former.keys);
      requireThat(equal(set.hash, ruling[i].set.hash),
        `the record after block ${height} names another set as ruling until ${until}`);
    }
    const known = this.entries.filter((entry) => entry.from > height);
    requireThat(record.pending.length >= known.length,
      `the record after block ${height} lacks the change effective at `
      + `${known[record.pending.length]?.from}`);
    const added = [];
    for (const [i, entry] of record.pending.entries()) {
      const from = Number(entry.height);
      const set = await validatorSet(entry.keys);
      if (i < known.length) {
        requireThat(from === known[i].from && equal(set.hash, known[i].set.hash),
          `the record after block ${height} schedules set ${short(set.hash)} at ${from}, the `
          + `trace set ${short(known[i].set.hash)} at ${known[i].from}`);
        continue;
      }
      const last = this.entries[this.entries.length - 1].from;
      requireThat(extend, `the validator set changes at height ${from}, a change the trace from `
        + "genesis does not hold");
      requireThat(Number.isSafeInteger(from) && from > height && from > last,
        `the record after block ${height} schedules a change at ${from}, not after ${last}`);
      this.entries.push({ from, set });
      added.push(from);
    }
    return added;
  }
}
