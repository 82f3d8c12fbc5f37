/**
 * Talking to a node: JSON-RPC 2.0 over `POST {node}/rpc` and subscriptions over `{node}/ws`.
 *
 * Invariants: every JSON text from the node is parsed by the verifier's `parseJson`, so an
 * integer beyond 2^53 arrives as a BigInt (never a rounded Number); a JSON-RPC error becomes a thrown
 * `RpcError` carrying the node's own message; a lost WebSocket reconnects with a capped
 * exponential backoff and re-subscribes, and its listeners learn of each state change.
 */

import {parseJson} from "./verify/jsonrpc.js";

const MAX_REPLY_CHARS = 8 * 1024 * 1024;
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 15000;

/** A JSON-RPC error answered by the node (code, the node's message, optional data). */
export class RpcError extends Error {
  /**
   * @param {number} code
   * @param {string} message
   * @param {any} data
   */
  constructor(code, message, data = null) {
    super(message);
    this.name = "RpcError";
    this.code = code;
    this.data = data;
  }
}

/** JSON-RPC error codes the pages tell apart. */
export const NOT_FOUND = -32000;
export const METHOD_NOT_FOUND = -32601;

/**
 * Join the node's base URL (may be "" = same origin) and a path such as "/rpc".
 * @param {string} node
 * @param {string} path
 */
function endpoint(node, path) {
  return node.replace(/\/+$/, "") + path;
}

/**
 * The reply's text, read as it arrives and dropped once it passes MAX_REPLY_CHARS bytes:
 * `response.text()` would hold a node's endless or huge body whole before any size check,
 * and the tab would run out of memory.
 * @param {Response} response
 * @param {string} method
 * @returns {Promise<string>}
 */
async function readCapped(response, method) {
  const tooLarge = () => new Error(`the node's reply to ${method} is larger than ${MAX_REPLY_CHARS} bytes`);
  if (Number(response.headers.get("Content-Length")) > MAX_REPLY_CHARS) {
    response.body?.cancel();
    throw tooLarge();
  }
  if (!response.body) return "";
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  const parts = [];
  let size = 0;
  for (;;) {
    const {done, value} = await reader.read();
    if (done) break;
    size += value.length;
    if (size > MAX_REPLY_CHARS) {
      reader.cancel();
      throw tooLarge();
    }
    parts.push(decoder.decode(value, {stream: true}));
  }
  parts.push(decoder.decode());
  return parts.join("");
}

/** JSON-RPC client over HTTP POST; `call` resolves to the result or throws an Error. */
export class RpcClient {
  /** @param {string} node base URL of the node ("" = the page's own origin) */
  constructor(node) {
    this.node = node;
    this.url = endpoint(node, "/rpc");
    this.nextId = 1;
  }

  /**
   * Call one method. Throws RpcError (the node's answer) or Error (network, HTTP, bad reply).
   * @param {string} method
   * @param {object} [params]
   * @returns {Promise<any>}
   */
  async call(method, params = {}) {
    const id = this.nextId++;
    const body = JSON.stringify({jsonrpc: "2.0", id, method, params});
    let response;
    try {
      response = await fetch(this.url, {
        method: "POST", headers: {"Content-Type": "application/json"}, body,
      });
    } catch (error) {
      throw new Error(`cannot reach the node at ${this.url || "this origin"}: ${error.message}`);
    }
    const text = await readCapped(response, method);
    let reply;
    try {
      reply = parseJson(text);
    } catch {
      throw new Error(`the node answered ${method} with HTTP ${response.status} and no JSON`);
    }
    if (reply && reply.error) {
      throw new RpcError(reply.error.code, String(reply.error.message), reply.error.data ?? null);
    }
    if (!reply || reply.id !== id || !("result" in reply)) {
      throw new Error(`the node's reply to ${method} is not a JSON-RPC response`);
    }
    return reply.result;
  }
}

