// Proven state records decoded into the JSON shapes the RPC shows (docs/rpc.md), so the fields
// a node sends beside a proof can be compared with what the proven bytes hold.
//
// Each decoder takes the raw record bytes (canonical, §2) and returns the display form:
// addresses as sec1 text, bytes as lower-case hex, integers as Number (or BigInt when unsafe),
// exactly the shape of secnode/schema's result models (Order.of, GroupJson.of, ...). Invariant:
// a decoder returns only for a record of the right shape; anything else throws ProofError
// naming the record and field.

import { formatAddress } from "./bech32m.js";
import { fromHex, toHex } from "./bytes.js";
import { ProofError, requireThat } from "./errors.js";
import { decode } from "./msgpack.js";

export const ROLE_NAMES = ["admin", "issuer", "merchant", "arbiter", "member", "leader"];

function decoded(raw, what) {
  try {
    return decode(raw);
  } catch (error) {
    throw new ProofError(`proven ${what} is malformed: ${error.message}`);
  }
}

function isInt(v) {
  return Number.isSafeInteger(v) || typeof v === "bigint";
}

// Field readers: each checks the type and converts to the display form.
const read = {
  int(v, what) {
    requireThat(isInt(v) && typeof v !== "boolean", `${what} is not an integer`);
    return v;
  },
  count(v, what) {
    requireThat(isInt(v) && v >= 0, `${what} is not a non-negative integer`);
    return v;
  },
  text(v, what) {
    requireThat(typeof v === "string", `${what} is not text`);
    return v;
  },
  bool(v, what) {
    requireThat(typeof v === "boolean", `${what} is not a boolean`);
    return v;
  },
  address(v, what) {
    requireThat(v instanceof Uint8Array && v.length === 20, `${what} is not a 20-byte address`);
    return formatAddress(v);
  },
  hash(v, what) {
    requireThat(v instanceof Uint8Array && v.length === 32, `${what} is not 32 bytes`);
    return toHex(v);
  },
  optional(reader) {
    return (v, what) => (v === null ? null : reader(v, what));
  },
};

function fields(raw, what, names) {
  const value = decoded(raw, what);
  requireThat(
    Array.isArray(value) && value.length === names.length,
    `proven ${what} is not an array of ${names.length} values`,
  );
  const out = {};
  names.forEach(([name, reader], i) => {
    out[name] = reader(value[i], `${what} ${name}`);
  });
  return out;
}

/**
 * Role names of a roles bitmask, in bit order (admin 1, issuer 2, ... leader 32).
 * @param {number} mask
 * @returns {string[]}
 */
export function rolesOf(mask) {
  return ROLE_NAMES.filter((_, bit) => (Number(mask) >> bit) & 1);
}

/**
 * An account record (§12.1) as sec_getAccount shows it: {public_key, nonce, balance, roles, name}.
 * @param {Uint8Array} raw
 * @returns {object}
 */
export function decodeAccount(raw) {
  const record = fields(raw, "account record", [
    ["public_key", read.hash],
    ["nonce", read.count],
    ["balance", read.count],
    ["roles", read.count],
    ["name", read.text],
  ]);
  return { ...record, roles: rolesOf(record.roles) };
}

function orderLine(v, what) {
  requireThat(Array.isArray(v) && v.length === 4, `${what} is not [sku, quantity, unit_price, returnable]`);
  return {
    sku: read.text(v[0], `${what} sku`),
    quantity: read.count(v[1], `${what} quantity`),
    unit_price: read.count(v[2], `${what} unit_price`),
    returnable: read.bool(v[3], `${what} returnable`),
  };
}

function listOf(reader) {
  return (v, what) => {
    requireThat(Array.isArray(v), `${what} is not a list`);
    return v.map((item, i) => reader(item, `${what}[${i}]`));
  };
}

const ORDER_FIELDS = [
  ["merchant", read.address], ["buyer", read.address], ["arbiter", read.address],
  ["sharer", read.optional(read.address)], ["commission_bps", read.count],
  ["leader", read.optional(read.address)], ["leader_commission_bps", read.count],
  ["items", listOf(orderLine)], ["goods", read.count], ["shipping", read.count],
  ["state", read.text], ["created_s", read.count], ["updated_s", read.count],
  ["due_s", read.optional(read.count)], ["shipment_hash", read.optional(read.hash)],
  ["reason_hash", read.optional(read.hash)], ["disputed_by", read.optional(read.address)],
  ["pickup_hash", read.optional(read.hash)], ["returned", listOf(read.count)],
  ["return_hash", read.optional(read.hash)], ["held", read.count], ["refunded", read.count],
  ["merchant_paid", read.count], ["sharer_paid", read.count], ["leader_paid", read.count],
];

function sum(a, b) {
  const total = BigInt(a) + BigInt(b);
  return total <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(total) : total;
}

/**
 * An order record (§16.6, 25 values) as sec_getOrder's `order` (secnode.schema Order.of):
 * with order_id, total = goods + shipping, and the settlement map.
 * @param {string} orderId hex
 * @param {Uint8Array} raw
 * @returns {object}
 */
