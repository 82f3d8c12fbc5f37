"""A lying node for the console's browser test: a reverse proxy that tampers with RPC answers.

`TamperProxy(upstream)` listens on 127.0.0.1:0 in front of a node's HTTP face and forwards
everything: `POST /rpc` (JSON-RPC, single calls and batches), `GET /ws` (JSON-RPC over
WebSocket, both directions) and every other `GET` (the console's static files and its
`config.json`). A page loaded through the proxy therefore talks to the proxy only: the node
serves its console with `"node": ""` (same origin, docs/console.md), so the proxy sees every
call the page makes.

What the proxy changes is its `mode` (a `Tamper`, set from any thread at any time):

* `ORDER_PROOF` flips one byte of `proof.siblings[0]` in `sec_getOrder` answers with `prove`
  (the sibling next to the root: the proof no longer leads to the certified state root);
* `ORDER_VALUE` flips one byte of `value`, the raw order record the proof covers;
* `ORDER_STATE` puts another `order.state` into `sec_getOrder` answers, next to a genuine
  proof and value (a node that shows fields other than the ones it proves);
* `CERTIFICATE` keeps only the first signature of every `certificate` in any answer (one
  signature is below the quorum of any set of two or more validators).

The pure part is `tamper_result(mode, method, params, result)`; `tampered` counts the answers
it changed, so a test can tell "verify failed because of the tampering" from "the page never
asked". Nothing else is changed, and with `Tamper.NONE` answers pass through byte for byte.

Bounds: request bodies up to `MAX_BODY_BYTES`, answers and WebSocket messages up to
`MAX_ANSWER_BYTES` (larger ones end the exchange with 502, or close the socket), at most
`MAX_TRACKED_CALLS` WebSocket calls remembered per connection while they await their answer.
Headers are not forwarded except `Content-Type` (and an RPC answer's `Retry-After`): the node
sees the proxy as its client and never the browser's `Origin`, and the page gets no
Content-Security-Policy from the proxy (the node's policy names the node's own WebSocket
origin, which through the proxy would be the wrong one). Test tool only: it has no TLS, no
authentication and no rate limit of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import threading
from collections import OrderedDict
from typing import Any, Final

import aiohttp
from aiohttp import web

MAX_BODY_BYTES: Final = 4 * 1024 * 1024
MAX_ANSWER_BYTES: Final = 16 * 1024 * 1024
MAX_TRACKED_CALLS: Final = 1024
UPSTREAM_TIMEOUT_S: Final = 30.0
START_TIMEOUT_S: Final = 10.0

_OTHER_STATE: Final = {"COMPLETED": "REFUNDED"}
"""The state ORDER_STATE shows instead of the real one (COMPLETED for any other state)."""


class Tamper(enum.Enum):
    """What the proxy changes in the answers it forwards (module docstring)."""

    NONE = "none"
    ORDER_PROOF = "order-proof"
    ORDER_VALUE = "order-value"
    ORDER_STATE = "order-state"
    CERTIFICATE = "certificate"


def flip_hex_byte(text: str) -> str:
    """`text` (hex) with the low bit of its first byte flipped; same length, always different."""
    if len(text) < 2:
        raise ValueError(f"no byte to flip in {text!r}")
    return f"{int(text[:2], 16) ^ 0x01:02x}{text[2:]}"


def tamper_result(mode: Tamper, method: str, params: Any, result: Any) -> Any | None:
    """The changed `result` of a call of `method` with `params`, or None when `mode` leaves
    this answer alone. Never changes its arguments."""
    if mode is Tamper.NONE or not isinstance(result, dict):
        return None
    if mode is Tamper.CERTIFICATE:
        return _cut_certificates(result)
    if method != "sec_getOrder" or not result.get("exists"):
        return None
    if mode is Tamper.ORDER_STATE:
        order = result.get("order")
        if not isinstance(order, dict) or not isinstance(order.get("state"), str):
            return None
        shown = _OTHER_STATE.get(order["state"], "COMPLETED")
        return {**result, "order": {**order, "state": shown}}
    proof = result.get("proof")
    if not isinstance(proof, dict) or not isinstance(result.get("value"), str):
        return None  # not a proven answer (`prove` false): nothing to corrupt
    if mode is Tamper.ORDER_VALUE:
        return {**result, "value": flip_hex_byte(result["value"])}
    siblings = proof.get("siblings")
    if not isinstance(siblings, list) or not siblings:
        return None
    corrupted = [flip_hex_byte(siblings[0]), *siblings[1:]]
    return {**result, "proof": {**proof, "siblings": corrupted}}


def _cut_certificates(result: dict[str, Any]) -> dict[str, Any] | None:
    certificate = result.get("certificate")
    if not isinstance(certificate, dict):
        return None
    signatures = certificate.get("signatures")
    if not isinstance(signatures, list) or len(signatures) < 2:
        return None
    return {**result, "certificate": {**certificate, "signatures": signatures[:1]}}


def _call_key(call_id: Any) -> str:
    """A JSON-RPC id as a dict key (1 and "1" stay distinct)."""
    return json.dumps(call_id)


class TamperProxy:
    """The proxy (module docstring). Use as a context manager, or `start()` / `stop()`."""

    def __init__(self, upstream: str, mode: Tamper = Tamper.NONE) -> None:
        self.upstream = upstream.rstrip("/")
        self.mode = mode
        """Read on every answer; assign from any thread."""
        self.tampered = 0
        """Answers changed so far."""
        self.url = ""
        """http://127.0.0.1:PORT once started."""
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._session: aiohttp.ClientSession | None = None

    def __enter__(self) -> TamperProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> TamperProxy:
        """Serve on a free port in a thread of its own; return once it listens."""
        self._thread = threading.Thread(target=self._run, name="tamper-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            raise RuntimeError(f"the tamper proxy did not start within {START_TIMEOUT_S:g} s")
        if self._failure is not None:
            raise RuntimeError(f"the tamper proxy failed to start: {self._failure}")
        return self

    def stop(self) -> None:
        """Close the listener and every connection; wait for the thread."""
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(START_TIMEOUT_S)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to start(), or ends a thread nobody joins
            self._failure = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        timeout = aiohttp.ClientTimeout(total=UPSTREAM_TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            app = web.Application(client_max_size=MAX_BODY_BYTES)
            self._session = session
            app.router.add_post("/rpc", self._rpc)
            app.router.add_get("/ws", self._websocket)
            app.router.add_get("/{path:.*}", self._file)
            runner = web.AppRunner(app, handle_signals=False)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
            self._ready.set()
            try:
                await self._stop.wait()
            finally:
                await runner.cleanup()

    def _upstream_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("the proxy serves before its upstream session exists")
        return self._session

    # --- HTTP --------------------------------------------------------------------------------

    async def _rpc(self, request: web.Request) -> web.Response:
        session = self._upstream_session()
        body = await request.read()
        headers = {"Content-Type": request.headers.get("Content-Type", "application/json")}
        async with session.post(self.upstream + "/rpc", data=body, headers=headers) as answer:
            data = await _read_bounded(answer)
            status, content_type = answer.status, answer.headers.get("Content-Type", "")
            retry_after = answer.headers.get("Retry-After")
        if data is None:
            return web.Response(status=502, text="the node's answer is too large for the proxy")
        data = self._tamper_body(body, data)
        response = web.Response(status=status, body=data)
        if content_type:
            response.headers["Content-Type"] = content_type
        if retry_after is not None:
            response.headers["Retry-After"] = retry_after
        return response

    async def _file(self, request: web.Request) -> web.Response:
        session = self._upstream_session()
        async with session.get(self.upstream + request.rel_url.path_qs) as answer:
            data = await _read_bounded(answer)
            status, content_type = answer.status, answer.headers.get("Content-Type", "")
        if data is None:
            return web.Response(status=502, text="the node's file is too large for the proxy")
        response = web.Response(status=status, body=data)
        if content_type:
            response.headers["Content-Type"] = content_type
        return response

    def _tamper_body(self, request_body: bytes, answer_body: bytes) -> bytes:
        """The answer to `request_body` as the current mode shows it (unchanged bytes when
        nothing is tampered)."""
        mode = self.mode
        if mode is Tamper.NONE:
            return answer_body
        try:
            calls = json.loads(request_body)
            answers = json.loads(answer_body)
        except ValueError:
            return answer_body
        asked = {
            _call_key(c.get("id")): (c.get("method"), c.get("params"))
            for c in (calls if isinstance(calls, list) else [calls])
            if isinstance(c, dict)
        }
        batch = answers if isinstance(answers, list) else [answers]
        changed = [self._tamper_answer(mode, asked, a) for a in batch]
        if all(new is None for new in changed):
            return answer_body
        shown = [new if new is not None else old for new, old in zip(changed, batch, strict=True)]
        return json.dumps(shown if isinstance(answers, list) else shown[0]).encode()

    def _tamper_answer(
        self, mode: Tamper, asked: dict[str, tuple[Any, Any]], answer: Any
    ) -> dict[str, Any] | None:
        if not isinstance(answer, dict) or "result" not in answer:
            return None
        method, params = asked.get(_call_key(answer.get("id")), (None, None))
        if not isinstance(method, str):
            return None
        result = tamper_result(mode, method, params, answer["result"])
        if result is None:
            return None
        self.tampered += 1
        return {**answer, "result": result}

    # --- WebSocket ---------------------------------------------------------------------------

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        session = self._upstream_session()
        client = web.WebSocketResponse(max_msg_size=MAX_ANSWER_BYTES)
        await client.prepare(request)
        target = "ws" + self.upstream.removeprefix("http") + "/ws"
        pending: OrderedDict[str, bytes] = OrderedDict()
        """Request text by call id, for calls whose answers have not come back yet."""
        try:
            upstream = await session.ws_connect(target, max_msg_size=MAX_ANSWER_BYTES)
        except aiohttp.ClientError:
            await client.close(code=aiohttp.WSCloseCode.TRY_AGAIN_LATER)
            return client
        async with upstream, asyncio.TaskGroup() as group:
            to_node = group.create_task(self._pump_up(client, upstream, pending))
            to_page = group.create_task(self._pump_down(upstream, client, pending))
            await asyncio.wait({to_node, to_page}, return_when=asyncio.FIRST_COMPLETED)
            to_node.cancel()
            to_page.cancel()
        await client.close()
        return client

    async def _pump_up(
        self,
        client: web.WebSocketResponse,
        upstream: aiohttp.ClientWebSocketResponse,
        pending: OrderedDict[str, bytes],
    ) -> None:
        with contextlib.suppress(ConnectionError):  # either side hung up: the exchange ends
            async for message in client:
                if message.type != aiohttp.WSMsgType.TEXT:
                    return
                with contextlib.suppress(ValueError):
                    call = json.loads(message.data)
                    if isinstance(call, dict) and "id" in call:
                        pending[_call_key(call["id"])] = message.data.encode()
                        while len(pending) > MAX_TRACKED_CALLS:
                            pending.popitem(last=False)
                await upstream.send_str(message.data)

    async def _pump_down(
        self,
        upstream: aiohttp.ClientWebSocketResponse,
        client: web.WebSocketResponse,
        pending: OrderedDict[str, bytes],
    ) -> None:
        with contextlib.suppress(ConnectionError):
            async for message in upstream:
                if message.type != aiohttp.WSMsgType.TEXT:
                    return
                text: str = message.data
                with contextlib.suppress(ValueError):
                    answer = json.loads(text)
                    if isinstance(answer, dict) and "id" in answer:
                        asked = pending.pop(_call_key(answer["id"]), None)
                        if asked is not None:
                            text = self._tamper_body(asked, text.encode()).decode()
                await client.send_str(text)


async def _read_bounded(answer: aiohttp.ClientResponse) -> bytes | None:
    """The answer's body, or None if it is longer than MAX_ANSWER_BYTES."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in answer.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
