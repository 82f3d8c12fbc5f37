// Address text of docs/protocol.md §4.3: "sec1" + bech32m (BIP-350) of the 20-byte address.
// Invariant: parseAddress accepts exactly the texts formatAddress produces (or their all-upper
// case form) and throws AddressError naming the rule for anything else.

const CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
const BECH32M_CONST = 0x2bc830a3;
const GENERATOR = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];
const HRP = "sec";
export const ADDRESS_SIZE = 20;

/** Text that is not a valid sec1 address. */
export class AddressError extends Error {
  constructor(message) {
    super(message);
    this.name = "AddressError";
  }
}

function polymod(values) {
  let checksum = 1;
  for (const value of values) {
    const top = checksum >>> 25;
    checksum = (((checksum & 0x1ffffff) << 5) ^ value) >>> 0;
    for (let i = 0; i < 5; i += 1) if ((top >>> i) & 1) checksum = (checksum ^ GENERATOR[i]) >>> 0;
  }
  return checksum;
}

function hrpExpand(hrp) {
  const codes = [...hrp].map((c) => c.charCodeAt(0));
  return [...codes.map((c) => c >> 5), 0, ...codes.map((c) => c & 31)];
}

/**
 * The sec1 text of a 20-byte address (always 42 characters).
 * @param {Uint8Array} address
 * @returns {string}
 */
export function formatAddress(address) {
  if (!(address instanceof Uint8Array) || address.length !== ADDRESS_SIZE) {
    throw new AddressError(`an address is ${ADDRESS_SIZE} bytes`);
  }
  const data = [];
  let accumulator = 0;
  let bits = 0;
  for (const byte of address) {
    accumulator = ((accumulator << 8) | byte) & 0xfff;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      data.push((accumulator >> bits) & 31);
    }
  }
  const mod = polymod([...hrpExpand(HRP), ...data, 0, 0, 0, 0, 0, 0]) ^ BECH32M_CONST;
  const checksum = [0, 1, 2, 3, 4, 5].map((i) => (mod >>> (5 * (5 - i))) & 31);
  return `${HRP}1${[...data, ...checksum].map((d) => CHARSET[d]).join("")}`;
}

/**
 * The 20 bytes of a sec1 address text; throws AddressError naming the broken rule (prefix,
 * length, alphabet, mixed case, checksum, padding bits).
 * @param {string} text
 * @returns {Uint8Array}
 */
export function parseAddress(text) {
  if (typeof text !== "string") throw new AddressError("an address is text");
  if (text.toLowerCase() !== text && text.toUpperCase() !== text) {
    throw new AddressError(`address ${text} mixes upper and lower case`);
  }
  const lowered = text.toLowerCase();
  if (!lowered.startsWith(`${HRP}1`)) throw new AddressError(`address ${text} does not start with sec1`);
  const body = lowered.slice(4);
  if (body.length !== 38) throw new AddressError(`address ${text} has ${text.length} characters, expected 42`);
  const values = [];
  for (const c of body) {
    const value = CHARSET.indexOf(c);
    if (value < 0) throw new AddressError(`address ${text} contains invalid character ${c}`);
    values.push(value);
  }
  if (polymod([...hrpExpand(HRP), ...values]) !== BECH32M_CONST) {
    throw new AddressError(`address ${text} has a bad checksum (typo?)`);
  }
  const out = [];
  let accumulator = 0;
  let bits = 0;
  for (const value of values.slice(0, -6)) {
    accumulator = ((accumulator << 5) | value) & 0xfff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((accumulator >> bits) & 0xff);
    }
  }
  if (bits >= 5 || ((accumulator << (8 - bits)) & 0xff) !== 0) {
    throw new AddressError(`address ${text} has non-zero padding bits`);
  }
  return Uint8Array.from(out);
}
