// Byte strings as Uint8Array: hex, concatenation, comparison, UTF-8.
// Invariant: every function returns a fresh array and never mutates its arguments.

const HEX = /^(?:[0-9a-fA-F]{2})*$/;

/**
 * Bytes of a hex string (either case, no 0x, even length); throws on anything else.
 * @param {string} text
 * @returns {Uint8Array}
 */
export function fromHex(text) {
  if (typeof text !== "string" || !HEX.test(text)) {
    throw new TypeError(`not hex: ${String(text).slice(0, 40)}`);
  }
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i += 1) {
    out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  }
  return out;
}

/**
 * Lower-case hex of bytes.
 * @param {Uint8Array} bytes
 * @returns {string}
 */
export function toHex(bytes) {
  let out = "";
  for (const byte of bytes) out += byte.toString(16).padStart(2, "0");
  return out;
}

/**
 * The concatenation of byte arrays (`||` of the protocol).
 * @param {...Uint8Array} parts
 * @returns {Uint8Array}
 */
export function concat(...parts) {
  let size = 0;
  for (const part of parts) size += part.length;
  const out = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/**
 * True iff both are byte arrays of the same length and content.
 * @param {Uint8Array} a
 * @param {Uint8Array} b
 * @returns {boolean}
 */
export function equal(a, b) {
  if (!(a instanceof Uint8Array) || !(b instanceof Uint8Array) || a.length !== b.length) {
    return false;
  }
  for (let i = 0; i < a.length; i += 1) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Bytewise lexicographic order (a proper prefix first): negative, zero or positive.
 * @param {Uint8Array} a
 * @param {Uint8Array} b
 * @returns {number}
 */
export function compare(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i += 1) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

const ENCODER = new TextEncoder();
const DECODER = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * UTF-8 bytes of a string (lone surrogates are not valid text: they throw).
 * @param {string} text
 * @returns {Uint8Array}
 */
export function utf8(text) {
  if (!text.isWellFormed()) throw new TypeError("text has a lone surrogate");
  return ENCODER.encode(text);
}

/**
 * The string of UTF-8 bytes; throws on invalid UTF-8.
 * @param {Uint8Array} bytes
 * @returns {string}
 */
export function fromUtf8(bytes) {
  return DECODER.decode(bytes);
}
