// RFC 6962 Merkle trees (docs/protocol.md §10), the same rules as ledger/merkle.py: leaf and
// node hashes, the root of a list of leaf hashes, and inclusion-proof verification (RFC 9162
// §2.1.3.2). Invariant: verifyInclusion resolves only for a proof that verifies; anything else
// (a hash that is not 32 bytes, an index or size out of range, a proof of the wrong length, a
// root mismatch) rejects with a ProofError naming the problem.

import { equal, toHex } from "./bytes.js";
import { sha256 } from "./crypto.js";
import { ProofError, requireThat } from "./errors.js";

const LEAF = Uint8Array.of(0);
const NODE = Uint8Array.of(1);

/**
 * SHA-256(0x00 || data): the hash of one leaf.
 * @param {Uint8Array} data
 * @returns {Promise<Uint8Array>}
 */
export function leafHash(data) {
  return sha256(LEAF, data);
}

/**
 * SHA-256(0x01 || left || right): an interior node.
 * @param {Uint8Array} left
 * @param {Uint8Array} right
 * @returns {Promise<Uint8Array>}
 */
export function nodeHash(left, right) {
  return sha256(NODE, left, right);
}

function checkHash(name, value) {
  requireThat(value instanceof Uint8Array, `${name} is not bytes`);
  requireThat(value.length === 32, `${name} is ${value.length} bytes, not 32: ${toHex(value)}`);
}

/**
 * The RFC 6962 Merkle Tree Hash over already-hashed leaves (SHA-256("") when empty).
 * @param {Uint8Array[]} leafHashes each 32 bytes
 * @returns {Promise<Uint8Array>}
 */
export async function merkleRoot(leafHashes) {
  leafHashes.forEach((hash, i) => checkHash(`leaf hash ${i}`, hash));
  if (leafHashes.length === 0) return sha256(new Uint8Array(0));
  let level = [...leafHashes];
  while (level.length > 1) {
    const paired = [];
    for (let i = 0; i + 1 < level.length; i += 2) paired.push(await nodeHash(level[i], level[i + 1]));
    if (level.length % 2) paired.push(level[level.length - 1]);
    level = paired;
  }
  return level[0];
}

function bitLength(n) {
  return n === 0n ? 0 : n.toString(2).length;
}

function popCount(n) {
  return [...n.toString(2)].filter((c) => c === "1").length;
}

function isCount(value) {
  return (Number.isSafeInteger(value) && value >= 0) || (typeof value === "bigint" && value >= 0n);
}

/**
 * Check that `path` proves leaf `index` of a `size`-leaf tree is `leaf` under `root`.
 * @param {Uint8Array} leaf the leaf hash
 * @param {number|bigint} index
 * @param {number|bigint} size
 * @param {Uint8Array[]} path hashes from the leaf towards the root
 * @param {Uint8Array} root
 * @returns {Promise<void>} rejects with ProofError
 */
export async function verifyInclusion(leaf, index, size, path, root) {
  checkHash("leaf hash", leaf);
  checkHash("root", root);
  requireThat(Array.isArray(path), "proof is not a list of hashes");
  path.forEach((hash, i) => checkHash(`proof hash ${i}`, hash));
  requireThat(isCount(size), `tree size ${size} is not a non-negative integer`);
  requireThat(isCount(index), `leaf index ${index} is not a non-negative integer`);
  let fn = BigInt(index);
  let sn = BigInt(size);
  requireThat(fn < sn, `leaf index ${index} is not in a tree of ${size} leaves`);
  sn -= 1n;
  const inner = bitLength(fn ^ sn);
  const expected = inner + popCount(fn >> BigInt(inner));
  requireThat(
    path.length === expected,
    `inclusion proof for leaf ${index} of ${size} has ${path.length} hashes, expected ${expected}`,
  );
  let result = leaf;
  for (const sibling of path) {
    requireThat(sn !== 0n, "inclusion proof is longer than the path to the root");
    if ((fn & 1n) === 1n || fn === sn) {
      result = await nodeHash(sibling, result);
      while (fn !== 0n && (fn & 1n) === 0n) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      result = await nodeHash(result, sibling);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  requireThat(sn === 0n, "inclusion proof is shorter than the path to the root");
  if (!equal(result, root)) {
    throw new ProofError(
      `inclusion proof for leaf ${index} of ${size} computes root ${toHex(result)}, not ${toHex(root)}`,
    );
  }
}
