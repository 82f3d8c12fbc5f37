// A minimal JSON-RPC 2.0 client over fetch whose JSON parser keeps big integers exact.

/**
 * JSON.parse that turns integers beyond 2^53 into BigInt from their source text (amounts reach
 * 2^63 - 1; a Number would silently round them).
 * @param {string} text
 * @returns {*}
 */
export function parseJson(text) {
  return JSON.parse(text, (key, value, context) => {
    if (typeof value === "number" && !Number.isSafeInteger(value) && context
      && /^-?\d+$/.test(context.source)) {
      return BigInt(context.source);
    }
    return value;
  });
}

/** A JSON-RPC error answer; `code` and `data` as the node sent them. */
export class RpcError extends Error {
  constructor(error) {
    super(`${error.message} (code ${error.code})`);
    this.name = "RpcError";
    this.code = error.code;
    this.data = error.data;
  }
}

/** JSON-RPC over HTTP POST to `${base}/rpc` ("" = same origin). */
export class JsonRpc {
  /** @param {string} base e.g. "http://127.0.0.1:8545", or "" */
  constructor(base) {
    this.url = `${base.replace(/\/$/, "")}/rpc`;
    this.nextId = 1;
  }

  /**
   * The result of one call; throws RpcError on a JSON-RPC error, Error on a transport one.
   * @param {string} method
   * @param {object} [params]
   * @returns {Promise<*>}
   */
  async call(method, params = {}) {
    const id = this.nextId;
    this.nextId += 1;
    const response = await fetch(this.url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", method, params, id }),
    });
    const answer = parseJson(await response.text());
    if (answer.error) throw new RpcError(answer.error);
    return answer.result;
  }
}
