"""JSON-RPC 2.0 (https://www.jsonrpc.org/specification) as bytes in, bytes out.

`Dispatcher.handle(body)` parses one HTTP body, runs the call or batch, and returns the response
body, or None when nothing must be sent (a notification, or a batch of notifications only). It
never touches a socket, and it never raises for anything a client can send.

Theory of operation:

* The body is capped (`Limits.max_body_bytes`) before parsing; JSON that is not UTF-8, nests
  too deeply, or contains NaN/Infinity is a parse error (-32700, id null).
* A top-level object is one call; a non-empty array is a batch of at most
  `Limits.max_batch_size` entries, run concurrently and answered in request order (the spec
  allows any order; request order is friendlier). Anything else is an invalid request.
* A request object has exactly the members jsonrpc ("2.0"), method (string), params (object or
  array, optional) and id (string, integer or null; absent for a notification). A malformed
  request always gets an error response, with its id if that id was well-formed, else null.
* Params are validated by the method's strict pydantic model: an object by name, an array by
  position in the model's field order. Failures are invalid params (-32602) naming the field.
* Notifications are executed; their results and errors are dropped.
* Budgets (secnode.runtime.rpc.budget): every entry is validated and priced in cost units before any
  runs; a call or batch over `Limits.max_request_cost` is refused whole (over_budget, id null).
  The cost is then charged to the client's token bucket (secnode.runtime.rpc.ratelimit; rate_limited
  with retry_after_s when it is empty). Responses are counted as they are encoded; one that
  would push the reply past `Limits.max_reply_bytes` is replaced by an over_budget error.
  Error responses are not counted (at most `max_batch_size` of them, each small).
* Restricted methods (secnode.runtime.rpc.auth): an entry calling a method of `restricted`
  that the request's `Grant` does not cover is refused (unauthorized or forbidden) like any
  invalid entry, before anything runs; the other entries of a batch still run.
* Calls that do not wait for a commit take turns on the event loop (`Turnstile`): one call
  per loop turn, so a batch never holds the loop for longer than its slowest call.
* Every call is reported to the `observe(method, outcome)` hook once; method is the method
  name if it exists, "unknown" if not, "none" if the request had no usable method, so the
  label set stays bounded. A call that ran (valid, within budget) is also reported to the
  `time_call(method, seconds)` hook with how long it took to its encoded reply.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from pydantic import BaseModel, ValidationError

from ledger.validation import validation_problems
from secnode.runtime.rpc.auth import ANONYMOUS, Grant
from secnode.runtime.rpc.budget import (
    BODY_BYTES_PER_UNIT,
    DEFAULT_MAX_REPLY_BYTES,
    DEFAULT_MAX_REQUEST_COST,
    INVALID_ENTRY_COST,
    CallReply,
    ReplyBudget,
    Turnstile,
    Worker,
    call_cost,
    current_call,
)
from secnode.runtime.rpc.errors import (
    FORBIDDEN,
    UNAUTHORIZED,
    RpcError,
    internal_error,
    invalid_params,
    invalid_request,
    method_not_found,
    over_budget,
    parse_error,
    rate_limited,
    to_rpc_error,
    too_large,
)
from secnode.runtime.rpc.ratelimit import RateLimiter

log = logging.getLogger("secnode.rpc")

_REQUEST_MEMBERS: Final = frozenset({"jsonrpc", "method", "params", "id"})
_ABSENT: Final = object()


@dataclass(frozen=True, slots=True)
class Method:
    """One RPC method: its models drive validation and the OpenRPC document."""

    name: str
    """The method name clients call."""
    summary: str
    """One line for rpc.discover."""
    description: str
    """Details for rpc.discover: defaults, errors, invariants."""
    params: type[BaseModel]
    """Strict model of the params; field order is the positional order."""
    result: type[BaseModel]
    """Model of the result."""
    call: Callable[[Any], Awaitable[BaseModel]]
    """Implementation: a validated params instance -> a result instance."""
    errors: tuple[int, ...] = ()
    """Application error codes this method may return (for rpc.discover)."""
    heavy: bool = False
    """Its result may be big: it is serialized in a worker thread, off the event loop."""
    waits: bool = False
    """It may wait for consensus (a commit): it runs outside the `Turnstile`."""
    answers_at_once: Callable[[Any], bool] | None = None
    """Given validated params, True when the call runs outside the `Turnstile` and never
    suspends (e.g. sec_sendTransaction without wait=commit): a batch of only such calls (and
    refused entries) runs them in request order in one task, not one task per call."""
    constant: bool = False
    """Its answer never changes (it takes no params, e.g. the genesis): the first result's
    encoding is kept and served to every later call."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Caps on what one HTTP body may ask for."""

    max_body_bytes: int = 2 * 1024 * 1024
    """Largest request body; a transaction is at most 32 KiB of hex."""
    max_batch_size: int = 100
    """Most calls in one batch."""
    max_request_cost: int = DEFAULT_MAX_REQUEST_COST
    """Most cost units one call or batch (the sum) may need (secnode.runtime.rpc.budget)."""
    max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES
    """Largest response body (a batch's responses together)."""


