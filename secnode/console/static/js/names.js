/**
 * Names of the genesis document: account and validator names ↔ sec1 addresses.
 *
 * The directory derives each address from a public key of the genesis document (with the
 * verifier's own address code, docs/protocol.md §4.3), so a name shown by the console is the
 * genesis file's, never the node's word.
 * At most MAX_NAMES entries are read (a hostile genesis cannot make the page hang).
 */

import {formatAddress} from "./verify/bech32m.js";
import {fromHex} from "./verify/bytes.js";
import {addressOf} from "./verify/chain.js";

const MAX_NAMES = 2000;

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
        const address = formatAddress(await addressOf(fromHex(entry.public_key)));
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