/**
 * The WebSocket URL of a node base URL ("" = same origin as the page).
 * @param {string} node
 */
export function websocketUrl(node) {
  const base = node === "" ? window.location.origin : node;
  return endpoint(base.replace(/^http/, "ws"), "/ws");
}

/**
 * One WebSocket to the node holding subscriptions (`sec_subscribe`), reconnecting with backoff.
 * `subscribe(kind, params, onResult)` survives reconnects: each (re)connection subscribes again.
 */
export class Subscriptions {
  /** @param {string} node base URL of the node */
  constructor(node) {
    this.url = websocketUrl(node);
    this.wanted = [];          // {kind, params, onResult, id}
    this.pending = new Map();  // request id -> wanted entry
    this.socket = null;
    this.nextId = 1;
    this.backoffMs = BACKOFF_FIRST_MS;
    this.stateListeners = [];
    this.closed = false;
    this.timer = null;
  }

  /**
   * Listen to connection state changes ("connecting", "live", "down: <reason>").
   * @param {(state: string) => void} listener
   */
  onState(listener) {
    this.stateListeners.push(listener);
  }

  /**
   * Follow `kind` ("newHeads", "orderEvents", "epochs"); `onResult` gets each notification's
   * result. Returns a function that stops following.
   * @param {string} kind
   * @param {object} params extra params (e.g. {address} for orderEvents)
   * @param {(result: any) => void} onResult
   */
  subscribe(kind, params, onResult) {
    const entry = {kind, params, onResult, id: null};
    this.wanted.push(entry);
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.send(entry);
    } else {
      this.connect();
    }
    return () => this.unsubscribe(entry);
  }

  unsubscribe(entry) {
    this.wanted = this.wanted.filter((other) => other !== entry);
    if (entry.id && this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify({
        jsonrpc: "2.0", id: this.nextId++, method: "sec_unsubscribe",
        params: {subscription: entry.id},
      }));
    }
  }

  tell(state) {
    for (const listener of this.stateListeners) listener(state);
  }

  connect() {
    if (this.closed || this.socket || this.timer) return;
    this.tell("connecting");
    let socket;
    try {
      socket = new WebSocket(this.url);
    } catch (error) {
      this.retry(error.message);
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      this.backoffMs = BACKOFF_FIRST_MS;
      this.tell("live");
      for (const entry of this.wanted) this.send(entry);
    };
    socket.onmessage = (message) => this.receive(message.data);
    socket.onclose = (event) => {
      this.socket = null;
      for (const entry of this.wanted) entry.id = null;
      this.pending.clear();
      this.retry(event.reason || `closed (code ${event.code})`);
    };
  }

  retry(reason) {
    this.tell(`down: ${reason}`);
    if (this.closed || this.wanted.length === 0) return;
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, BACKOFF_MAX_MS);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.connect();
    }, delay);
  }

  send(entry) {
    const id = this.nextId++;
    this.pending.set(id, entry);
    this.socket.send(JSON.stringify({
      jsonrpc: "2.0", id, method: "sec_subscribe", params: {kind: entry.kind, ...entry.params},
    }));
  }

  receive(text) {
    if (typeof text !== "string" || text.length > MAX_REPLY_CHARS) return;
    let message;
    try {
      message = parseJson(text);
    } catch {
      return;
    }
    if (message.method === "sec_subscription" && message.params) {
      const entry = this.wanted.find((e) => e.id === message.params.subscription);
      if (entry) entry.onResult(message.params.result);
      return;
    }
    const entry = this.pending.get(message.id);
    if (!entry) return;
    this.pending.delete(message.id);
    if (message.error) {
      this.tell(`subscription refused: ${message.error.message}`);
      return;
    }
    entry.id = message.result;
    // Left before the node answered: end the subscription it just made.
    if (!this.wanted.includes(entry)) this.unsubscribe(entry);
  }

  /** Close the socket and stop reconnecting. */
  close() {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.socket) this.socket.close();
  }
}
