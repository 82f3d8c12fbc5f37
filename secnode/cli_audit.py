"""`sec tx attest`, `sec query trust|attestations` and the auditor's `sec audit trust|chain`.

`sec query trust ADDRESS` shows a score and checks its two state proofs under the state root
the node names; `sec audit trust ADDRESS` trusts nothing but the genesis file: it checks the
header, the certificates from genesis, both proofs, every page of the epoch's inputs, and
recomputes the epoch (secnode.audit). It prints each check, then VERIFIED, or FAILED with the
check that failed (exit status 1). `sec audit chain` replays every block from genesis,
verifying certificates, transaction roots and state roots, with a progress bar on stderr.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Final

from contracts.eigentrust import SCALE
from contracts.epochs import EPOCH_KEY, score_key
from contracts.trust import Attest
from ledger.blocks import BlockHeader
from ledger.genesis import Genesis, load_genesis
from ledger.keys import format_address
from ledger.state_tree import verify_state_proof
from secnode.audit import AuditFailure, audit_chain, audit_trust
from secnode.audit_freshness import (
    Freshness,
    block_time_text,
    default_state_path,
    load_state,
    save_state,
)
from secnode.cli_client import (
    ADDRESS_HELP,
    ClientInputError,
    _client,
    _guarded,
    _hash,
    print_fields,
    print_json,
    resolve_address,
    submit,
)
from secnode.jsonview import hex_from_json, state_proof_from_json

DEFAULT_GENESIS: Final = Path(__file__).resolve().parents[1] / "genesis.json"
MAX_ATTESTATION_PAGES: Final = 10_000


def score_text(score: int) -> str:
    """A fixed-point score as a decimal fraction of all trust, exactly (9 decimals)."""
    return f"{score // SCALE}.{score % SCALE:09d}"


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


def _value(text: str) -> int:
    if text not in ("1", "+1", "-1"):
        raise argparse.ArgumentTypeError(f"must be +1 or -1, got {text!r}")
    return int(text)


# --- sec tx attest, sec query trust|attestations ---------------------------------------------


def _tx_attest(args: argparse.Namespace) -> int:
    order_id = bytes.fromhex(_hash(args.order, "--order"))
    body = Attest(order_id, resolve_address(args.subject, "--subject"), args.value)
    return submit(args, body)


def _query_trust(args: argparse.Namespace) -> int:
    address = resolve_address(args.address, "ADDRESS")
    answer = _client(args).call("sec_getTrustScore", {"address": format_address(address)})
    root = hex_from_json(answer["state_root"], "state_root")
    values = answer["values"]
    score_raw = None if values["score"] is None else hex_from_json(values["score"], "score")
    verify_state_proof(
        root, score_key(address), score_raw, state_proof_from_json(answer["proofs"]["score"])
    )
    verify_state_proof(
        root,
        EPOCH_KEY,
        hex_from_json(values["epoch"], "epoch"),
        state_proof_from_json(answer["proofs"]["epoch"]),
    )
    if args.json:
        print_json({**answer, "verified": True})
        return 0
    epoch = answer["epoch"]
    print_fields(
        [
            ("address", answer["address"]),
            ("score", f"{score_text(answer['score'])} of all trust ({answer['score']} / 10^9)"),
            ("attestations", f"+{answer['positive']} / -{answer['negative']}"),
            (
                "epoch",
                f"{epoch['epoch']} (inputs to block {epoch['input_height']}, "
                f"committed in block {epoch['committed_height']})",
            ),
            ("scores root", epoch["scores_root"]),
            ("height", answer["height"]),
            ("proofs", "score and epoch records verified under the state root"),
            ("audit", "sec audit trust ADDRESS checks the certificate and recomputes the epoch"),
        ]
    )
    return 0


def _query_attestations(args: argparse.Namespace) -> int:
    if (args.subject is None) == (args.attester is None):
        raise ClientInputError("give exactly one of --subject or --attester")
    role = "subject" if args.subject is not None else "attester"
    address = resolve_address(args.subject or args.attester, f"--{role}")
    client = _client(args)
    cursor: int | None = args.cursor
    entries: list[dict[str, Any]] = []
    answer: dict[str, Any] = {}
    for _ in range(MAX_ATTESTATION_PAGES):
        params = {role: format_address(address), "cursor": cursor, "limit": args.limit}
        answer = client.call("sec_getAttestations", params)
        entries += answer["attestations"]
        cursor = answer["next_cursor"]
        if cursor is None or not args.all:
            break
    if args.json:
        print_json({**answer, "attestations": entries})
        return 0
    rows: list[tuple[str, Any]] = [(role, answer["address"]), ("total", answer["total"])]
    for entry in entries:
        other = entry["attester"] if role == "subject" else entry["subject"]
        sign = "+1" if entry["value"] > 0 else "-1"
        rows.append(
            (
                f"#{entry['sequence']}",
                f"{sign} {other} order {entry['order_id']} w{entry['weight']}",
            )
        )
    if answer.get("next_cursor") is not None:
        rows.append(("next", f"--cursor {answer['next_cursor']}"))
    print_fields(rows)
    return 0


# --- sec audit -----------------------------------------------------------------------------


def _genesis(args: argparse.Namespace) -> Genesis:
    return load_genesis(Path(args.genesis))


class _Bar:
    """A progress bar on stderr, redrawn at most every 1% of the work."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.shown = -1

    def __call__(self, done: int, total: int) -> None:
        percent = 100 * done // max(total, 1)
        if percent == self.shown and done != total:
            return
        self.shown = percent
        filled = percent * 30 // 100
        bar = "#" * filled + "." * (30 - filled)
        end = "\n" if done >= total else ""
        print(f"\r{self.label} [{bar}] {done}/{total}", end=end, file=sys.stderr, flush=True)


