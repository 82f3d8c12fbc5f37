/**
 * Boot and routing: loads `config.json` (interface A), the genesis document (config's or
 * `sec_getGenesis`), the genesis names, then renders the page named by `location.hash`
 * into `#main` and moves focus there. Keeps `#height` live from a newHeads subscription.
 *
 * A page module exports `render(ctx, view, ...args)`; it may return a function that the
 * router calls when the reader leaves the page (to stop its subscriptions).
 */

import {RpcClient, Subscriptions} from "./rpc.js";
import {Directory} from "./names.js";
import {el, errorBox, formatInt} from "./ui.js";
import * as network from "./pages/network.js";
import * as blocks from "./pages/blocks.js";
import * as block from "./pages/block.js";
import * as tx from "./pages/tx.js";
import * as account from "./pages/account.js";
import * as order from "./pages/order.js";
import * as group from "./pages/group.js";
import * as trust from "./pages/trust.js";
import * as trustGraph from "./pages/trustgraph.js";
import * as search from "./pages/search.js";

/** [pattern, page, title]: the hash routes of interface D. */
const ROUTES = [
  [/^#?\/?$/, network, "Network"],
  [/^#\/blocks(?:\/(\d+))?$/, blocks, "Blocks"],
  [/^#\/block\/(\d+)$/, block, "Block"],
  [/^#\/tx\/([0-9a-fA-F]{64})$/, tx, "Transaction"],
  [/^#\/account\/([^/]+)$/, account, "Account"],
  [/^#\/order\/([0-9a-fA-F]{64})$/, order, "Order"],
  [/^#\/group\/([0-9a-fA-F]{64})$/, group, "Group"],
  [/^#\/trust$/, trust, "Trust"],
  [/^#\/trust\/([^/]+)$/, trustGraph, "Trust neighbourhood"],
  [/^#\/search\/(.*)$/, search, "Search"],
];

async function loadConfig() {
  const response = await fetch("config.json", {cache: "no-store"});
  if (!response.ok) throw new Error(`config.json: HTTP ${response.status}`);
  const config = await response.json();
  return {node: typeof config.node === "string" ? config.node : "",
    genesis: config.genesis ?? null, pinned: config.pinned === true};
}

/** Page context shared by all pages: node client, genesis, names, live heads. */
class Context {
  constructor(config, genesis, names) {
    this.rpc = new RpcClient(config.node);
    this.node = config.node;
    this.genesis = genesis;
    this.pinned = config.pinned;
    this.names = names;
    this.subscriptions = new Subscriptions(config.node);
    this.verifier = null;
    this.headListeners = new Set();
    this.height = null;
  }

  /**
   * Be told of each new head ({hash, header}); returns a function that stops it.
   * @param {(head: any) => void} listener
   */
  onHead(listener) {
    this.headListeners.add(listener);
    return () => this.headListeners.delete(listener);
  }

  /** Show `height` as the head unless a newer head is already known. */
  showHeight(height) {
    if (this.height !== null && Number(this.height) >= Number(height)) return;
    this.height = height;
    document.getElementById("height").textContent = formatInt(height);
  }

  /** A newHeads notification: show its height and tell the pages. */
  newHead(head) {
    this.showHeight(head.header.height);
    for (const listener of this.headListeners) listener(head);
  }
}

/** `%`-decoding that keeps a malformed escape as it is (a hash is typed by anyone). */
function decode(text) {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function routeOf(hash) {
  for (const [pattern, page, title] of ROUTES) {
    const match = pattern.exec(hash);
    if (match) return {page, title, args: match.slice(1).map((a) => a && decode(a))};
  }
  return null;
}

/** The section link of the page shown gets aria-current (and its style), the others lose it. */
function markCurrent(page) {
  const sections = {"#/": network, "#/blocks": blocks, "#/trust": trust};
  for (const link of document.querySelectorAll("nav a")) {
    if (sections[link.getAttribute("href")] === page) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function startRouter(ctx) {
  const main = document.getElementById("main");
  let leave = null;
  let generation = 0;
  const navigate = async (focus) => {
    if (leave) leave();
    leave = null;
    const mine = ++generation;
    const route = routeOf(window.location.hash);
    const view = el("div", {class: "page"});
    main.replaceChildren(view);
    if (focus) main.focus();
    if (!route) {
      document.title = "Not found · SEC console";
      view.append(el("h1", {text: "No such page"}),
        el("p", {text: `The console has no page at “${window.location.hash}”.`}),
        el("p", {}, el("a", {href: "#/", text: "Go to the network page"})));
      return;
    }
    document.title = `${route.title} · SEC console`;
    markCurrent(route.page);
    try {
      const cleanup = await route.page.render(ctx, view, ...route.args);
      if (mine === generation) leave = typeof cleanup === "function" ? cleanup : null;
      else if (typeof cleanup === "function") cleanup();
    } catch (error) {
      view.append(errorBox(`Could not show this page`, error));
    }
  };
  window.addEventListener("hashchange", () => navigate(true));
  navigate(false);
}

/** "Skip to content" focuses #main without touching the hash (the hash is the route). */
function startSkipLink() {
  document.getElementById("skip-link").addEventListener("click", (event) => {
    event.preventDefault();
    const main = document.getElementById("main");
    main.focus();
    main.scrollIntoView();
  });
}

function startSearch() {
  const form = document.getElementById("search-form");
  const input = document.getElementById("search");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    const target = `#/search/${encodeURIComponent(text)}`;
    // The same search again (e.g. after "no match") changes no hash: run it anyway.
    if (window.location.hash === target) window.dispatchEvent(new HashChangeEvent("hashchange"));
    else window.location.hash = target;
  });
}

function startLive(ctx) {
  const live = document.getElementById("live");
  ctx.subscriptions.onState((state) => {
    const words = {live: "● live", down: "○ reconnecting", subscription: "○ not live"};
    live.textContent = words[state.split(/[ :]/)[0]] || "… connecting";
    live.title = state;
    live.dataset.state = state.split(/[ :]/)[0];
  });
  ctx.subscriptions.subscribe("newHeads", {}, (head) => ctx.newHead(head));
  ctx.rpc.call("sec_status").then((status) => ctx.showHeight(status.height)).catch((error) => {
    document.getElementById("height").textContent = "?";
    document.getElementById("height").title = error.message;
  });
}

async function boot() {
  startSkipLink();
  const main = document.getElementById("main");
  let config;
  let genesis;
  try {
    config = await loadConfig();
    const rpc = new RpcClient(config.node);
    genesis = config.genesis ?? (await rpc.call("sec_getGenesis")).document;
  } catch (error) {
    main.replaceChildren(errorBox("The console could not start", error));
    return;
  }
  const names = await Directory.fromGenesis(genesis);
  const ctx = new Context(config, genesis, names);
  document.getElementById("origin").textContent = `Node: ${config.node || window.location.origin}`
    + (config.pinned ? " · genesis pinned from your file" : "")
    + (names.warning ? ` · ${names.warning}` : "");
  startSearch();
  startLive(ctx);
  startRouter(ctx);
}

boot();
