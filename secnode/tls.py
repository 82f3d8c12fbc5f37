"""TLS for the RPC endpoint, both ends: the server's context (`[rpc] tls_cert`, `tls_key`,
`client_ca`) and the client's (`--ca`). It lives outside `secnode.runtime` so that clients (the
CLI, the auditor) import it without the node. The server builds one `ssl.SSLContext`
once at start, so a missing, unreadable or mismatched file stops the node with a line
naming the file instead of failing at the first client.

The context accepts TLS 1.2 and 1.3 only, with the `ssl` module's default (secure) cipher
choice. With `client_ca`, a client MAY present a certificate (`CERT_OPTIONAL`): one that does
not verify against that CA fails the handshake, one that does becomes the request's identity
(secnode.runtime.rpc.auth), and a client without one still reaches the open methods.
"""

from __future__ import annotations

import ssl
from pathlib import Path


class TlsConfigError(ValueError):
    """A TLS file of the config cannot be used; the message names the file and why."""


def _readable(path: Path, label: str) -> None:
    if not path.is_file():
        raise TlsConfigError(f"{label} {path} does not exist or is not a file")
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise TlsConfigError(f"cannot read {label} {path}: {exc.strerror}") from None


def _trust(context: ssl.SSLContext, ca_file: Path, label: str) -> None:
    """Trust the CA certificates of `ca_file` (and only those, on a fresh context)."""
    _readable(ca_file, label)
    try:
        context.load_verify_locations(cafile=ca_file)
    except ssl.SSLError as exc:
        raise TlsConfigError(
            f"{label} {ca_file}: not PEM CA certificates ({exc.reason or exc})"
        ) from None


def server_context(cert: Path, key: Path, client_ca: Path | None = None) -> ssl.SSLContext:
    """The server's TLS context (see the module docstring); TlsConfigError if a file is
    missing, is not PEM of the right kind, or the key does not belong to the certificate."""
    _readable(cert, "[rpc] tls_cert")
    _readable(key, "[rpc] tls_key")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc):
            raise TlsConfigError(
                f"[rpc] tls_key {key} is not the private key of tls_cert {cert}"
            ) from None
        raise TlsConfigError(
            f"[rpc] tls_cert {cert} / tls_key {key}: not a PEM certificate and its private "
            f"key ({exc.reason or exc})"
        ) from None
    if client_ca is not None:
        _trust(context, client_ca, "[rpc] client_ca")
        context.verify_mode = ssl.CERT_OPTIONAL
    return context


def client_context(
    ca_file: Path | None = None, cert: Path | None = None, key: Path | None = None
) -> ssl.SSLContext:
    """A client's TLS context: the system's trusted CAs, or only `ca_file` (a private CA)
    when given; hostnames are checked. `cert` (and `key`, if not in the same file) is the
    client certificate for mutual TLS. TlsConfigError names a file that cannot be used."""
    if ca_file is None:
        context = ssl.create_default_context()
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # checks hostnames, like the default
        _trust(context, ca_file, "--ca")
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert is not None:
        _readable(cert, "--client-cert")
        if key is not None:
            _readable(key, "--client-key")
        try:
            context.load_cert_chain(cert, key)
        except ssl.SSLError as exc:
            raise TlsConfigError(
                f"--client-cert {cert}: not a PEM certificate with its key ({exc.reason or exc})"
            ) from None
    return context
