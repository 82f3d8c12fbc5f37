// The vectors page: runs every applicable case of the shared vector files and of the Python
// fixtures through the in-browser verifier and writes a JSON summary into <pre id="results">:
// {"done": true, "suites": {name: {"total", "passed", "failed": [ids], "rejected": [ids]}}}.
// A case passes only when the verifier gives the result the vector (or Python) expects; a case
// the verifier refused is listed under "rejected", so a test can see that negatives failed.

import { formatAddress, parseAddress } from "./verify/bech32m.js";
import { equal, fromHex, toHex } from "./verify/bytes.js";
import { genesisHash, headerHash, validatorSet, verifyCertificate } from "./verify/chain.js";
import { verifyEd25519 } from "./verify/crypto.js";
import { leafHash, merkleRoot, verifyInclusion } from "./verify/merkle.js";
import { decode, encode } from "./verify/msgpack.js";
import { parseJson } from "./verify/jsonrpc.js";
import {
  decodeAccount, decodeEpoch, decodeGroup, decodeMember, decodeOrder, decodeScore, difference,
} from "./verify/records.js";
import { proofFromJson, verifyStateProof } from "./verify/statetree.js";

class Suite {
  constructor() {
    this.total = 0;
    this.passed = 0;
    this.failed = [];
    this.rejected = [];
  }

  // `run` resolves to true (accepted) or false (refused); it passes when that is `expected`.
  async case(id, expected, run) {
    this.total += 1;
    let accepted;
    try {
      accepted = (await run()) !== false;
    } catch (error) {
      accepted = false;
      if (expected) console.warn(`${id}: ${error.message}`);
    }
    if (!accepted) this.rejected.push(id);
    if (accepted === expected) this.passed += 1;
    else this.failed.push(id);
  }
}

async function fetchJson(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return parseJson(await response.text());
}

function sameValue(actual, expected) {
  return difference(actual, expected, "value") === null
    && (!(expected instanceof Uint8Array) || equal(actual, expected));
}

function bytesOf(dashed) {
  return fromHex(dashed.replaceAll("-", ""));
}

// --- the shared vectors -------------------------------------------------------------------------

const MSGPACK_KINDS = ["nil", "bool", "binary", "number", "string", "array", "map"];

function msgpackExpected(entry) {
  if ("bignum" in entry) {
    const n = BigInt(entry.bignum);
    return Number.isSafeInteger(Number(n)) && BigInt(Number(n)) === n ? Number(n) : n;
  }
  if ("binary" in entry) return bytesOf(entry.binary);
  for (const kind of ["nil", "bool", "number", "string", "array", "map"]) {
    if (kind in entry) return entry[kind];
  }
  throw new Error("no value");
}

// tests/test_encoding.py's rule: every kind but ext/timestamp is allowed, floats are not.
async function runMsgpackSuite(suite, data) {
  for (const [file, entries] of Object.entries(data)) {
    for (const [i, entry] of entries.entries()) {
      const kind = "bignum" in entry ? "number" : Object.keys(entry).find((k) => k !== "msgpack");
      const isFloat = kind === "number" && !("bignum" in entry) && !Number.isInteger(entry.number);
      const allowed = MSGPACK_KINDS.includes(kind) && !isFloat;
      const encodings = entry.msgpack.map(bytesOf);
      await suite.case(`${file}#${i}`, true, () => {
        if (!allowed) return encodings.every((e) => rejects(() => decode(e)));
        const value = msgpackExpected(entry);
        const canonical = encode(value);
        const nonFloat = encodings.filter((e) => e[0] !== 0xca && e[0] !== 0xcb);
        return encodings.some((e) => equal(e, canonical))
          && canonical.length === Math.min(...nonFloat.map((e) => e.length))
          && sameValue(decode(canonical), value)
          && encodings.every((e) => equal(e, canonical) || rejects(() => decode(e)));
      });
    }
  }
}

function rejects(run) {
  try {
    run();
    return false;
  } catch {
    return true;
  }
}

async function runWycheproof(suite, data) {
  for (const group of data.testGroups) {
    const key = fromHex(group.publicKey.pk);
    for (const test of group.tests) {
      const valid = test.result === "valid";
      await suite.case(`tc${test.tcId}-${test.result}`, valid,
        () => verifyEd25519(key, fromHex(test.msg), fromHex(test.sig)));
    }
  }
}

const PKCS8_ED25519 = fromHex("302e020100300506032b657004220420");

async function runRfc8032(suite, data) {
  for (const vector of data.vectors) {
    await suite.case(vector.name, true, async () => {
      const seed = fromHex(vector.secret_key_hex);
      const key = await crypto.subtle.importKey(
        "pkcs8", new Uint8Array([...PKCS8_ED25519, ...seed]), { name: "Ed25519" }, true, ["sign"]);
      const jwk = await crypto.subtle.exportKey("jwk", key);
      const publicKey = Uint8Array.from(atob(jwk.x.replaceAll("-", "+").replaceAll("_", "/")), (c) => c.charCodeAt(0));
      const message = fromHex(vector.message_hex);
      const signature = new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, key, message));
      const altered = new Uint8Array([...message, 0]);
      return toHex(publicKey) === vector.public_key_hex
        && toHex(signature) === vector.signature_hex
        && await verifyEd25519(publicKey, message, signature)
        && !(await verifyEd25519(publicKey, altered, signature));
    });
  }
}