class _Memory:
    """The auditor's state file around one run (secnode.audit_freshness)."""

    def __init__(self, args: argparse.Namespace, genesis: Genesis) -> None:
        self.path = Path(args.state) if args.state is not None else default_state_path()
        self.chain = genesis.document_hash().hex()
        self.chains = load_state(self.path)
        self.freshness = Freshness(
            chain=self.chain,
            node=args.rpc,
            seen=self.chains.get(self.chain),
            now_ms=int(time.time() * 1000),
            max_age_s=args.max_age,
            state_path=self.path,
        )

    def accept(self, header: BlockHeader, *, pinned: bool = False) -> None:
        self.chains[self.chain] = self.freshness.accept(header, pinned=pinned)
        save_state(self.path, self.chains)


def _verified_at(header: BlockHeader) -> dict[str, Any]:
    return {
        "height": header.height,
        "block_hash": header.hash().hex(),
        "block_time_ms": header.timestamp_ms,
        "block_time": block_time_text(header.timestamp_ms),
    }


def _failed(args: argparse.Namespace, failure: AuditFailure, passed: list[dict[str, str]]) -> int:
    if args.json:
        print_json(
            {"verified": False, "failed": failure.check, "detail": failure.detail, "passed": passed}
        )
    else:
        print(f"FAILED  {failure.check:<13} {failure.detail}")
    return 1


def _audit_trust(args: argparse.Namespace) -> int:
    genesis = _genesis(args)
    address = resolve_address(args.address, "ADDRESS")
    client = _client(args)
    passed: list[dict[str, str]] = []
    headers: list[BlockHeader] = []

    def report(check: str, detail: str) -> None:
        passed.append({"check": check, "detail": detail})
        if not args.json:
            print(f"ok      {check:<13} {detail}")

    try:
        memory = _Memory(args, genesis)

        def on_header(header: BlockHeader) -> None:
            memory.freshness.check_height(header.height)
            memory.freshness.check_age(header)
            headers.append(header)

        score, positive, negative = audit_trust(
            client, genesis, address, report, _Bar("certificates"), on_header
        )
        memory.accept(headers[-1])
    except AuditFailure as failure:
        return _failed(args, failure, passed)
    verified = _verified_at(headers[-1])
    if args.json:
        print_json(
            {
                "verified": True,
                "address": format_address(address),
                "score": score,
                "positive": positive,
                "negative": negative,
                **verified,
                "passed": passed,
            }
        )
    else:
        print(
            f"VERIFIED {format_address(address)}: score {score_text(score)} "
            f"({score} / 10^9), +{positive} / -{negative} at height {verified['height']}, "
            f"block time {verified['block_time']}"
        )
    return 0