Observer = Callable[[str, str], None]
CallTimer = Callable[[str, float], None]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def encode_json(value: Any) -> bytes:
    """Compact ASCII JSON (ASCII, so strings with lone surrogates still encode)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


def error_response(error: RpcError, request_id: Any = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "error": error.to_json(), "id": request_id}


def _is_valid_id(value: Any) -> bool:
    return value is None or isinstance(value, str) or type(value) is int


def _bind_params(method: Method, params: Any) -> BaseModel:
    """Validate `params` (absent, object or array) into the method's model."""
    if params is _ABSENT:
        params = {}
    if isinstance(params, list):
        names = list(method.params.model_fields)
        if len(params) > len(names):
            raise invalid_params(
                [("", f"{len(params)} positional params given, {method.name} takes {len(names)}")]
            )
        params = dict(zip(names, params, strict=False))
    try:
        return method.params.model_validate(params)
    except ValidationError as exc:
        raise invalid_params(validation_problems(exc, bare_value_errors=True)) from None


@dataclass(slots=True)
class _Prepared:
    """One request object, validated but not run."""

    request_id: Any
    """Its id, or _ABSENT for a notification."""
    label: str
    """The method label for the observe hook (bounded set)."""
    method: Method | None = None
    params: BaseModel | None = None
    error: RpcError | None = None
    cost: int = INVALID_ENTRY_COST


@dataclass(frozen=True, slots=True)
class Reply:
    """What to send back for one body."""

    body: bytes | None
    """The JSON-RPC response body, or None when nothing must be sent."""
    retry_after_s: float | None = None
    """Set when the client was rate limited (HTTP 429 with Retry-After)."""
    denied: str | None = None
    """`unauthorized` or `forbidden` when a single call was refused for its credentials
    (HTTP 401 / 403); a batch answers 200 with the error in its entry."""


