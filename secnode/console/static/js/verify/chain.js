// Chain identity in the browser: header hashes (§8.2), addresses (§4.3), the genesis document
// hash (§9.2), validator sets and their hash and quorum (§13.1), and commit certificates
// (§14). Inputs are the RPC's JSON forms (bytes as hex, addresses as sec1 text); each is turned
// back into the canonical map before it is hashed, so a field the node altered changes the hash.
// Invariant: nothing here trusts the node: every function either computes from its inputs or
// throws ProofError naming the field or rule.

import { parseAddress } from "./bech32m.js";
import { compare, concat, equal, fromHex, toHex, utf8 } from "./bytes.js";
import { sha256, verifyEd25519 } from "./crypto.js";
import { ProofError, requireThat } from "./errors.js";
import { encode } from "./msgpack.js";

const HEADER_FIELDS = [
  "chain_id", "height", "prev_hash", "timestamp_ms", "proposer", "view", "tx_root",
  "receipts_root", "state_root", "validators_hash",
];
const MAX_CERTIFICATE_SIGNATURES = 1024;

function isCount(value) {
  return (Number.isSafeInteger(value) && value >= 0) || (typeof value === "bigint" && value >= 0n);
}

function hexField(json, name, size) {
  let bytes;
  try {
    bytes = fromHex(json[name]);
  } catch {
    throw new ProofError(`${name} is not hex`);
  }
  requireThat(bytes.length === size, `${name} is ${bytes.length} bytes, not ${size}`);
  return bytes;
}

function addressField(json, name) {
  try {
    return parseAddress(json[name]);
  } catch (error) {
    throw new ProofError(`${name}: ${error.message}`);
  }
}

/**
 * The canonical header map (§8.1) of a JSON header; throws ProofError for a missing, extra or
 * malformed field.
 * @param {object} json
 * @returns {object}
 */
export function headerMap(json) {
  requireThat(json !== null && typeof json === "object", "the answer carries no header");
  const names = Object.keys(json).sort();
  requireThat(
    names.join() === [...HEADER_FIELDS].sort().join(),
    `header fields are ${names.join(", ")}, expected exactly ${HEADER_FIELDS.join(", ")}`,
  );
  requireThat(typeof json.chain_id === "string", "header chain_id is not text");
  for (const name of ["height", "timestamp_ms", "view"]) {
    requireThat(isCount(json[name]), `header ${name} is not a non-negative integer`);
  }
  return {
    chain_id: json.chain_id,
    height: json.height,
    prev_hash: hexField(json, "prev_hash", 32),
    timestamp_ms: json.timestamp_ms,
    proposer: addressField(json, "proposer"),
    view: json.view,
    tx_root: hexField(json, "tx_root", 32),
    receipts_root: hexField(json, "receipts_root", 32),
    state_root: hexField(json, "state_root", 32),
    validators_hash: hexField(json, "validators_hash", 32),
  };
}

/**
 * block_hash = H("SEC/header/v1" || encode(header)) of a JSON header.
 * @param {object} json the header as the RPC returns it
 * @returns {Promise<Uint8Array>}
 */
export function headerHash(json) {
  return sha256(utf8("SEC/header/v1"), encode(headerMap(json)));
}

/**
 * address = H("SEC/address/v1" || public key)[0:20].
 * @param {Uint8Array} publicKey 32 bytes
 * @returns {Promise<Uint8Array>}
 */
export async function addressOf(publicKey) {
  requireThat(publicKey instanceof Uint8Array && publicKey.length === 32, "a public key is 32 bytes");
  return (await sha256(utf8("SEC/address/v1"), publicKey)).slice(0, 20);
}

/**
 * validators_hash = H("SEC/validators/v1" || encode([public key, ...])) in set order.
 * @param {Uint8Array[]} publicKeys
 * @returns {Promise<Uint8Array>}
 */
export function validatorsHash(publicKeys) {
  return sha256(utf8("SEC/validators/v1"), encode(publicKeys));
}

/**
 * The quorum of a set of n validators: floor((n + f) / 2) + 1 with f = floor((n - 1) / 3).
 * @param {number} n at least 1
 * @returns {number}
 */
export function quorum(n) {
  const f = Math.floor((n - 1) / 3);
  return Math.floor((n + f) / 2) + 1;
}

/**
 * A validator set from public keys: members sorted by address, with its hash and quorum.
 * Throws ProofError for an empty set or a key listed twice.
 * @param {Uint8Array[]} publicKeys
 * @returns {Promise<{members: {publicKey: Uint8Array, address: Uint8Array}[], hash: Uint8Array,
 *   quorum: number}>}
 */
export async function validatorSet(publicKeys) {
  requireThat(publicKeys.length >= 1, "a validator set is not empty");
  const members = [];
  for (const publicKey of publicKeys) members.push({ publicKey, address: await addressOf(publicKey) });
  members.sort((a, b) => compare(a.address, b.address));
  for (let i = 1; i < members.length; i += 1) {
    requireThat(!equal(members[i - 1].address, members[i].address), "a validator is listed twice");
  }
  const hash = await validatorsHash(members.map((m) => m.publicKey));
  return { members, hash, quorum: quorum(members.length) };
}

