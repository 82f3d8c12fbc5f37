/**
 * Links between the console's pages (hash routes of docs/console.md, interface D) and the
 * way an account is named: its genesis name when the genesis file has one, else short sec1.
 */

import {el, formatInt, hashView} from "./ui.js";

/** @param {number|bigint} height */
export function blockHref(height) {
  return `#/block/${height}`;
}

/**
 * A link to a block by height, text "#8,412".
 * @param {number|bigint} height
 */
export function blockLink(height) {
  return el("a", {href: blockHref(height), text: `#${formatInt(height)}`});
}

/** @param {string} hash */
export function txLink(hash) {
  return hashView(hash, `#/tx/${hash}`);
}

/** @param {string} orderId */
export function orderLink(orderId) {
  return hashView(orderId, `#/order/${orderId}`);
}

/** @param {string} groupId */
export function groupLink(groupId) {
  return hashView(groupId, `#/group/${groupId}`);
}

/**
 * A link to an account page: "merchant1" when the genesis names it, else the short sec1 text.
 * @param {{nameOf: (a: string) => string|null}} names the genesis directory
 * @param {string|null} address sec1 text
 */
export function accountLink(names, address) {
  if (!address) return el("span", {text: "—"});
  const name = names.nameOf(address);
  return hashView(address, `#/account/${address}`, name);
}
