"""A small synchronous JSON-RPC 2.0 client over urllib, for the CLI and the auditor.

`call_as(method, params, Model)` parses the result into the method's result model of the shared
schema (`secnode.schema`), so a caller reads typed attributes (bytes, addresses, ledger objects
through `to_header()` / `to_proof()` ...) and never indexes an untyped answer. `call` returns
the raw JSON result, for tools that only pass it on.

Every failure is an `RpcClientError` whose message is one line a user can act on: the node is
unreachable (connection refused, DNS, timeout), answered HTTP without JSON-RPC, answered
something that is not a JSON-RPC response, returned a JSON-RPC error (`RpcCallError`, which
keeps the code and data for scripts), or returned a result that does not fit the schema
(`MalformedAnswer`, naming the node, the method and each bad field's path).

`Credentials` carry what a node in public may ask for (docs/operations.md, "The RPC endpoint
in public"): a TLS context trusting a private CA (`--ca FILE` / `SEC_RPC_CA`), a client
certificate for mutual TLS, and a bearer token (`--token-file FILE` / `SEC_RPC_TOKEN_FILE` /
`SEC_RPC_TOKEN`) sent as `Authorization: Bearer`. A token is never put in a message.
"""

from __future__ import annotations

import http.client
import json
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

from pydantic import BaseModel, ValidationError

from secnode.schema.values import problems_text
from secnode.tls import TlsConfigError, client_context

DEFAULT_RPC_URL: Final = "http://127.0.0.1:8545"
MAX_RESPONSE_BYTES: Final = 256 * 1024 * 1024
ResultT = TypeVar("ResultT", bound=BaseModel)
Params = dict[str, Any] | list[Any] | None


class RpcClientError(Exception):
    """A call failed; the message is one line saying what happened and where."""


class RpcCallError(RpcClientError):
    """The node answered with a JSON-RPC error."""

    def __init__(self, method: str, code: int, message: str, data: Any) -> None:
        super().__init__(message)
        self.method = method
        self.code = code
        self.data = data


class MalformedAnswer(RpcClientError):
    """The node answered a result that does not fit the method's result model: another
    service, an incompatible version, or a lying node. The message names the node, the method
    and each bad field by its path (e.g. `header.height`)."""

    def __init__(self, node: str, method: str, problems: str) -> None:
        super().__init__(f"node {node} answered {method} with a malformed result: {problems}")
        self.node = node
        self.method = method
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Credentials:
    """How a client proves itself to a node and checks the node's certificate."""

    token: str | None = None
    """Bearer token for restricted methods (never printed)."""
    ssl_context: ssl.SSLContext | None = None
    """For https/wss: None trusts the system's CAs and sends no client certificate."""

    def headers(self) -> dict[str, str]:
        """The Authorization header when there is a token."""
        return {} if self.token is None else {"Authorization": f"Bearer {self.token}"}


TOKEN_VARIABLE: Final = "SEC_RPC_TOKEN"
TOKEN_FILE_VARIABLE: Final = "SEC_RPC_TOKEN_FILE"
CA_VARIABLE: Final = "SEC_RPC_CA"
CLIENT_CERT_VARIABLE: Final = "SEC_RPC_CLIENT_CERT"
CLIENT_KEY_VARIABLE: Final = "SEC_RPC_CLIENT_KEY"


