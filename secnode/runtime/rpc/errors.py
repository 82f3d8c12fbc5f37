"""JSON-RPC error codes, and the one place that maps domain errors to them.

Standard codes are those of the JSON-RPC 2.0 specification; application codes use the
"server error" range -32000...-32099 and are listed in `APPLICATION_ERRORS` (docs/rpc.md shows
the same table; a test checks they agree). Every `RpcError` has a stable `name`, which is also
the `outcome` label of the `sec_rpc_requests_total` metric.

Invariant: `to_rpc_error` returns an `RpcError` for every exception it is given. Domain errors
that describe bad input become `invalid_params` with the domain message (which names the field
and the offending value); anything unexpected becomes `internal_error` with a generic message,
so a traceback or internal detail never reaches a client.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from ledger.errors import InvalidAddress, InvalidProof, MalformedTransaction
from secnode.runtime.mempool import MempoolRejected


@dataclass(frozen=True, slots=True)
class ErrorCode:
    """One row of the error table."""

    code: int
    """The JSON-RPC `error.code`."""
    name: str
    """Stable short name (metric outcome label, docs)."""
    meaning: str
    """When it is returned."""
    data: str
    """What `error.data` holds, if anything."""


PARSE_ERROR: Final = ErrorCode(-32700, "parse_error", "the body is not valid JSON", "none")
INVALID_REQUEST: Final = ErrorCode(
    -32600,
    "invalid_request",
    "not a JSON-RPC 2.0 request object (wrong `jsonrpc`, bad `id` type, missing or non-string "
    "`method`, `params` not an object or array, unknown member, empty batch)",
    "none",
)
METHOD_NOT_FOUND: Final = ErrorCode(-32601, "method_not_found", "no such method", '{"method"}')
INVALID_PARAMS: Final = ErrorCode(
    -32602,
    "invalid_params",
    "parameters fail validation; the message names the field and the problem",
    '{"errors": [{"field", "message"}]}',
)
INTERNAL_ERROR: Final = ErrorCode(
    -32603, "internal_error", "a bug or storage failure on the node (logged there)", "none"
)
STANDARD_ERRORS: Final = (PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS)

NOT_FOUND: Final = ErrorCode(
    -32000,
    "not_found",
    "the requested block, transaction, account or order does not exist (yet)",
    '{"what", "key"}',
)
REJECTED: Final = ErrorCode(
    -32001,
    "rejected",
    "the mempool refused the transaction; `data.reason` is the admission rule",
    '{"reason", "hash"}',
)
TIMEOUT: Final = ErrorCode(
    -32002,
    "timeout",
    "the transaction was admitted but not committed within `timeout_s`; it may still commit",
    '{"hash", "timeout_s"}',
)
TOO_LARGE: Final = ErrorCode(
    -32003,
    "too_large",
    "the request body or batch exceeds the node's cap (HTTP 413 for bodies)",
    '{"limit", "size"}',
)
BUSY: Final = ErrorCode(
    -32004,
    "busy",
    "too many requests are already waiting for commits; retry, or wait for the mempool only",
    '{"limit"}',
)
OVER_BUDGET: Final = ErrorCode(
    -32005,
    "over_budget",
    "the call or batch would exceed a work budget: `cost` units (checked before running) or "
    "`reply_bytes` (a reply is refused before it is built when its size is known in advance)",
    '{"budget", "limit", "amount"}',
)
RATE_LIMITED: Final = ErrorCode(
    -32006,
    "rate_limited",
    "this client (its token or certificate identity when authenticated, else its remote IP) "
    "spent its cost units; retry after `retry_after_s` (HTTP 429)",
    '{"limit_per_s", "burst", "retry_after_s"}',
)
SUBSCRIPTION_LIMIT: Final = ErrorCode(
    -32007,
    "subscription_limit",
    "over a WebSocket limit: subscriptions per connection, or connections to the node",
    '{"what", "limit"}',
)
UNAUTHORIZED: Final = ErrorCode(
    -32008,
    "unauthorized",
    "the method is restricted (`[rpc] restricted_methods`) and the request carried no valid "
    "credential: a bearer token of the node's `auth_tokens_file` or a client certificate "
    "signed by its `client_ca` (HTTP 401 for a single call)",
    '{"method"}',
)
FORBIDDEN: Final = ErrorCode(
    -32009,
    "forbidden",
    "the request's token is valid but its `methods` list in the `auth_tokens_file` does not "
    "include this restricted method (HTTP 403 for a single call)",
    '{"method", "identity"}',
)
PRUNED: Final = ErrorCode(
    -32010,
    "pruned",
    "the block (or the block of the transaction) is below the height this non-archive node "
    "keeps blocks from: it was pruned, or the node was restored from a snapshot above it; ask "
    "an archive node",
    '{"what", "key", "kept_from"}',
)
APPLICATION_ERRORS: Final = (
    NOT_FOUND,
    PRUNED,
    REJECTED,
    TIMEOUT,
    TOO_LARGE,
    BUSY,
    OVER_BUDGET,
    RATE_LIMITED,
    SUBSCRIPTION_LIMIT,
    UNAUTHORIZED,
    FORBIDDEN,
)
ALL_ERRORS: Final = (*STANDARD_ERRORS, INTERNAL_ERROR, *APPLICATION_ERRORS)

MEMPOOL_REASONS: Final = (
    "duplicate",
    "wrong_chain",
    "unknown_account",
    "nonce_too_low",
    "nonce_too_high",
    "nonce_pending",
    "nonce_gap",
    "sender_limit",
    "mempool_full",
    "invalid_signature",
)
"""Values of `data.reason` for `rejected` (secnode.runtime.mempool.MempoolRejected codes)."""


class RpcError(Exception):
    """A JSON-RPC error response: `kind` gives code and name, `message` says what and why."""

    def __init__(self, kind: ErrorCode, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.data = data

    @property
    def code(self) -> int:
        return self.kind.code

    @property
    def name(self) -> str:
        return self.kind.name

    def to_json(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.kind.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


def parse_error(reason: str) -> RpcError:
    return RpcError(PARSE_ERROR, f"parse error: {reason}")


def invalid_request(reason: str) -> RpcError:
    return RpcError(INVALID_REQUEST, f"invalid request: {reason}")


def method_not_found(method: str) -> RpcError:
    shown = method if len(method) <= 64 else method[:64] + "..."
    return RpcError(METHOD_NOT_FOUND, f"method not found: {shown!r}", {"method": shown})


def invalid_params(problems: list[tuple[str, str]]) -> RpcError:
    """`problems` is a list of (field, message); the first one leads the message."""
    field, message = problems[0]
    text = f"invalid params: {field}: {message}" if field else f"invalid params: {message}"
    if len(problems) > 1:
        text += f" (and {len(problems) - 1} more)"
    return RpcError(
        INVALID_PARAMS, text, {"errors": [{"field": f, "message": m} for f, m in problems]}
    )


def not_found(what: str, key: str) -> RpcError:
    return RpcError(NOT_FOUND, f"{what} {key} not found", {"what": what, "key": key})


def pruned(what: str, key: str, kept_from: int) -> RpcError:
    return RpcError(
        PRUNED,
        f"{what} {key} was pruned: this node keeps blocks from height {kept_from} (and the "
        "genesis); ask an archive node",
        {"what": what, "key": key, "kept_from": kept_from},
    )


def timeout(tx_hash: bytes, timeout_s: float) -> RpcError:
    return RpcError(
        TIMEOUT,
        f"transaction {tx_hash.hex()} not committed within {timeout_s:g} s; it may still commit",
        {"hash": tx_hash.hex(), "timeout_s": timeout_s},
    )


def too_large(what: str, size: int, limit: int, unit: str) -> RpcError:
    """E.g. too_large("request body", 9751, 4096, "bytes")."""
    return RpcError(
        TOO_LARGE,
        f"{what} of {size} {unit} exceeds the limit of {limit} {unit}",
        {"limit": limit, "size": size},
    )


def busy(limit: int) -> RpcError:
    return RpcError(
        BUSY,
        f"{limit} requests are already waiting for commits; retry later or use wait=mempool",
        {"limit": limit},
    )


def over_budget(budget: str, amount: int, limit: int, what: str = "call") -> RpcError:
    """E.g. over_budget("cost", 5000, 1000, "batch"): `budget` is "cost" (units) or
    "reply_bytes"; `what` names what was priced (call, batch, reply)."""
    unit = "bytes" if budget == "reply_bytes" else "cost units"
    return RpcError(
        OVER_BUDGET,
        f"{budget} budget exceeded: the {what} needs {amount} {unit}, the limit is {limit} {unit}",
        {"budget": budget, "limit": limit, "amount": amount},
    )


def rate_limited(limit_per_s: float, burst: float, retry_after_s: float) -> RpcError:
    return RpcError(
        RATE_LIMITED,
        f"rate limit of {limit_per_s:g} cost units/s (burst {burst:g}) exceeded for this client; "
        f"retry after {retry_after_s:.3f} s",
        {"limit_per_s": limit_per_s, "burst": burst, "retry_after_s": retry_after_s},
    )


def subscription_limit(what: str, limit: int) -> RpcError:
    return RpcError(
        SUBSCRIPTION_LIMIT,
        f"at most {limit} {what}; unsubscribe or close one first",
        {"what": what, "limit": limit},
    )


def unauthorized(method: str) -> RpcError:
    return RpcError(
        UNAUTHORIZED,
        f"{method} is restricted on this node: send a bearer token (Authorization header) or "
        "a client certificate it accepts",
        {"method": method},
    )


def forbidden(method: str, identity: str) -> RpcError:
    return RpcError(
        FORBIDDEN,
        f"{identity} may not call {method}: it is not in that token's methods",
        {"method": method, "identity": identity},
    )


def rejected(exc: MempoolRejected, tx_hash: bytes) -> RpcError:
    return RpcError(
        REJECTED,
        f"transaction {tx_hash.hex()} rejected ({exc.code}): {exc}",
        {"reason": exc.code, "hash": tx_hash.hex()},
    )


def internal_error() -> RpcError:
    return RpcError(INTERNAL_ERROR, "internal error (see the node's log)")


_BAD_INPUT: Final = (MalformedTransaction, InvalidAddress, InvalidProof)
"""Ledger errors raised while parsing client-supplied values: the client's fault."""


def to_rpc_error(exc: BaseException, *, field: str = "") -> RpcError:
    """The error response for `exc` (see the module invariant). `field` names the parameter
    being parsed when a bad-input domain error is raised."""
    if isinstance(exc, RpcError):
        return exc
    if isinstance(exc, MempoolRejected):
        return RpcError(REJECTED, f"transaction rejected ({exc.code}): {exc}", {"reason": exc.code})
    if isinstance(exc, _BAD_INPUT):
        return invalid_params([(field, str(exc))])
    # Any other LedgerError (store unreadable, corrupt row) or exception is the node's problem,
    # not the client's; the caller logs it.
    return internal_error()
