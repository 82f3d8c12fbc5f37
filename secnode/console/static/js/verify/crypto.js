// SHA-256 and strict Ed25519 verification (docs/protocol.md §4.1) on WebCrypto.
//
// WebCrypto's Ed25519 (BoringSSL in Chromium) already refuses S >= L and compares the encoded
// R, but it accepts small-order public keys and R values, and non-canonical key encodings.
// libsodium's crypto_sign_verify_detached (the reference, through PyNaCl) refuses those, so the
// pre-checks below repeat its rules byte for byte: S canonical, R and A not on its small-order
// blocklist (compared without the sign bit), A's y below p. Invariant: verifyEd25519 resolves
// to a boolean and never rejects.

import { concat } from "./bytes.js";

/**
 * SHA-256 of the concatenation of the given byte arrays.
 * @param {...Uint8Array} parts
 * @returns {Promise<Uint8Array>} 32 bytes
 */
export async function sha256(...parts) {
  const data = parts.length === 1 ? parts[0] : concat(...parts);
  return new Uint8Array(await crypto.subtle.digest("SHA-256", data));
}

// The group order L, little-endian, for the S < L check.
const ORDER = 2n ** 252n + 27742317777372353535851937790883648493n;

function littleEndian(bytes) {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i -= 1) n = (n << 8n) | BigInt(bytes[i]);
  return n;
}

function filled(first, middle, last) {
  const out = new Uint8Array(32).fill(middle);
  out[0] = first;
  out[31] = last;
  return out;
}

// libsodium ge25519_has_small_order's blocklist: encodings of points of order 1, 2, 4 and 8,
// and their non-canonical aliases (y = p, p + 1); the sign bit is ignored when comparing.
const SMALL_ORDER = [
  filled(0x00, 0x00, 0x00),
  filled(0x01, 0x00, 0x00),
  Uint8Array.from([
    0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0,
    0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05,
  ]),
  Uint8Array.from([
    0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f,
    0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a,
  ]),
  filled(0xec, 0xff, 0x7f),
  filled(0xed, 0xff, 0x7f),
  filled(0xee, 0xff, 0x7f),
];

/**
 * True if a point encoding is on libsodium's small-order blocklist.
 * @param {Uint8Array} point 32 bytes
 * @returns {boolean}
 */
export function hasSmallOrder(point) {
  return SMALL_ORDER.some((bad) => {
    for (let i = 0; i < 31; i += 1) if (point[i] !== bad[i]) return false;
    return (point[31] & 0x7f) === bad[31];
  });
}

/**
 * True if the y coordinate of a point encoding (sign bit cleared) is below p = 2^255 - 19.
 * @param {Uint8Array} point 32 bytes
 * @returns {boolean}
 */
export function isCanonicalPoint(point) {
  const copy = point.slice();
  copy[31] &= 0x7f;
  return littleEndian(copy) < 2n ** 255n - 19n;
}

/**
 * Strict Ed25519 verification, with libsodium's results: false for wrong lengths, S >= L,
 * small-order R or A, a non-canonical A, a point not on the curve or a bad signature.
 * @param {Uint8Array} publicKey 32 bytes
 * @param {Uint8Array} message
 * @param {Uint8Array} signature 64 bytes
 * @returns {Promise<boolean>} never rejects
 */
export async function verifyEd25519(publicKey, message, signature) {
  try {
    if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) return false;
    if (!(signature instanceof Uint8Array) || signature.length !== 64) return false;
    if (!(message instanceof Uint8Array)) return false;
    const r = signature.subarray(0, 32);
    if (littleEndian(signature.subarray(32)) >= ORDER || hasSmallOrder(r)) return false;
    if (!isCanonicalPoint(publicKey) || hasSmallOrder(publicKey)) return false;
    const key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, [
      "verify",
    ]);
    return await crypto.subtle.verify({ name: "Ed25519" }, key, signature, message);
  } catch {
    return false; // a key WebCrypto cannot import (not a curve point) verifies nothing
  }
}