class Dispatcher:
    """Runs JSON-RPC bodies against a method table (see the module docstring)."""

    def __init__(
        self,
        methods: Mapping[str, Method],
        limits: Limits,
        observe: Observer | None = None,
        *,
        limiter: RateLimiter | None = None,
        clock: Callable[[], float] = time.monotonic,
        worker: Worker | None = None,
        turnstile: Turnstile | None = None,
        time_call: CallTimer | None = None,
        restricted: frozenset[str] = frozenset(),
    ) -> None:
        self.methods = methods
        self.restricted = restricted
        """Methods only a `Grant` covering them may call."""
        self.limits = limits
        self.limiter = limiter
        self.worker = worker or Worker()
        self.turnstile = turnstile or Turnstile()
        self._clock = clock
        self._observe = observe or (lambda method, outcome: None)
        self._time_call = time_call
        self._constant_results: dict[str, bytes] = {}
        """Encoded results of `Method.constant` methods, by name (one each, computed once)."""

    def oversized(self, size: int) -> bytes:
        """The response for a body of `size` bytes over the cap (id null)."""
        self._observe("none", "too_large")
        error = too_large("request body", size, self.limits.max_body_bytes, "bytes")
        return encode_json(error_response(error))

    async def handle(self, body: bytes) -> bytes | None:
        """The response body for `body` from an anonymous client (never rate limited)."""
        return (await self.respond(body, None)).body

    def _refuse(self, error: RpcError) -> Reply:
        self._observe("none", error.name)
        retry = error.data.get("retry_after_s") if isinstance(error.data, dict) else None
        return Reply(encode_json(error_response(error)), retry)

    def _rate_limited(self, client: str | None, cost: int, *, spend: bool) -> RpcError | None:
        if self.limiter is None or client is None:
            return None
        check = self.limiter.take if spend else self.limiter.retry_after
        wait = check(client, cost, self._clock())
        if wait is None:
            return None
        limit = self.limiter.limit
        return rate_limited(limit.rate_per_s, limit.burst, wait)

    async def respond(self, body: bytes, client: str | None, grant: Grant = ANONYMOUS) -> Reply:
        """Answer `body` sent by `client` (its rate-limit key: the remote address or the
        grant's identity; None: not rate limited) holding `grant`.

        Order of checks: body size, rate limit (one unit, before parsing), parse, batch size,
        cost budget (the sum over the batch, before anything runs), rate limit (the cost).
        """
        if len(body) > self.limits.max_body_bytes:
            return Reply(self.oversized(len(body)))
        if (error := self._rate_limited(client, 1, spend=False)) is not None:
            return self._refuse(error)
        # Parsing, validating and pricing a body is RPC work on the loop too: it takes a turn.
        async with self.turnstile.turn():
            checked = self._parse_and_price(body, client, grant)
        if isinstance(checked, Reply):
            return checked
        entries, batch = checked
        budget = ReplyBudget(self.limits.max_reply_bytes)
        if not batch:
            answer = await self._run(entries[0], budget)
            error = entries[0].error
            auth_failed = error is not None and error.kind in (UNAUTHORIZED, FORBIDDEN)
            return Reply(answer, denied=error.name if auth_failed and error else None)
        if all(_answers_at_once(entry) for entry in entries):
            # Nothing here waits, so tasks would run these in this same order: skip their cost.
            answered = [await self._run(entry, budget) for entry in entries]
        else:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(self._run(entry, budget)) for entry in entries]
            answered = [task.result() for task in tasks]
        responses = [r for r in answered if r is not None]
        return Reply(b"[" + b",".join(responses) + b"]" if responses else None)

    def _parse_and_price(
        self, body: bytes, client: str | None, grant: Grant
    ) -> Reply | tuple[list[_Prepared], bool]:
        """The body's prepared entries and whether it is a batch, once it passed the cost
        budget and the client paid for it; else the refusal."""
        try:
            message = json.loads(body, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:
            # A refused body still cost the parse: it is charged, so garbage is not free.
            self._rate_limited(client, 1 + len(body) // BODY_BYTES_PER_UNIT, spend=True)
            reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            return self._refuse(parse_error(reason))
        batch = isinstance(message, list)
        if batch and not message:
            return self._refuse(invalid_request("empty batch"))
        if batch and len(message) > self.limits.max_batch_size:
            return self._refuse(
                too_large("batch", len(message), self.limits.max_batch_size, "calls")
            )
        entries = [self._prepare(entry, grant) for entry in (message if batch else [message])]
        cost = sum(entry.cost for entry in entries)
        if cost > self.limits.max_request_cost:
            # Charged for the validation it took (one unit an entry), not for what it asked.
            self._rate_limited(client, len(entries) * INVALID_ENTRY_COST, spend=True)
            what = "batch" if batch else "call"
            return self._refuse(over_budget("cost", cost, self.limits.max_request_cost, what))
        if (error := self._rate_limited(client, cost, spend=True)) is not None:
            return self._refuse(error)
        return entries, batch

    def _prepare(self, request: Any, grant: Grant) -> _Prepared:
        """Validate one request object and price it; a malformed or unauthorized one carries
        its error."""
        request_id = request.get("id", _ABSENT) if isinstance(request, dict) else _ABSENT
        try:
            method_name, params = _parse_request(request)
        except RpcError as exc:
            name = request.get("method") if isinstance(request, dict) else None
            label = name if isinstance(name, str) and name in self.methods else "none"
            reply_id = (
                request_id if request_id is not _ABSENT and _is_valid_id(request_id) else None
            )
            return _Prepared(reply_id, label, error=exc)
        method = self.methods.get(method_name)
        if method is None:
            return _Prepared(request_id, "unknown", error=method_not_found(method_name))
        if (refusal := grant.refusal(method_name, self.restricted)) is not None:
            return _Prepared(request_id, method_name, method, error=refusal)
        try:
            bound = _bind_params(method, params)
        except RpcError as exc:
            return _Prepared(request_id, method_name, method, error=exc)
        return _Prepared(request_id, method_name, method, bound, cost=call_cost(method_name, bound))

    async def _run(self, entry: _Prepared, budget: ReplyBudget) -> bytes | None:
        """Run one prepared request -> its encoded response, or None for a notification."""
        call = CallReply(budget)
        token = current_call.set(call)
        started = time.perf_counter()
        try:
            outcome = entry.error or await self._call(entry, call)
        finally:
            current_call.reset(token)
        if entry.error is None and self._time_call is not None:
            self._time_call(entry.label, time.perf_counter() - started)
        if outcome is None or isinstance(outcome, bytes):
            return outcome
        error = outcome
        self._observe(entry.label, error.name)
        if entry.request_id is _ABSENT:
            return None
        return encode_json(error_response(error, entry.request_id))

    async def _call(self, entry: _Prepared, call: CallReply) -> bytes | RpcError | None:
        """The encoded success response, or the error to answer with."""
        method, params = entry.method, entry.params
        if method is None or params is None:
            return internal_error()
        try:
            if method.waits:
                payload = await self._run_method(method, params)
            else:
                async with self.turnstile.turn():
                    payload = await self._run_method(method, params)
        except RpcError as exc:
            return exc
        except Exception as exc:
            # The top of the per-request driver: an unexpected failure answers internal_error
            # instead of a 500 with a traceback, and is logged with its traceback here.
            error = to_rpc_error(exc)
            if error.name == "internal_error":
                log.exception("RPC %s failed", entry.label)
            return error
        if entry.request_id is _ABSENT:
            call.settle(0)
            self._observe(entry.label, "ok")
            return None
        request_id = entry.request_id
        is_int = type(request_id) is int
        encoded_id = str(request_id).encode() if is_int else encode_json(request_id)
        response = b'{"jsonrpc":"2.0","result":%b,"id":%b}' % (payload, encoded_id)
        if not call.settle(len(response)):
            budget = call.budget
            return over_budget("reply_bytes", budget.used + len(response), budget.limit, "reply")
        self._observe(entry.label, "ok")
        return response

    async def _run_method(self, method: Method, params: BaseModel) -> bytes:
        cached = self._constant_results.get(method.name) if method.constant else None
        if cached is not None:
            return cached
        result = await method.call(params)
        if method.heavy:
            encoded = await self.worker.run(lambda: _encode_result(result))
        else:
            encoded = _encode_result(result)
        if method.constant:
            self._constant_results[method.name] = encoded
        return encoded


def _answers_at_once(entry: _Prepared) -> bool:
    """A refused entry, or a call whose method says it answers without suspending."""
    if entry.error is not None:
        return True
    method, params = entry.method, entry.params
    if method is None or params is None or method.answers_at_once is None:
        return False
    return method.waits and method.answers_at_once(params)


def _encode_result(result: BaseModel) -> bytes:
    return encode_json(result.model_dump(mode="json"))


def _json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _parse_request(request: Any) -> tuple[str, Any]:
    """(method, params) of a well-formed request object; raise invalid_request otherwise."""
    if not isinstance(request, dict):
        raise invalid_request(f"expected a request object, got {_json_type(request)}")
    unknown = sorted(str(k) for k in request if k not in _REQUEST_MEMBERS)
    if unknown:
        raise invalid_request(f"unknown member {unknown[0][:64]!r}")
    if request.get("jsonrpc") != "2.0":
        raise invalid_request('member "jsonrpc" must be exactly "2.0"')
    request_id = request.get("id")
    if not _is_valid_id(request_id):
        raise invalid_request(
            f'"id" must be a string, an integer or null, not {_json_type(request_id)}'
        )
    method = request.get("method")
    if not isinstance(method, str):
        raise invalid_request(f'"method" must be a string, not {_json_type(method)}')
    params = request.get("params", _ABSENT)
    if params is not _ABSENT and not isinstance(params, dict | list):
        raise invalid_request(f'"params" must be an object or an array, not {_json_type(params)}')
    return method, params


__all__ = [
    "Dispatcher",
    "Limits",
    "Method",
    "Reply",
    "Observer",
    "encode_json",
    "error_response",
]