export function decodeOrder(orderId, raw) {
  const r = fields(raw, "order record", ORDER_FIELDS);
  return {
    order_id: orderId, state: r.state, merchant: r.merchant, buyer: r.buyer, arbiter: r.arbiter,
    sharer: r.sharer, commission_bps: r.commission_bps, leader: r.leader,
    leader_commission_bps: r.leader_commission_bps, items: r.items, goods: r.goods,
    shipping: r.shipping, total: sum(r.goods, r.shipping), held: r.held, created_s: r.created_s,
    updated_s: r.updated_s, due_s: r.due_s, shipment_hash: r.shipment_hash,
    reason_hash: r.reason_hash, disputed_by: r.disputed_by, pickup_hash: r.pickup_hash,
    returned: r.returned, return_hash: r.return_hash,
    settlement: {
      refunded: r.refunded, merchant: r.merchant_paid, sharer: r.sharer_paid, leader: r.leader_paid,
    },
  };
}

const GROUP_FIELDS = [
  ["merchant", read.address], ["arbiter", read.address], ["item_hash", read.hash],
  ["unit_price", read.count], ["opener_discount", read.count], ["shipping", read.count],
  ["min_members", read.count], ["max_members", read.count], ["deadline_s", read.count],
  ["created_s", read.count], ["state", read.text], ["members", read.count], ["pool", read.count],
  ["formed_s", read.optional(read.count)], ["closed_s", read.optional(read.count)],
  ["leader", read.optional(read.address)], ["leader_commission_bps", read.count],
  ["commission_bps", read.count],
];

/**
 * A group record (§20.7, 18 values) as sec_getGroup's `group` (GroupJson.of), with
 * opener_total and member_total.
 * @param {string} groupId hex
 * @param {Uint8Array} raw
 * @returns {object}
 */
export function decodeGroup(groupId, raw) {
  const r = fields(raw, "group record", GROUP_FIELDS);
  const openerGoods = BigInt(r.unit_price) - BigInt(r.opener_discount);
  return {
    group_id: groupId, state: r.state, merchant: r.merchant, arbiter: r.arbiter,
    item_hash: r.item_hash, unit_price: r.unit_price, opener_discount: r.opener_discount,
    shipping: r.shipping, opener_total: sum(openerGoods, r.shipping),
    member_total: sum(r.unit_price, r.shipping), min_members: r.min_members,
    max_members: r.max_members, deadline_s: r.deadline_s, created_s: r.created_s,
    members: r.members, pool: r.pool, formed_s: r.formed_s, closed_s: r.closed_s,
    leader: r.leader, leader_commission_bps: r.leader_commission_bps,
    commission_bps: r.commission_bps,
  };
}

/**
 * A member record (§20.7, 8 values) as a sec_getGroup member (GroupMemberJson.of, without its
 * proof and value).
 * @param {number} index
 * @param {Uint8Array} raw
 * @returns {object}
 */
export function decodeMember(index, raw) {
  const r = fields(raw, "member record", [
    ["buyer", read.address], ["paid", read.count], ["sharer", read.optional(read.address)],
    ["commission_bps", read.count], ["joined_s", read.count],
    ["order_id", read.optional(read.hash)], ["refunded", read.count],
    ["pickup_hash", read.optional(read.hash)],
  ]);
  return { index, ...r };
}

/**
 * A score record (§17.3) [score, positive, negative] as {score, positive, negative}.
 * @param {Uint8Array} raw
 * @returns {{score: number|bigint, positive: number|bigint, negative: number|bigint}}
 */
export function decodeScore(raw) {
  return fields(raw, "score record", [
    ["score", read.count], ["positive", read.count], ["negative", read.count],
  ]);
}

const EPOCH_FIELDS = [
  "accounts", "attestations", "committed_height", "epoch", "input_height", "inputs_root",
  "parameters", "scores_root",
];
const PARAMETER_FIELDS = [
  "alpha_ppm", "iterations", "min_order_fen", "pair_cap", "pair_window_s", "pretrusted",
  "scale", "version",
];
export const TRUST_RULE_VERSION = 2;
export const TRUST_SCALE = 1_000_000_000;

function exactKeys(value, names, what) {
  requireThat(
    value !== null && typeof value === "object" && !Array.isArray(value)
      && !(value instanceof Uint8Array) && Object.keys(value).sort().join() === names.join(),
    `proven ${what} is not a map of ${names.join(", ")}`,
  );
}

/**
 * An epoch record (§17.3) as sec_getTrustScore's `epoch` (EpochJson.of), checked like
 * contracts.epochs.parse_epoch_record: version 2, scale 10^9, pretrusted sorted and unique.
 * @param {Uint8Array} raw
 * @returns {object}
 */
