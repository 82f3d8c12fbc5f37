// State proofs of docs/protocol.md §11.2, the same logic as ledger/state_tree.py's
// verify_state_proof: membership (the key's own leaf), absence at an empty subtree, and absence
// at another key's leaf. Invariant: verifyStateProof resolves only if, under `root`, `key` maps
// to exactly `value` (or is absent when value is null); otherwise it rejects with a ProofError
// naming the check.

import { equal, fromHex, toHex } from "./bytes.js";
import { sha256 } from "./crypto.js";
import { ProofError, requireThat } from "./errors.js";

const LEAF = Uint8Array.of(0);
const NODE = Uint8Array.of(1);
const EMPTY = new Uint8Array(32);
const PATH_BITS = 256;

/**
 * A StateProof from its RPC JSON form ({key, value_hash, siblings, other_leaf}, bytes as hex).
 * Throws ProofError when a field is missing or not hex.
 * @param {object} json
 * @returns {{key: Uint8Array, valueHash: Uint8Array|null, siblings: Uint8Array[],
 *   otherLeaf: {path: Uint8Array, valueHash: Uint8Array}|null}}
 */
export function proofFromJson(json) {
  try {
    requireThat(json !== null && typeof json === "object", "the answer carries no proof");
    requireThat(Array.isArray(json.siblings), "proof siblings are not a list");
    const other = json.other_leaf;
    return {
      key: fromHex(json.key),
      valueHash: json.value_hash === null ? null : fromHex(json.value_hash),
      siblings: json.siblings.map(fromHex),
      otherLeaf: other === null || other === undefined
        ? null : { path: fromHex(other.path), valueHash: fromHex(other.value_hash) },
    };
  } catch (error) {
    if (error instanceof ProofError) throw error;
    throw new ProofError(`malformed state proof: ${error.message}`);
  }
}

function checkHash(name, value) {
  requireThat(value instanceof Uint8Array && value.length === 32, `${name} is not 32 bytes`);
}

function bit(path, depth) {
  return (path[depth >> 3] >> (7 - (depth & 7))) & 1;
}

function sharedBits(a, b) {
  for (let depth = 0; depth < PATH_BITS; depth += 1) if (bit(a, depth) !== bit(b, depth)) return depth;
  return PATH_BITS;
}

/**
 * Check a state proof (see the module comment); resolves to the number of siblings.
 * @param {Uint8Array} root
 * @param {Uint8Array} key
 * @param {Uint8Array|null} value
 * @param {ReturnType<typeof proofFromJson>} proof
 * @returns {Promise<number>}
 */
export async function verifyStateProof(root, key, value, proof) {
  checkHash("root", root);
  requireThat(equal(proof.key, key), `proof is for key ${toHex(proof.key)}, not ${toHex(key)}`);
  requireThat(
    proof.siblings.length <= PATH_BITS,
    `proof has ${proof.siblings.length} siblings, more than ${PATH_BITS}`,
  );
  proof.siblings.forEach((sibling, level) => checkHash(`sibling ${level}`, sibling));
  const path = await sha256(key);
  const depth = proof.siblings.length;
  let node;
  if (value !== null) {
    requireThat(proof.valueHash !== null, `value given for key ${toHex(key)} but the proof is of absence`);
    checkHash("value hash", proof.valueHash);
    requireThat(proof.otherLeaf === null, "a membership proof must not carry another leaf");
    const valueHash = await sha256(value);
    requireThat(
      equal(valueHash, proof.valueHash),
      `value hashes to ${toHex(valueHash)}, the proof has ${toHex(proof.valueHash)}`,
    );
    node = await sha256(LEAF, path, proof.valueHash);
  } else if (proof.valueHash !== null) {
    throw new ProofError(`key ${toHex(key)} claimed absent but the proof is of membership`);
  } else if (proof.otherLeaf === null) {
    node = EMPTY;
  } else {
    const other = proof.otherLeaf;
    checkHash("other leaf path", other.path);
    checkHash("other leaf value hash", other.valueHash);
    requireThat(!equal(other.path, path), `the leaf at the end of the path is key ${toHex(key)} itself`);
    const common = sharedBits(other.path, path);
    requireThat(
      common >= depth,
      `other leaf ${toHex(other.path)} shares ${common} path bits with the key, so it cannot sit at depth ${depth}`,
    );
    node = await sha256(LEAF, other.path, other.valueHash);
  }
  for (let level = depth - 1; level >= 0; level -= 1) {
    const sibling = proof.siblings[level];
    node = bit(path, level) ? await sha256(NODE, sibling, node) : await sha256(NODE, node, sibling);
  }
  requireThat(
    equal(node, root),
    `proof for key ${toHex(key)} computes root ${toHex(node)}, not ${toHex(root)}`,
  );
  return depth;
}
