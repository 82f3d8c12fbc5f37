// The canonical encoding of docs/protocol.md §2 (deterministic MessagePack), for the browser.
//
// Values: null, boolean, integer (Number when safe, else BigInt; -2^63 … 2^64-1), text
// (string), bytes (Uint8Array), array (Array), map (a plain object or a Map, text keys).
// Invariant: decode(b) returns only if encode(decode(b)) is exactly b, so a hash or signature
// over encoded bytes names one value. Sizes are capped before parsing, depth at 32, and a count
// that the remaining input cannot hold is refused before anything is allocated.

import { compare, concat, equal, fromUtf8, utf8 } from "./bytes.js";

export const MAX_DEPTH = 32;
export const DEFAULT_MAX_SIZE = 4 * 1024 * 1024;
const INT_MIN = -(2n ** 63n);
const INT_MAX = 2n ** 64n - 1n;

/** A value the canonical encoding does not allow, or bytes that are not its canonical form. */
export class EncodingError extends Error {
  constructor(message) {
    super(message);
    this.name = "EncodingError";
  }
}

class Writer {
  constructor() {
    this.parts = [];
  }
  byte(b) {
    this.parts.push(Uint8Array.of(b));
  }
  bytes(b) {
    this.parts.push(b);
  }
  uint(prefix, value, width) {
    const out = new Uint8Array(1 + width);
    out[0] = prefix;
    let v = BigInt(value);
    for (let i = width; i >= 1; i -= 1) {
      out[i] = Number(v & 0xffn);
      v >>= 8n;
    }
    this.parts.push(out);
  }
  length(small, fixBase, family, n) {
    if (small !== null && n <= small) this.byte(fixBase | n);
    else if (family[0] !== null && n <= 0xff) this.uint(family[0], n, 1);
    else if (n <= 0xffff) this.uint(family[1], n, 2);
    else this.uint(family[2], n, 4);
  }
}

function encodeInteger(writer, value) {
  const n = BigInt(value);
  if (n < INT_MIN || n > INT_MAX) throw new EncodingError(`integer ${n} outside [-2^63, 2^64-1]`);
  if (n >= 0n) {
    if (n <= 0x7fn) writer.byte(Number(n));
    else if (n <= 0xffn) writer.uint(0xcc, n, 1);
    else if (n <= 0xffffn) writer.uint(0xcd, n, 2);
    else if (n <= 0xffffffffn) writer.uint(0xce, n, 4);
    else writer.uint(0xcf, n, 8);
  } else if (n >= -32n) writer.byte(Number(n + 256n));
  else if (n >= -128n) writer.uint(0xd0, n + 256n, 1);
  else if (n >= -32768n) writer.uint(0xd1, n + 65536n, 2);
  else if (n >= -(2n ** 31n)) writer.uint(0xd2, n + 2n ** 32n, 4);
  else writer.uint(0xd3, n + 2n ** 64n, 8);
}

function entriesOf(map) {
  const entries = map instanceof Map ? [...map.entries()] : Object.entries(map);
  const keyed = entries.map(([key, value]) => {
    if (typeof key !== "string") throw new EncodingError(`map key ${String(key)} is not text`);
    return [utf8(key), key, value];
  });
  keyed.sort((a, b) => compare(a[0], b[0]));
  return keyed;
}

function encodeValue(writer, value, depth) {
  if (depth > MAX_DEPTH) throw new EncodingError(`value nested deeper than ${MAX_DEPTH} levels`);
  if (value === null) writer.byte(0xc0);
  else if (value === false) writer.byte(0xc2);
  else if (value === true) writer.byte(0xc3);
  else if (typeof value === "bigint") encodeInteger(writer, value);
  else if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) {
      throw new EncodingError(`number ${value} is not a safe integer (floats do not exist)`);
    }
    encodeInteger(writer, value);
  } else if (typeof value === "string") {
    const data = utf8(value);
    writer.length(31, 0xa0, [0xd9, 0xda, 0xdb], data.length);
    writer.bytes(data);
  } else if (value instanceof Uint8Array) {
    writer.length(null, 0, [0xc4, 0xc5, 0xc6], value.length);
    writer.bytes(value);
  } else if (Array.isArray(value)) {
    writer.length(15, 0x90, [null, 0xdc, 0xdd], value.length);
    for (const item of value) encodeValue(writer, item, depth + 1);
  } else if (value instanceof Map || Object.getPrototypeOf(value) === Object.prototype
    || Object.getPrototypeOf(value) === null) {
    const entries = entriesOf(value);
    writer.length(15, 0x80, [null, 0xde, 0xdf], entries.length);
    let previous = null;
    for (const [keyBytes, key, item] of entries) {
      if (previous !== null && equal(previous, keyBytes)) {
        throw new EncodingError(`duplicate map key ${key}`);
      }
      previous = keyBytes;
      encodeValue(writer, key, depth + 1);
      encodeValue(writer, item, depth + 1);
    }
  } else {
    throw new EncodingError(`a ${typeof value} cannot be encoded`);
  }
}

