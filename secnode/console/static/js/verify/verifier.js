// The Verifier of the console (interface B of docs/console work): each verify fetches an
// answer and its proof from the node and checks them here, in the browser, trusting only the
// genesis document.
//
// Chain of trust, for every report: the genesis document's hash and validator set are
// computed here; block 0 must carry that hash as prev_hash. A header is accepted when its hash
// (computed here) is certified by a quorum of the set its validators_hash names: the genesis
// set, or (weaker, and said so in the checks) a set from the head's proven "validators"
// record. A state answer must be read at such a header's state_root, prove its record under
// it, and show beside the proof exactly the fields decoded from the proven bytes.
// Invariant: every public method resolves (never rejects) to a Report, and `record` is only
// ever data decoded from bytes that verified (null when anything failed).

import { formatAddress, parseAddress } from "./bech32m.js";
import { compare, concat, equal, toHex, utf8 } from "./bytes.js";
import {
  addressOf, genesisHash, genesisValidatorSet, headerHash, normalizedGenesis, validatorSet,
  verifyCertificate,
} from "./chain.js";
import { sha256, verifyEd25519 } from "./crypto.js";
import { ProofError, requireThat } from "./errors.js";
import { leafHash, verifyInclusion } from "./merkle.js";
import { decode, encode } from "./msgpack.js";
import {
  decodeAccount, decodeEpoch, decodeGroup, decodeMember, decodeOrder, decodeScore,
  decodeValidators, difference, hexOf, jsonValue,
} from "./records.js";
import { proofFromJson, verifyStateProof } from "./statetree.js";

const MAX_TRANSACTION_SIZE = 16384;
const MAX_MEMBER_PAGE = 100;
const ACCOUNT_FIELDS = ["public_key", "nonce", "balance", "roles", "name"];
const TX_FIELDS = ["body", "chain_id", "nonce", "sender", "signature", "type"];
// A set from the head's record is certified by itself: a node holding no validator key can
// make one up (fresh keys, a record naming them, a header and certificate they sign). The
// summary says so, not only a check further down (the genesis set needs no such caveat).
const UNTRACED = " (weaker: the validator set is the node's head record, certified by itself, "
  + "not traced from the genesis set; sec audit chain traces it)";