const GENESIS_FIELDS = [
  "chain_id", "genesis_time_ms", "note", "dev_key_labels", "validators", "accounts",
  "parameters", "pretrusted",
];

function onlyFields(json, allowed, what) {
  requireThat(json !== null && typeof json === "object" && !Array.isArray(json), `${what} is not an object`);
  for (const name of Object.keys(json)) {
    requireThat(allowed.includes(name), `${what} has an unknown field ${name}`);
  }
}

/**
 * The normalized genesis document N of §9.2 (all eight fields, defaults filled in, public
 * keys as hex text); throws ProofError for a field the document must not have.
 * @param {object} doc the genesis JSON document
 * @returns {object}
 */
export function normalizedGenesis(doc) {
  onlyFields(doc, GENESIS_FIELDS, "genesis document");
  requireThat(Array.isArray(doc.validators) && Array.isArray(doc.accounts), "genesis lists no validators or accounts");
  return {
    chain_id: doc.chain_id,
    genesis_time_ms: doc.genesis_time_ms,
    note: doc.note ?? "",
    dev_key_labels: doc.dev_key_labels ?? false,
    validators: doc.validators.map((v) => {
      onlyFields(v, ["name", "public_key"], "genesis validator");
      return { name: v.name, public_key: v.public_key };
    }),
    accounts: doc.accounts.map((a) => {
      onlyFields(a, ["name", "public_key", "roles", "balance"], "genesis account");
      return { name: a.name, public_key: a.public_key, roles: a.roles, balance: a.balance };
    }),
    parameters: doc.parameters ?? {},
    pretrusted: doc.pretrusted ?? [],
  };
}

/**
 * genesis_hash = H("SEC/genesis/v1" || encode(N)), the prev_hash of block 0.
 * @param {object} doc the genesis JSON document
 * @returns {Promise<Uint8Array>}
 */
export function genesisHash(doc) {
  return sha256(utf8("SEC/genesis/v1"), encode(normalizedGenesis(doc)));
}

/**
 * The genesis validator set (sorted by address), from the document's public keys.
 * @param {object} doc
 * @returns {ReturnType<typeof validatorSet>}
 */
export function genesisValidatorSet(doc) {
  return validatorSet(normalizedGenesis(doc).validators.map((v) => fromHex(v.public_key)));
}

/**
 * "SEC/commit/v1" || encode([chain_id, height, block_hash]): what validators sign.
 * @param {string} chainId
 * @param {number|bigint} height
 * @param {Uint8Array} blockHash
 * @returns {Uint8Array}
 */
export function commitSigningBytes(chainId, height, blockHash) {
  return concat(utf8("SEC/commit/v1"), encode([chainId, height, blockHash]));
}

/**
 * Verify a certificate (§14.3, JSON form) against a validator set: expected height and block
 * hash if given, every entry a member that has not signed before and whose signature verifies,
 * and at least a quorum of entries. Resolves to the number of signers; rejects with ProofError.
 * @param {object} cert {height, block_hash, signatures: [{validator, signature}]}
 * @param {string} chainId
 * @param {Awaited<ReturnType<typeof validatorSet>>} set
 * @param {{height?: number, blockHash?: Uint8Array}} [expected]
 * @returns {Promise<number>}
 */
export async function verifyCertificate(cert, chainId, set, { height, blockHash } = {}) {
  requireThat(cert !== null && typeof cert === "object", "the block carries no certificate");
  requireThat(isCount(cert.height), "certificate height is not a non-negative integer");
  const certHash = hexField(cert, "block_hash", 32);
  requireThat(Array.isArray(cert.signatures), "certificate signatures are not a list");
  requireThat(
    cert.signatures.length <= MAX_CERTIFICATE_SIGNATURES,
    `certificate has more than ${MAX_CERTIFICATE_SIGNATURES} signatures`,
  );
  if (height !== undefined) {
    requireThat(BigInt(cert.height) === BigInt(height), `certificate is for height ${cert.height}, not ${height}`);
  }
  if (blockHash !== undefined) {
    requireThat(
      equal(certHash, blockHash),
      `certificate is for block ${toHex(certHash)}, not ${toHex(blockHash)}`,
    );
  }
  const message = commitSigningBytes(chainId, cert.height, certHash);
  const seen = new Set();
  for (const entry of cert.signatures) {
    const address = addressField(entry, "validator");
    const text = entry.validator;
    requireThat(!seen.has(toHex(address)), `validator ${text} signed twice`);
    seen.add(toHex(address));
    const member = set.members.find((m) => equal(m.address, address));
    requireThat(member !== undefined, `signer ${text} is not in the validator set`);
    const signature = hexField(entry, "signature", 64);
    requireThat(
      await verifyEd25519(member.publicKey, message, signature),
      `signature of ${text} does not verify`,
    );
  }
  requireThat(
    seen.size >= set.quorum,
    `certificate has ${seen.size} signatures, a quorum of ${set.quorum} of ${set.members.length} validators is needed`,
  );
  return seen.size;
}