/**
 * The canonical encoding of a value (shortest forms, map keys sorted by UTF-8 bytes).
 * Throws EncodingError for a value outside the data model (floats, unsafe Numbers, depth > 32).
 * @param {*} value
 * @returns {Uint8Array}
 */
export function encode(value) {
  const writer = new Writer();
  encodeValue(writer, value, 0);
  return concat(...writer.parts);
}

class Reader {
  constructor(data) {
    this.data = data;
    this.at = 0;
  }
  take(n) {
    if (n > this.data.length - this.at) throw new EncodingError("truncated input");
    const out = this.data.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }
  uint(width) {
    let v = 0n;
    for (const b of this.take(width)) v = (v << 8n) | BigInt(b);
    return v;
  }
  count(width, per) {
    const n = Number(this.uint(width));
    if (n * per > this.data.length - this.at) {
      throw new EncodingError(`a count of ${n} is more than the input can hold`);
    }
    return n;
  }
}

function integer(n) {
  return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(n) : n;
}

function signed(n, bits) {
  const limit = 1n << BigInt(bits - 1);
  return n >= limit ? n - (1n << BigInt(bits)) : n;
}

function readText(reader, n) {
  try {
    return fromUtf8(reader.take(n));
  } catch (error) {
    if (error instanceof EncodingError) throw error;
    throw new EncodingError("text is not valid UTF-8");
  }
}

function readItems(reader, n, depth) {
  const items = [];
  for (let i = 0; i < n; i += 1) items.push(readValue(reader, depth + 1));
  return items;
}

function readMap(reader, n, depth) {
  const map = {};
  for (let i = 0; i < n; i += 1) {
    const key = readValue(reader, depth + 1);
    if (typeof key !== "string") throw new EncodingError("map key is not text");
    // defineProperty: a key "__proto__" is data, never the prototype.
    Object.defineProperty(map, key, {
      value: readValue(reader, depth + 1), enumerable: true, writable: true, configurable: true,
    });
  }
  return map;
}

function readValue(reader, depth) {
  if (depth > MAX_DEPTH) throw new EncodingError(`value nested deeper than ${MAX_DEPTH} levels`);
  const b = reader.take(1)[0];
  if (b <= 0x7f) return b;
  if (b >= 0xe0) return b - 256;
  if (b >= 0xa0 && b <= 0xbf) return readText(reader, b & 0x1f);
  if (b >= 0x90 && b <= 0x9f) return readItems(reader, b & 0x0f, depth);
  if (b >= 0x80 && b <= 0x8f) return readMap(reader, b & 0x0f, depth);
  switch (b) {
    case 0xc0: return null;
    case 0xc2: return false;
    case 0xc3: return true;
    case 0xc4: return reader.take(Number(reader.uint(1))).slice();
    case 0xc5: return reader.take(Number(reader.uint(2))).slice();
    case 0xc6: return reader.take(Number(reader.uint(4))).slice();
    case 0xcc: return integer(reader.uint(1));
    case 0xcd: return integer(reader.uint(2));
    case 0xce: return integer(reader.uint(4));
    case 0xcf: return integer(reader.uint(8));
    case 0xd0: return integer(signed(reader.uint(1), 8));
    case 0xd1: return integer(signed(reader.uint(2), 16));
    case 0xd2: return integer(signed(reader.uint(4), 32));
    case 0xd3: return integer(signed(reader.uint(8), 64));
    case 0xd9: return readText(reader, Number(reader.uint(1)));
    case 0xda: return readText(reader, Number(reader.uint(2)));
    case 0xdb: return readText(reader, Number(reader.uint(4)));
    case 0xdc: return readItems(reader, reader.count(2, 1), depth);
    case 0xdd: return readItems(reader, reader.count(4, 1), depth);
    case 0xde: return readMap(reader, reader.count(2, 2), depth);
    case 0xdf: return readMap(reader, reader.count(4, 2), depth);
    default:
      throw new EncodingError(`byte 0x${b.toString(16)} is not allowed (float, ext or unused)`);
  }
}

/**
 * Decode canonical bytes; throws EncodingError naming the problem for anything else (over the
 * size cap, empty, truncated, trailing bytes, disallowed type, non-canonical form).
 * @param {Uint8Array} data
 * @param {number} [maxSize]
 * @returns {*}
 */
export function decode(data, maxSize = DEFAULT_MAX_SIZE) {
  if (!(data instanceof Uint8Array)) throw new EncodingError("expected bytes");
  if (data.length > maxSize) {
    throw new EncodingError(`encoded value is ${data.length} bytes, more than the cap of ${maxSize}`);
  }
  if (data.length === 0) throw new EncodingError("empty input");
  const reader = new Reader(data);
  const value = readValue(reader, 0);
  if (reader.at !== data.length) throw new EncodingError("trailing bytes after the encoded value");
  if (!equal(encode(value), data)) {
    throw new EncodingError("non-canonical encoding (non-minimal form, unsorted or duplicate keys)");
  }
  return value;
}