export function decodeEpoch(raw) {
  const value = decoded(raw, "epoch record");
  exactKeys(value, EPOCH_FIELDS, "epoch record");
  const p = value.parameters;
  exactKeys(p, PARAMETER_FIELDS, "epoch parameters");
  requireThat(p.version === TRUST_RULE_VERSION, `epoch parameters have rule version ${p.version}, not ${TRUST_RULE_VERSION}`);
  requireThat(p.scale === TRUST_SCALE, `epoch parameters have scale ${p.scale}, not ${TRUST_SCALE}`);
  const pretrusted = listOf(read.address)(p.pretrusted, "epoch pretrusted");
  const raws = p.pretrusted.map(toHex);
  requireThat(
    raws.every((hex, i) => i === 0 || raws[i - 1] < hex),
    "epoch pretrusted is not sorted and unique",
  );
  return {
    epoch: read.count(value.epoch, "epoch number"),
    input_height: read.count(value.input_height, "epoch input_height"),
    committed_height: read.count(value.committed_height, "epoch committed_height"),
    attestations: read.count(value.attestations, "epoch attestations"),
    accounts: read.count(value.accounts, "epoch accounts"),
    inputs_root: read.hash(value.inputs_root, "epoch inputs_root"),
    scores_root: read.hash(value.scores_root, "epoch scores_root"),
    parameters: {
      version: p.version,
      min_order_fen: read.count(p.min_order_fen, "epoch min_order_fen"),
      scale: p.scale,
      iterations: read.count(p.iterations, "epoch iterations"),
      alpha_ppm: read.count(p.alpha_ppm, "epoch alpha_ppm"),
      pair_cap: read.count(p.pair_cap, "epoch pair_cap"),
      pair_window_s: read.count(p.pair_window_s, "epoch pair_window_s"),
      pretrusted,
    },
  };
}

/**
 * The validators record (§12.3): current keys, pending [effective height, keys] and history
 * [until, keys] (former sets), keys as bytes.
 * @param {Uint8Array} raw
 * @returns {{current: Uint8Array[], pending: {height: number, keys: Uint8Array[]}[],
 *   history: {height: number, keys: Uint8Array[]}[]}}
 */
export function decodeValidators(raw) {
  const value = decoded(raw, "validators record");
  requireThat(value !== null && typeof value === "object" && Array.isArray(value.current),
    "proven validators record has no current set");
  const keys = (list, what) => {
    requireThat(Array.isArray(list) && list.every((k) => k instanceof Uint8Array && k.length === 32),
      `${what} is not a list of 32-byte keys`);
    return list;
  };
  const entries = (name) => (value[name] ?? []).map((entry, i) => {
    requireThat(Array.isArray(entry) && entry.length === 2, `${name} ${i} is not [height, keys]`);
    return { height: read.count(entry[0], `${name} ${i} height`), keys: keys(entry[1], `${name} ${i}`) };
  });
  return {
    current: keys(value.current, "validators current"),
    pending: entries("pending"),
    history: entries("history"),
  };
}

// Integers are equal by value whether Number or BigInt; everything else by identity.
function same(a, b) {
  const integral = (v) => typeof v === "bigint" || Number.isInteger(v);
  return integral(a) && integral(b) ? BigInt(a) === BigInt(b) : a === b;
}

/**
 * The first place where the shown JSON differs from the proven display form, as a field path
 * ("order.settlement.merchant"), or null when they are equal. Extra or missing fields count.
 * @param {*} shown
 * @param {*} proven
 * @param {string} path
 * @returns {string|null}
 */
export function difference(shown, proven, path) {
  if (Array.isArray(proven)) {
    if (!Array.isArray(shown) || shown.length !== proven.length) return path;
    for (let i = 0; i < proven.length; i += 1) {
      const found = difference(shown[i], proven[i], `${path}[${i}]`);
      if (found) return found;
    }
    return null;
  }
  if (proven !== null && typeof proven === "object") {
    if (shown === null || typeof shown !== "object" || Array.isArray(shown)) return path;
    const names = new Set([...Object.keys(shown), ...Object.keys(proven)]);
    for (const name of names) {
      if (!Object.hasOwn(proven, name) || !Object.hasOwn(shown, name)) return `${path}.${name}`;
      const found = difference(shown[name], proven[name], `${path}.${name}`);
      if (found) return found;
    }
    return null;
  }
  return same(shown, proven) ? null : path;
}

/** Hex text to bytes, or a ProofError naming the field. */
export function hexOf(text, what) {
  try {
    return fromHex(text);
  } catch {
    throw new ProofError(`${what} is not hex`);
  }
}

/**
 * A wire value (a transaction body, an event) as the RPC shows it (secnode.schema.values
 * json_value): 20-byte values as sec1 text, other bytes as hex, maps and lists walked.
 * @param {*} value
 * @returns {*}
 */
export function jsonValue(value) {
  if (value instanceof Uint8Array) return value.length === 20 ? formatAddress(value) : toHex(value);
  if (Array.isArray(value)) return value.map(jsonValue);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, jsonValue(v)]));
  }
  return value;
}
