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
* Every call is reported to the `observe(method, outcome)` hook once; method is the method
  name if it exists, "unknown" if not, "none" if the request had no usable method, so the
  label set stays bounded.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from pydantic import BaseModel, ValidationError

from secnode.rpc.errors import (
    RpcError,
    invalid_params,
    invalid_request,
    method_not_found,
    parse_error,
    to_rpc_error,
    too_large,
)

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


@dataclass(frozen=True, slots=True)
class Limits:
    """Caps on what one HTTP body may ask for."""

    max_body_bytes: int = 2 * 1024 * 1024
    """Largest request body; a transaction is at most 32 KiB of hex."""
    max_batch_size: int = 100
    """Most calls in one batch."""


Observer = Callable[[str, str], None]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def encode_json(value: Any) -> bytes:
    """Compact ASCII JSON (ASCII, so strings with lone surrogates still encode)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


def error_response(error: RpcError, request_id: Any = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "error": error.to_json(), "id": request_id}


def _is_valid_id(value: Any) -> bool:
    return value is None or isinstance(value, str) or type(value) is int


def _field_name(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def validation_problems(exc: ValidationError) -> list[tuple[str, str]]:
    """(field, message) per pydantic error, without echoing the (possibly huge) input."""
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        message = error["msg"]
        if error["type"] == "value_error":
            message = message.removeprefix("Value error, ")
        problems.append((_field_name(error["loc"]), message))
    return problems


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
        raise invalid_params(validation_problems(exc)) from None


class Dispatcher:
    """Runs JSON-RPC bodies against a method table (see the module docstring)."""

    def __init__(
        self, methods: Mapping[str, Method], limits: Limits, observe: Observer | None = None
    ) -> None:
        self.methods = methods
        self.limits = limits
        self._observe = observe or (lambda method, outcome: None)

    def oversized(self, size: int) -> bytes:
        """The response for a body of `size` bytes over the cap (id null)."""
        self._observe("none", "too_large")
        error = too_large("request body", size, self.limits.max_body_bytes, "bytes")
        return encode_json(error_response(error))

    async def handle(self, body: bytes) -> bytes | None:
        if len(body) > self.limits.max_body_bytes:
            return self.oversized(len(body))
        try:
            message = json.loads(body, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:
            self._observe("none", "parse_error")
            reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            return encode_json(error_response(parse_error(reason)))
        if isinstance(message, list):
            return await self._handle_batch(message)
        response = await self._handle_one(message)
        return None if response is None else encode_json(response)

    async def _handle_batch(self, batch: list[Any]) -> bytes | None:
        if not batch:
            self._observe("none", "invalid_request")
            return encode_json(error_response(invalid_request("empty batch")))
        if len(batch) > self.limits.max_batch_size:
            self._observe("none", "too_large")
            error = too_large("batch", len(batch), self.limits.max_batch_size, "calls")
            return encode_json(error_response(error))
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(self._handle_one(entry)) for entry in batch]
        responses = [r for r in (task.result() for task in tasks) if r is not None]
        return encode_json(responses) if responses else None

    async def _handle_one(self, request: Any) -> dict[str, Any] | None:
        """One request object -> its response, or None for a notification."""
        request_id = request.get("id", _ABSENT) if isinstance(request, dict) else _ABSENT
        reply_id = request_id if request_id is not _ABSENT and _is_valid_id(request_id) else None
        try:
            method_name, params = _parse_request(request)
        except RpcError as exc:
            name = request.get("method") if isinstance(request, dict) else None
            self._observe(
                name if isinstance(name, str) and name in self.methods else "none", exc.name
            )
            return error_response(exc, reply_id)
        method = self.methods.get(method_name)
        try:
            if method is None:
                raise method_not_found(method_name)
            result = await method.call(_bind_params(method, params))
            payload = result.model_dump(mode="json")
        except RpcError as exc:
            error = exc
        except Exception as exc:
            # The top of the per-request driver: an unexpected failure answers internal_error
            # instead of a 500 with a traceback, and is logged with its traceback here.
            error = to_rpc_error(exc)
            if error.name == "internal_error":
                log.exception("RPC %s failed", method_name)
        else:
            self._observe(method_name, "ok")
            if request_id is _ABSENT:
                return None
            return {"jsonrpc": "2.0", "result": payload, "id": request_id}
        self._observe(method_name if method is not None else "unknown", error.name)
        if request_id is _ABSENT:
            return None
        return error_response(error, request_id)


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
    "Observer",
    "encode_json",
    "error_response",
    "validation_problems",
]