async function runMerkle(suite, data) {
  const leaves = data.leaf_hashes_hex.map(fromHex);
  for (const [i, input] of data.leaf_inputs_hex.entries()) {
    await suite.case(`leaf-${i}`, true, async () => equal(await leafHash(fromHex(input)), leaves[i]));
  }
  for (const [n, root] of Object.entries(data.root_hashes_by_tree_size_hex)) {
    await suite.case(`root-${n}`, true, async () => equal(await merkleRoot(leaves.slice(0, Number(n))), fromHex(root)));
  }
  for (const proof of data.inclusion_proofs) {
    const { leaf_index_0based: index, tree_size: size } = proof;
    const path = proof.proof_hex.map(fromHex);
    const root = fromHex(data.root_hashes_by_tree_size_hex[size]);
    const leaf = leaves[index];
    await suite.case(`inclusion-${index}-of-${size}`, true, async () => {
      await verifyInclusion(leaf, index, size, path, root);
      return true;
    });
    const altered = path.length ? [new Uint8Array([path[0][0] ^ 1, ...path[0].slice(1)]), ...path.slice(1)] : path;
    const alteredRoot = path.length ? root : new Uint8Array([root[0] ^ 1, ...root.slice(1)]);
    await suite.case(`inclusion-${index}-of-${size}-altered`, false,
      () => verifyInclusion(leaf, index, size, altered, alteredRoot));
    await suite.case(`inclusion-${index}-of-${size}-longer`, false,
      () => verifyInclusion(leaf, index, size, [...path, leaf], root));
    await suite.case(`inclusion-${index}-of-${size}-short-hash`, false,
      () => verifyInclusion(leaf.slice(0, 31), index, size, path, root));
  }
}

// --- the Python fixtures --------------------------------------------------------------------------

const RECORD_DECODERS = {
  account: (c, raw) => decodeAccount(raw),
  order: (c, raw) => decodeOrder(c.key, raw),
  group: (c, raw) => decodeGroup(c.key, raw),
  member: (c, raw) => decodeMember(c.key, raw),
  score: (c, raw) => decodeScore(raw),
  epoch: (c, raw) => decodeEpoch(raw),
};

const FIXTURE_SUITES = {
  async state_proofs(suite, cases) {
    for (const c of cases) {
      await suite.case(c.id, c.valid, async () => {
        await verifyStateProof(fromHex(c.root), fromHex(c.key), c.value === null ? null : fromHex(c.value), proofFromJson(c.proof));
        return true;
      });
    }
  },
  async headers(suite, cases) {
    for (const c of cases) {
      await suite.case(c.id, c.valid, async () => equal(await headerHash(c.header), fromHex(c.hash)));
    }
  },
  async certificates(suite, cases) {
    for (const c of cases) {
      await suite.case(c.id, c.valid, async () => {
        const set = await validatorSet(c.validators.map(fromHex));
        await verifyCertificate(c.certificate, c.chain_id, set, { height: c.height });
        return true;
      });
    }
  },
  async genesis(suite, cases) {
    for (const c of cases) {
      await suite.case(c.id, true, async () => toHex(await genesisHash(c.document)) === c.hash);
    }
  },
  async records(suite, cases) {
    for (const c of cases) {
      await suite.case(c.id, c.expected !== null, () => {
        const decoded = RECORD_DECODERS[c.kind](c, fromHex(c.raw));
        const field = difference(decoded, c.expected, c.kind);
        if (field !== null) throw new Error(`${field} differs`);
        return true;
      });
    }
  },
  async ed25519(suite, cases) {
    for (const c of cases) {
      await suite.case(c.id, c.valid,
        () => verifyEd25519(fromHex(c.public_key), fromHex(c.message), fromHex(c.signature)));
    }
  },
  async addresses(suite, cases) {
    for (const c of cases) {
      await suite.case(c.id, c.address !== null, () => {
        const parsed = parseAddress(c.text);
        return toHex(parsed) === c.address && formatAddress(parsed) === c.text.toLowerCase();
      });
    }
  },
  async msgpack(suite, cases) {
    for (const c of cases) {
      await suite.case(c.id, c.accepted, () => {
        const data = fromHex(c.hex);
        return equal(encode(decode(data)), data);
      });
    }
  },
};

async function main() {
  const params = new URLSearchParams(location.search);
  const base = params.get("vectors") ?? "/vectors/";
  const suites = {};
  const add = (name) => {
    suites[name] = new Suite();
    return suites[name];
  };
  const text = async (name) => (await fetch(base + name)).text();
  await runMsgpackSuite(add("msgpack-test-suite"), JSON.parse(await text("msgpack-test-suite.json")));
  await runWycheproof(add("wycheproof"), JSON.parse(await text("wycheproof_ed25519_test.json")));
  await runRfc8032(add("rfc8032"), JSON.parse(await text("rfc8032_ed25519_vectors.json")));
  await runMerkle(add("rfc6962"), JSON.parse(await text("rfc6962_merkle_reference.json")));
  const fixturesUrl = params.get("fixtures");
  if (fixturesUrl) {
    const fixtures = await fetchJson(fixturesUrl);
    for (const [name, run] of Object.entries(FIXTURE_SUITES)) {
      if (name in fixtures) await run(add(`fixtures.${name}`), fixtures[name]);
    }
  }
  return suites;
}

const results = document.getElementById("results");
const status = document.getElementById("status");
main().then((suites) => {
  const failed = Object.values(suites).reduce((n, s) => n + s.failed.length, 0);
  results.textContent = JSON.stringify({ done: true, suites }, null, 1);
  status.textContent = failed ? `✗ ${failed} cases failed` : "✓ every case passed";
  document.title = `SEC console: verifier vectors (${failed ? "failed" : "passed"})`;
}, (error) => {
  results.textContent = JSON.stringify({ done: true, error: String(error), suites: {} });
  status.textContent = `✗ ${error}`;
  document.title = "SEC console: verifier vectors (error)";
});