def _audit_chain(args: argparse.Namespace) -> int:
    genesis = _genesis(args)
    client = _client(args)
    passed: list[dict[str, str]] = []

    def report(check: str, detail: str) -> None:
        passed.append({"check": check, "detail": detail})
        if not args.json:
            print(f"ok      {check:<13} {detail}")

    try:
        memory = _Memory(args, genesis)
        head = client.call("sec_status")["height"]
        memory.freshness.check_height(head)
        height = args.to if args.to is not None else head
        header = audit_chain(
            client,
            genesis,
            height,
            _Bar("blocks"),
            report,
            check_validators=args.to is None or args.to >= head,
        )
        memory.accept(header, pinned=args.to is not None)
    except AuditFailure as failure:
        return _failed(args, failure, passed)
    verified = _verified_at(header)
    if args.json:
        print_json(
            {"verified": True, "state_root": header.state_root.hex(), **verified, "passed": passed}
        )
    else:
        print(
            f"VERIFIED blocks 1..{header.height}: certificates, transaction roots and state "
            f"roots; state root {header.state_root.hex()}; height {header.height}, block time "
            f"{verified['block_time']}"
        )
    return 0


# --- parsers ---------------------------------------------------------------------------------


def add_trust_commands(
    verbs: argparse._SubParsersAction[argparse.ArgumentParser],
    what: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: list[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    """Add `tx attest` and `query trust|attestations`."""
    attest = verbs.add_parser(
        "attest", help="buyer/merchant of a completed order: +1 or -1", parents=parents
    )
    attest.add_argument("--order", required=True, metavar="ID", help="order id (hex)")
    attest.add_argument("--subject", required=True, metavar="ADDRESS", help=ADDRESS_HELP)
    attest.add_argument("--value", required=True, type=_value, metavar="+1|-1")
    attest.set_defaults(handler=_guarded(_tx_attest))
    trust = what.add_parser("trust", help="a trust score (proofs verified)", parents=[common])
    trust.add_argument("address", metavar="ADDRESS", help=ADDRESS_HELP)
    trust.set_defaults(handler=_guarded(_query_trust))
    listing = what.add_parser(
        "attestations", help="attestations about or by an account", parents=[common]
    )
    listing.add_argument("--subject", metavar="ADDRESS", help=ADDRESS_HELP)
    listing.add_argument("--attester", metavar="ADDRESS", help=ADDRESS_HELP)
    listing.add_argument("--cursor", type=int, default=0, metavar="N")
    listing.add_argument("--limit", type=int, default=20, metavar="N", help="per page, <= 100")
    listing.add_argument("--all", action="store_true", help="follow next_cursor to the end")
    listing.set_defaults(handler=_guarded(_query_attestations))


def add_audit_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `sec audit trust|chain`."""
    from secnode.cli_client import _common_options

    common = _common_options()
    common.add_argument(
        "--genesis",
        default=str(DEFAULT_GENESIS),
        metavar="FILE",
        help="the genesis the auditor trusts (default: the committed genesis.json)",
    )
    common.add_argument(
        "--state",
        metavar="FILE",
        help="where the auditor remembers the newest height it verified per chain "
        "(default: $SEC_AUDIT_STATE or ~/.sec/audit-state.json); older answers are refused",
    )
    common.add_argument(
        "--max-age",
        type=_seconds,
        metavar="SECONDS",
        help="refuse an answer whose block time is older than this",
    )
    audit = subparsers.add_parser("audit", help="verify against genesis, trusting no node")
    kinds = audit.add_subparsers(dest="audit_kind", metavar="WHAT", required=True)
    trust = kinds.add_parser(
        "trust", help="a trust score: certificates, proofs, recomputed epoch", parents=[common]
    )
    trust.add_argument("address", metavar="ADDRESS", help=ADDRESS_HELP)
    trust.set_defaults(handler=_guarded(_audit_trust))
    chain = kinds.add_parser(
        "chain", help="replay from genesis: certificates, tx roots, state roots", parents=[common]
    )
    chain.add_argument("--to", type=int, metavar="HEIGHT", help="default: the node's height")
    chain.set_defaults(handler=_guarded(_audit_chain))