def _read_token(path: Path) -> str:
    try:
        token = path.read_text().strip()
    except OSError as exc:
        raise RpcClientError(f"cannot read token file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise RpcClientError(f"token file {path} is not text") from None
    if not token or any(c.isspace() for c in token):
        raise RpcClientError(f"token file {path} must hold one token on one line")
    return token


def load_credentials(
    ca: str | None = None,
    token_file: str | None = None,
    client_cert: str | None = None,
    client_key: str | None = None,
    environ: Mapping[str, str] = os.environ,
) -> Credentials:
    """Credentials from options, each falling back to its environment variable (an option
    wins); RpcClientError names a file that cannot be used."""
    ca = ca or environ.get(CA_VARIABLE) or None
    client_cert = client_cert or environ.get(CLIENT_CERT_VARIABLE) or None
    client_key = client_key or environ.get(CLIENT_KEY_VARIABLE) or None
    token_file = token_file or environ.get(TOKEN_FILE_VARIABLE) or None
    token = _read_token(Path(token_file)) if token_file else environ.get(TOKEN_VARIABLE) or None
    if token is not None and any(c.isspace() for c in token):
        raise RpcClientError(f"{TOKEN_VARIABLE} must be one token without spaces")
    if client_key and not client_cert:
        raise RpcClientError("--client-key needs --client-cert")
    context = None
    if ca or client_cert:
        try:
            context = client_context(
                Path(ca) if ca else None,
                Path(client_cert) if client_cert else None,
                Path(client_key) if client_key else None,
            )
        except TlsConfigError as exc:
            raise RpcClientError(str(exc)) from None
    return Credentials(token, context)


def rpc_endpoint(url: str) -> str:
    """The /rpc endpoint of a node URL: "http://host:port" and ".../" get "/rpc" appended."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise RpcClientError(f"--rpc must be an http:// or https:// URL, got {url!r}")
    if parsed.path in ("", "/"):
        return urllib.parse.urlunsplit((parsed.scheme, parsed.netloc, "/rpc", "", ""))
    return url


def _describe_reason(reason: object) -> str:
    if isinstance(reason, ssl.SSLCertVerificationError):
        return (
            f"its TLS certificate is not trusted ({reason.verify_message}); if the node uses a "
            f"private CA, pass --ca FILE or set {CA_VARIABLE}"
        )
    if isinstance(reason, ssl.SSLError):
        return f"TLS failed ({reason.reason or reason}); is the URL https:// and the port TLS?"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused (is the node running, and is this its RPC port?)"
    if isinstance(reason, TimeoutError):
        return "timed out"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason)


class RpcClient:
    """Calls one node's JSON-RPC endpoint."""

    def __init__(
        self,
        url: str = DEFAULT_RPC_URL,
        timeout_s: float = 30.0,
        credentials: Credentials | None = None,
    ) -> None:
        self.url = url
        """The node URL as given (named in MalformedAnswer)."""
        self.endpoint = rpc_endpoint(url)
        self.timeout_s = timeout_s
        self.credentials = credentials or Credentials()
        self._next_id = 1

    def call_as(self, method: str, params: Params, model: type[ResultT]) -> ResultT:
        """The result of `method` validated into `model`; MalformedAnswer if it does not fit,
        another RpcClientError if the call failed."""
        result = self.call(method, params)
        try:
            return model.model_validate(result)
        except ValidationError as exc:
            raise MalformedAnswer(self.url, method, problems_text(exc)) from None

    def call(self, method: str, params: Params = None) -> Any:
        """The result of `method` as decoded JSON, unchecked (prefer `call_as`), or
        RpcClientError."""
        request_id = self._next_id
        self._next_id += 1
        request: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": request_id}
        if params is not None:
            request["params"] = params
        status, body = self._post(json.dumps(request).encode())
        return self._result(method, request_id, status, body)

    def _post(self, data: bytes) -> tuple[int, bytes]:
        http_request = urllib.request.Request(
            self.endpoint,
            data=data,
            headers={
                "Content-Type": "application/json",
                "Accept": "application/json",
                **self.credentials.headers(),
            },
            method="POST",
        )
        context = self.credentials.ssl_context
        try:
            with urllib.request.urlopen(
                http_request, timeout=self.timeout_s, context=context
            ) as response:
                return response.status, response.read(MAX_RESPONSE_BYTES)
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, exc.read(MAX_RESPONSE_BYTES)
        except urllib.error.URLError as exc:
            reason = _describe_reason(exc.reason)
            raise RpcClientError(f"cannot reach node at {self.endpoint}: {reason}") from None
        except TimeoutError:
            raise RpcClientError(
                f"node at {self.endpoint} did not answer within {self.timeout_s:g} s"
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            reason = _describe_reason(exc) or type(exc).__name__
            raise RpcClientError(f"connection to {self.endpoint} failed: {reason}") from None

    def _result(self, method: str, request_id: int, status: int, body: bytes) -> Any:
        try:
            response = json.loads(body) if body else None
        except ValueError:
            response = None
        if not isinstance(response, dict) or response.get("jsonrpc") != "2.0":
            if status != 200:
                raise RpcClientError(f"node at {self.endpoint} answered HTTP {status}")
            raise RpcClientError(f"node at {self.endpoint} did not answer with JSON-RPC")
        error = response.get("error")
        if isinstance(error, dict):
            code = error.get("code")
            message = error.get("message")
            raise RpcCallError(
                method,
                code if isinstance(code, int) else 0,
                message if isinstance(message, str) else f"{method} failed with {error!r}",
                error.get("data"),
            )
        if response.get("id") != request_id or "result" not in response:
            raise RpcClientError(f"node at {self.endpoint} answered a malformed JSON-RPC response")
        return response["result"]