function uint32(n) {
  return Uint8Array.of((n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255);
}

function number(n) {
  return Number(n).toLocaleString("en-US");
}

function short(bytes) {
  return `${toHex(bytes).slice(0, 12)}…`;
}

/** Require `shown` (the node's JSON) to equal `proven` (decoded from proven bytes). */
function requireShown(shown, proven, what) {
  const field = difference(shown, proven, what);
  requireThat(field === null, `${field} shown by the node is not what the proven record holds`);
}

// A thrown error in words: a failed check as it is, else what the node's answer did.
function describe(error) {
  if (error instanceof ProofError) return error.message;
  const text = error?.message ?? String(error);
  if (error?.name === "RpcError") return `the node answered with an error: ${text}`;
  if (error instanceof TypeError && text.includes("fetch")) {
    return `the node could not be reached: ${text}`;
  }
  return `the node's answer is malformed (${error?.name ?? "Error"}: ${text})`;
}

class Run {
  constructor() {
    this.checks = [];
    this.height = null;
    this.record = null;
    this.untraced = false; // a validator set taken from the head's record (see #setFor)
  }

  check(text) {
    this.checks.push(text);
  }
}

/** Verifies what a node shows against the genesis document (see the module comment). */
export class Verifier {
  /**
   * @param {{call: (method: string, params: object) => Promise<*>}} rpc throws on an RPC error
   * @param {object} genesis the genesis JSON document
   * @param {{pinned?: boolean}} [options] pinned: the genesis came from the user's own file
   */
  constructor(rpc, genesis, { pinned = false } = {}) {
    this.rpc = rpc;
    this.genesis = genesis;
    this.pinned = pinned;
    this.anchor = null;
  }

  async #run(body) {
    const run = new Run();
    try {
      const summary = await body(run) + (run.untraced ? UNTRACED : "");
      return {
        ok: true, summary: `Verified: ${summary}`, checks: run.checks, error: null,
        height: run.height, record: run.record,
      };
    } catch (error) {
      const message = describe(error);
      run.check(`✗ ${message}`);
      return {
        ok: false, summary: `Verification failed: ${message}`, checks: run.checks,
        error: message, height: run.height, record: null,
      };
    }
  }

  // The genesis hash, set and block 0, computed once; their checks open every report.
  async #trustAnchor(run) {
    if (this.anchor !== null) {
      for (const text of this.anchor.checks) run.check(text);
      return this.anchor;
    }
    const checks = [];
    const note = (text) => {
      checks.push(text);
      run.check(text);
    };
    const doc = normalizedGenesis(this.genesis);
    const hash = await genesisHash(this.genesis);
    const origin = this.pinned
      ? "from your own genesis file (pinned)"
      : "as supplied by the node (not pinned: start the console with your own --genesis to pin it)";
    note(`genesis document hash computed here: ${toHex(hash)}, ${origin}`);
    const set = await genesisValidatorSet(this.genesis);
    note(`genesis validator set computed here: ${set.members.length} validators, `
      + `hash ${short(set.hash)}, quorum ${set.quorum}`);
    const block0 = await this.rpc.call("sec_getCommit", { height: 0 });
    const block0Hash = await headerHash(block0.header);
    requireThat(block0.header.height === 0, "block 0's header is not at height 0");
    requireThat(equal(hexOf(block0.header.prev_hash, "block 0 prev_hash"), hash),
      "block 0's prev_hash is not the genesis document hash: the node serves another network");
    requireThat(block0.header.chain_id === doc.chain_id,
      `block 0 is for chain ${block0.header.chain_id}, not ${doc.chain_id}`);
    requireThat(equal(hexOf(block0.header.validators_hash, "block 0 validators_hash"), set.hash),
      "block 0's validators_hash is not the genesis validator set's hash");
    requireThat(equal(hexOf(block0.hash, "block 0 hash"), block0Hash),
      "block 0's hash is not its header's hash");
    note("block 0 fetched: its prev_hash equals the computed genesis hash "
      + "and its validators_hash the genesis set's");
    const pretrusted = [];
    for (const name of doc.pretrusted) {
      const account = doc.accounts.find((a) => a.name === name);
      requireThat(account !== undefined, `genesis pretrusted ${name} is not a genesis account`);
      pretrusted.push(await addressOf(hexOf(account.public_key, `public key of ${name}`)));
    }
    pretrusted.sort(compare);
    this.anchor = { hash, set, chainId: doc.chain_id, block0Hash, checks, pretrusted };
    return this.anchor;
  }

  // The set a header names: the genesis set, else one from the head's proven record (weaker).
  async #setFor(run, anchor, header) {
    const named = hexOf(header.validators_hash, "header validators_hash");
    if (equal(named, anchor.set.hash)) {
      run.check(`block ${number(header.height)}'s validators_hash names the genesis validator set`);
      return anchor.set;
    }
    const head = await this.rpc.call("sec_getValidatorsWithProof", {});
    const headHash = await headerHash(head.header);
    requireThat(equal(headHash, hexOf(head.block_hash, "block_hash")),
      "the validators answer's header does not hash to its block_hash");
    const root = hexOf(head.header.state_root, "state_root");
    requireThat(equal(root, hexOf(head.state_root, "state_root")),
      "the validators answer's state_root is not its header's");
    const raw = hexOf(head.value, "validators record");
    await verifyStateProof(root, utf8("validators"), raw, proofFromJson(head.proof));
    const record = decodeValidators(raw);
    const current = await validatorSet(record.current);
    requireThat(equal(current.hash, hexOf(head.header.validators_hash, "validators_hash")),
      "the head's proven validators record is not the set its header names");
    const headHeight = head.header.height;
    await verifyCertificate(head.certificate, anchor.chainId, current,
      { height: headHeight, blockHash: headHash });
    const sets = [current];
    for (const keys of [...record.pending, ...record.history].map((entry) => entry.keys)) {
      sets.push(await validatorSet(keys));
    }
    const found = sets.find((s) => equal(s.hash, named));
    requireThat(found !== undefined, `block ${header.height} names validator set ${short(named)}, `
      + "which is neither the genesis set nor one in the head's proven record");
    run.untraced = true;
    run.check(`the validator set changed since genesis: set ${short(named)} taken from the head's `
      + `proven "validators" record at height ${number(headHeight)} (weaker: that record is `
      + "certified by the set it names, not traced back to the genesis set)");
    return found;
  }

  // A header certified at `height`: its hash computed here, its certificate checked.
  async #certified(run, anchor, height, given = null) {
    const answer = given ?? await this.rpc.call("sec_getCommit", { height });
    const header = answer.header;
    const hash = await headerHash(header);
    requireThat(equal(hash, hexOf(answer.hash, "block hash")),
      `block ${height}'s header hashes to ${toHex(hash)}, not the hash the node gave`);
    requireThat(BigInt(header.height) === BigInt(height),
      `the node sent block ${header.height}, not ${height}`);
    requireThat(header.chain_id === anchor.chainId,
      `block ${height} is for chain ${header.chain_id}, not ${anchor.chainId}`);
    run.height = Number(height);
    const time = new Date(Number(header.timestamp_ms)).toISOString();
    run.check(`header of block ${number(height)} hashed here: ${short(hash)}, block time ${time}`);
    if (BigInt(height) === 0n) {
      requireThat(equal(hash, anchor.block0Hash), "this block 0 is not the genesis block");
      requireThat(answer.certificate === null, "block 0 has no certificate");
      run.check("block 0 is trusted through the genesis document (it has no certificate)");
      return { header, hash, signers: 0, size: anchor.set.members.length };
    }
    const set = await this.#setFor(run, anchor, header);
    const signers = await verifyCertificate(answer.certificate, anchor.chainId, set,
      { height, blockHash: hash });
    run.check(`certificate of block ${number(height)}: ${signers} of ${set.members.length} `
      + `validators signed (quorum ${set.quorum}), every Ed25519 signature verified, `
      + "no duplicate or outside signer");
    return { header, hash, signers, size: set.members.length };
  }

  // A state answer ({height, state_root, value, proof}): its block certified, its state_root
  // that block's, and its value (or absence) proven under it.
  async #provenState(run, anchor, answer, key, what) {
    const block = await this.#certified(run, anchor, answer.height);
    const root = hexOf(block.header.state_root, "state_root");
    requireThat(equal(root, hexOf(answer.state_root, "state_root")),
      `the answer's state_root is not the state_root of certified block ${answer.height}`);
    run.check(`the answer's state_root is block ${number(answer.height)}'s certified state_root`);
    const value = answer.value === null ? null : hexOf(answer.value, "value");
    const hashes = await this.#stateProof(run, root, key, value, answer.proof,
      value === null ? `absence of the ${what}` : what);
    return { block, root, value, hashes };
  }

  async #stateProof(run, root, key, value, proofJson, what) {
    const hashes = await verifyStateProof(root, key, value, proofFromJson(proofJson));
    run.check(`state proof of the ${what}: ${hashes} sibling hashes lead to the certified state_root`);
    return hashes;
  }

  /**
   * Verify block `height`: header hash, certificate against the validator set, and the link
   * (prev_hash) to block height - 1.
   * @param {number} height
   * @returns {Promise<object>} a Report
   */
  verifyBlock(height) {
    return this.#run(async (run) => {
      const h = Number(height);
      requireThat(Number.isSafeInteger(h) && h >= 0, `height ${height} is not a block height`);
      const anchor = await this.#trustAnchor(run);
      const block = await this.#certified(run, anchor, h);
      run.record = { height: h, hash: toHex(block.hash), header: block.header, signers: block.signers };
      if (h === 0) return `block 0 is the genesis block of this document (hash ${short(block.hash)})`;
      const parent = await this.rpc.call("sec_getCommit", { height: h - 1 });
      const parentHash = await headerHash(parent.header);
      requireThat(BigInt(parent.header.height) === BigInt(h - 1),
        `the node sent block ${parent.header.height} as the parent`);
      requireThat(equal(parentHash, hexOf(block.header.prev_hash, "prev_hash")),
        `block ${h}'s prev_hash is not the hash of block ${h - 1}`);
      requireThat(BigInt(parent.header.timestamp_ms) < BigInt(block.header.timestamp_ms),
        `block ${h}'s timestamp is not after block ${h - 1}'s`);
      run.check(`prev_hash links to block ${number(h - 1)} (its header hashed here), `
        + "timestamp increasing");
      run.check("not covered: the block's list of transactions and receipts (tx_root and "
        + "receipts_root are certified, the list shown beside them is not; verify each "
        + "transaction on its page)");
      return `block ${number(h)} (hash ${short(block.hash)}), ${signed(block)}, `
        + `linked to block ${number(h - 1)}`;
    });
  }

  /**
   * Verify a transaction: its bytes hash to `hash`, its sender's signature, its RFC 6962
   * inclusion under the tx_root of a certified header, and the decoded fields shown.
   * @param {string} hash hex
   * @returns {Promise<object>} a Report
   */
  verifyTransaction(hash) {
    return this.#run(async (run) => {
      const wanted = this.#id(hash, "transaction hash");
      const anchor = await this.#trustAnchor(run);
      const answer = await this.rpc.call("sec_getTransaction", { hash: toHex(wanted) });
      requireThat(answer.status === "committed" && answer.proof,
        `the transaction is ${answer.status}, not committed: nothing to prove yet`);
      const raw = hexOf(answer.raw, "raw");
      requireThat(raw.length <= MAX_TRANSACTION_SIZE,
        `the transaction is ${raw.length} bytes, more than ${MAX_TRANSACTION_SIZE}`);
      requireThat(equal(await sha256(raw), wanted), "the raw bytes do not hash to the transaction hash");
      run.check(`raw transaction (${raw.length} bytes) hashes to ${short(wanted)}`);
      const tx = await signedTransaction(raw, anchor.hash);
      run.check("sender's Ed25519 signature over chain id, genesis hash, nonce, type and body verified");
      requireShown(answer.tx, tx, "tx");
      run.check("the fields shown (sender, nonce, type, body, …) are the decoded signed bytes");
      const leaf = await leafHash(raw);
      const proof = answer.proof;
      requireThat(equal(leaf, hexOf(proof.leaf_hash, "leaf_hash")),
        "the proof's leaf_hash is not H(0x00 || raw)");
      const block = await this.#certified(run, anchor, answer.height);
      requireThat(equal(block.hash, hexOf(answer.block_hash, "block_hash")),
        "block_hash is not the certified block's hash");
      const root = hexOf(block.header.tx_root, "tx_root");
      requireThat(equal(root, hexOf(proof.tx_root, "tx_root")),
        "the proof's tx_root is not the certified header's");
      requireThat(BigInt(proof.leaf_index) === BigInt(answer.index),
        "the proof is for another position in the block");
      const path = proof.hashes.map((h, i) => hexOf(h, `proof hash ${i}`));
      await verifyInclusion(leaf, proof.leaf_index, proof.tree_size, path, root);
      run.check(`RFC 6962 inclusion: leaf ${number(proof.leaf_index)} of `
        + `${number(proof.tree_size)} under the certified tx_root, proof of ${path.length} hashes`);
      run.check("not covered: the receipt (the node serves no proof of it; sec audit chain "
        + "re-executes)");
      run.record = tx;
      return `transaction in block ${number(answer.height)}, ${signed(block)}, `
        + `proof of ${path.length} hashes`;
    });
  }

  /**
   * Verify an account (record or absence) at the head: sec_getAccount {prove: true}.
   * @param {string} address sec1 text
   * @returns {Promise<object>} a Report
   */
  verifyAccount(address) {
    return this.#run(async (run) => {
      const bytes = this.#address(address);
      const text = formatAddress(bytes);
      const anchor = await this.#trustAnchor(run);
      const answer = await this.rpc.call("sec_getAccount", { address: text, prove: true });
      const key = concat(utf8("acct:"), bytes);
      const proven = await this.#provenState(run, anchor, answer, key, "account record");
      requireThat(answer.address === text, "the answer is for another address");
      requireThat(answer.exists === (proven.value !== null), "exists disagrees with the proof");
      const shown = Object.fromEntries(ACCOUNT_FIELDS.map((name) => [name, answer[name]]));
      if (proven.value === null) {
        requireShown(shown, Object.fromEntries(ACCOUNT_FIELDS.map((name) => [name, null])), "account");
        run.record = { address: text, exists: false };
      } else {
        const record = decodeAccount(proven.value);
        requireThat(equal(await addressOf(hexOf(record.public_key, "public_key")), bytes),
          "the proven record's public key is not this address's key");
        requireShown(shown, record, "account");
        run.record = { address: text, exists: true, ...record };
      }
      run.check(`fields compared: ${ACCOUNT_FIELDS.join(", ")} equal the proven record`);
      return stateSummary(proven, "the account record");
    });
  }

  /**
   * Verify an order and its lines: sec_getOrder {prove: true}.
   * @param {string} orderId hex
   * @returns {Promise<object>} a Report
   */
  verifyOrder(orderId) {
    return this.#run(async (run) => {
      const id = this.#id(orderId, "order id");
      const anchor = await this.#trustAnchor(run);
      const answer = await this.rpc.call("sec_getOrder", { order_id: toHex(id), prove: true });
      const key = concat(utf8("order:"), id);
      const proven = await this.#provenState(run, anchor, answer, key, "order record");
      const present = proven.value !== null;
      requireThat((answer.order !== null) === present && answer.exists === present,
        `the order is shown ${present ? "absent" : "present"} but the proof says otherwise`);
      if (proven.value === null) {
        run.record = { order_id: toHex(id), exists: false };
      } else {
        const order = decodeOrder(toHex(id), proven.value);
        requireShown(answer.order, order, "order");
        requireShown(answer.items, order.items, "items");
        run.check(`fields compared: all ${Object.keys(order).length} order fields and `
          + `${order.items.length} lines equal the proven record`);
        run.record = order;
      }
      return stateSummary(proven, "the order record");
    });
  }

  /**
   * Verify a group and its first page of members: sec_getGroup {prove: true}.
   * @param {string} groupId hex
   * @returns {Promise<object>} a Report
   */
  verifyGroup(groupId) {
    return this.#run(async (run) => {
      const id = this.#id(groupId, "group id");
      const anchor = await this.#trustAnchor(run);
      const answer = await this.rpc.call("sec_getGroup",
        { group_id: toHex(id), prove: true, members_from: 0 });
      const proven = await this.#provenState(run, anchor, answer, concat(utf8("group:"), id),
        "group record");
      requireThat((answer.group === null) === (proven.value === null),
        `the group is shown ${answer.group === null ? "absent" : "present"} `
        + "but the proof says otherwise");
      requireThat(Array.isArray(answer.members) && answer.members.length <= MAX_MEMBER_PAGE,
        `a page holds at most ${MAX_MEMBER_PAGE} members`);
      if (proven.value === null) {
        requireThat(answer.members.length === 0, "a group that does not exist has no members");
        run.record = { group_id: toHex(id), exists: false, group: null, members: [] };
        return stateSummary(proven, "the group record");
      }
      const group = decodeGroup(toHex(id), proven.value);
      requireShown(answer.group, group, "group");
      const end = answer.members.length;
      const expectedNext = end < group.members ? end : null;
      requireThat((end > 0 || group.members === 0) && answer.next_member === expectedNext,
        `${end} members from 0 of ${group.members} with next_member ${answer.next_member} `
        + "is not a page of the group");
      const members = [];
      for (const [index, listed] of answer.members.entries()) {
        requireThat(listed.index === index, `member at index ${listed.index}, expected index ${index}`);
        const raw = hexOf(listed.value ?? "", `member ${index} value`);
        const key = concat(utf8("gmember:"), id, uint32(index));
        proven.hashes += await verifyStateProof(proven.root, key, raw, proofFromJson(listed.proof));
        const member = decodeMember(index, raw);
        const { proof: _proof, value: _value, ...shown } = listed;
        requireShown(shown, member, `member ${index}`);
        members.push(member);
      }
      run.check(`${members.length} of ${group.members} member records proven under the same root `
        + "and compared");
      run.record = { group_id: toHex(id), exists: true, group, members };
      return stateSummary(proven, `the group record and ${members.length} members`);
    });
  }

  /**
   * Verify a trust score: the sec_getTrustScore bundle's header and certificate, the score and
   * epoch records' proofs, the fields shown, and the epoch's pretrusted set against genesis.
   * @param {string} address sec1 text
   * @returns {Promise<object>} a Report
   */
  verifyTrustScore(address) {
    return this.#run(async (run) => {
      const bytes = this.#address(address);
      const text = formatAddress(bytes);
      const anchor = await this.#trustAnchor(run);
      const answer = await this.rpc.call("sec_getTrustScore", { address: text });
      const block = await this.#certified(run, anchor, answer.height,
        { header: answer.header, hash: answer.block_hash, certificate: answer.certificate });
      const root = hexOf(block.header.state_root, "state_root");
      requireThat(equal(root, hexOf(answer.state_root, "state_root")),
        "the bundle's state_root is not its certified header's");
      const epochRaw = hexOf(answer.values.epoch ?? "", "values.epoch");
      const scoreRaw = answer.values.score === null ? null : hexOf(answer.values.score, "values.score");
      const hashes = await this.#stateProof(run, root, utf8("trust:epoch"), epochRaw,
        answer.proofs.epoch, "epoch record")
        + await this.#stateProof(run, root, concat(utf8("trust:score:"), bytes), scoreRaw,
          answer.proofs.score, scoreRaw === null ? "absence of a score record" : "score record");
      requireThat(answer.scored === (scoreRaw !== null),
        `scored is ${answer.scored} but the proof says otherwise`);
      requireThat(answer.address === text, "the answer is for another address");
      const score = scoreRaw === null ? { score: 0, positive: 0, negative: 0 } : decodeScore(scoreRaw);
      const shown = { score: answer.score, positive: answer.positive, negative: answer.negative };
      requireShown(shown, score, "trust");
      const epoch = decodeEpoch(epochRaw);
      requireShown(answer.epoch, epoch, "epoch");
      run.check(`fields compared: score, positive, negative and epoch ${epoch.epoch} equal the `
        + "proven records");
      const pretrusted = anchor.pretrusted.map(formatAddress);
      requireThat(difference(epoch.parameters.pretrusted, pretrusted, "pretrusted") === null,
        "the epoch's pretrusted set is not the genesis document's");
      run.check(`the epoch's pretrusted set is the genesis document's (${pretrusted.length} accounts)`);
      run.check("not recomputed here: the scores from the epoch's inputs (sec audit trust does that)");
      run.record = { address: text, scored: answer.scored, ...score, epoch };
      return `state root at height ${number(block.header.height)}, ${signed(block)}, proofs of `
        + `${hashes} hashes for the score and epoch ${epoch.epoch} records`;
    });
  }

  #address(text) {
    try {
      return parseAddress(String(text));
    } catch (error) {
      throw new ProofError(error.message);
    }
  }

  #id(text, what) {
    const id = hexOf(String(text).toLowerCase(), what);
    requireThat(id.length === 32, `${what} is ${id.length} bytes, not 32`);
    return id;
  }
}

