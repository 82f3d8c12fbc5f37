/**
 * Names of the genesis document: account and validator names ↔ sec1 addresses.
 *
 * An address is H("SEC/address/v1" || public key)[0:20] as bech32m text with prefix "sec"
 * (docs/protocol.md §4.3); the directory derives it from each public key in the genesis
 * document, so a name shown by the console is the genesis file's, never the node's word.
 * At most MAX_NAMES entries are read (a hostile genesis cannot make the page hang).
 */

const CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
const BECH32M_CONST = 0x2bc830a3;
const MAX_NAMES = 2000;
const ADDRESS_DOMAIN = new TextEncoder().encode("SEC/address/v1");

/** Shape of sec1 text (the node checks the checksum; a typo is its invalid_params). */
export const SEC1_PATTERN = /^sec1[qpzry9x8gf2tvdw0s3jn54khce6mua7l]{38}$/;

function polymod(values) {
  const generators = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];
  let check = 1;
  for (const value of values) {
    const top = check >>> 25;
    check = ((check & 0x1ffffff) << 5) ^ value;
    for (let i = 0; i < 5; i++) if ((top >>> i) & 1) check ^= generators[i];
  }
  return check >>> 0;
}

/**
 * The sec1 text of a 20-byte address.
 * @param {Uint8Array} address
 * @returns {string}
 */
export function encodeAddress(address) {
  const groups = [];
  let accumulator = 0;
  let bits = 0;
  for (const byte of address) {
    accumulator = (accumulator << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      groups.push((accumulator >>> bits) & 31);
    }
  }
  const hrp = "sec";
  const expanded = [...hrp].map((c) => c.charCodeAt(0) >> 5).concat([0],
    [...hrp].map((c) => c.charCodeAt(0) & 31));
  const check = polymod(expanded.concat(groups, [0, 0, 0, 0, 0, 0])) ^ BECH32M_CONST;
  for (let i = 0; i < 6; i++) groups.push((check >>> (5 * (5 - i))) & 31);
  return `${hrp}1${groups.map((g) => CHARSET[g]).join("")}`;
}

function fromHex(hex) {
  if (!/^([0-9a-f]{2})*$/i.test(hex)) throw new Error(`not hex: ${hex.slice(0, 20)}`);
  return Uint8Array.from(hex.match(/../g) || [], (pair) => parseInt(pair, 16));
}

/**
 * The sec1 address of a hex Ed25519 public key.
 * @param {string} publicKeyHex
 * @returns {Promise<string>}
 */
export async function addressOf(publicKeyHex) {
  const key = fromHex(publicKeyHex);
  const message = new Uint8Array(ADDRESS_DOMAIN.length + key.length);
  message.set(ADDRESS_DOMAIN);
  message.set(key, ADDRESS_DOMAIN.length);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", message));
  return encodeAddress(digest.slice(0, 20));
}

/** Genesis names: `byName` (name → entry), `byAddress` (sec1 → entry). */
export class Directory {
  constructor() {
    /** @type {Map<string, {name: string, address: string, roles: string[], kind: string}>} */
    this.byName = new Map();
    this.byAddress = new Map();
    this.pretrusted = [];
    this.warning = null;
  }

  /**
   * Build the directory of a genesis document (accounts and validators).
   * @param {any} genesis the genesis JSON document, or null
   * @returns {Promise<Directory>}
   */
  static async fromGenesis(genesis) {
    const directory = new Directory();
    if (!genesis) return directory;
    const entries = [
      ...(genesis.accounts || []).map((a) => ({...a, kind: "account"})),
      ...(genesis.validators || []).map((v) => ({...v, roles: ["validator"], kind: "validator"})),
    ].slice(0, MAX_NAMES);
    try {
      for (const entry of entries) {
        if (typeof entry.name !== "string" || typeof entry.public_key !== "string") continue;
        const address = await addressOf(entry.public_key);
        const named = {name: entry.name, address, roles: entry.roles || [], kind: entry.kind};
        directory.byName.set(entry.name, named);
        directory.byAddress.set(address, named);
      }
    } catch (error) {
      directory.warning = `names of the genesis file are not available: ${error.message}`;
    }
    directory.pretrusted = (genesis.pretrusted || []).filter((n) => typeof n === "string");
    return directory;
  }

  /**
   * The address a search text names: a genesis name or "dev:name"; null if none.
   * @param {string} text
   */
  resolve(text) {
    const name = text.startsWith("dev:") ? text.slice(4) : text;
    const entry = this.byName.get(name);
    return entry ? entry.address : null;
  }

  /**
   * The genesis name of an address, or null.
   * @param {string} address
   */
  nameOf(address) {
    const entry = this.byAddress.get(address);
    return entry ? entry.name : null;
  }
}