function signed(block) {
  return `signed by ${block.signers} of ${block.size} validators`;
}

function stateSummary(proven, what) {
  return `state root at height ${number(proven.block.header.height)}, ${signed(proven.block)}, `
    + `proof of ${proven.hashes} hashes for ${proven.value === null ? `the absence of ${what}` : what}`;
}

// The envelope of raw transaction bytes (§5.1) as the RPC shows it, after its sender's
// signature (§5.2) verified.
async function signedTransaction(raw, genesis) {
  let envelope;
  try {
    envelope = decode(raw, MAX_TRANSACTION_SIZE);
  } catch (error) {
    throw new ProofError(`the transaction is not canonical: ${error.message}`);
  }
  requireThat(envelope !== null && typeof envelope === "object"
    && Object.keys(envelope).sort().join() === TX_FIELDS.join(),
  "the transaction is not a map of exactly chain_id, sender, nonce, type, body, signature");
  const { chain_id: chainId, sender, nonce, type, body, signature } = envelope;
  const signing = concat(utf8("SEC/tx/v2"), encode([chainId, genesis, sender, nonce, type, body]));
  requireThat(await verifyEd25519(sender, signing, signature),
    "the sender's signature does not verify (chain id, genesis hash, nonce, type, body)");
  return {
    hash: toHex(await sha256(raw)), chain_id: chainId, sender: toHex(sender),
    sender_address: formatAddress(await addressOf(sender)), nonce, type, body: jsonValue(body),
    signature: toHex(signature), size: raw.length,
  };
}
