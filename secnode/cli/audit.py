"""`sec audit trust|chain`: the auditor's commands, trusting nothing but the genesis file.

`sec audit trust ADDRESS` checks the header, the certificates from genesis, both proofs, every page
of the epoch's inputs, and recomputes the epoch (`secnode.client.audit`). It prints each check,
then VERIFIED, or FAILED with the check that failed (exit status 1). `sec audit chain` replays
every block from genesis, verifying certificates, transaction roots and state roots, with a
progress bar on stderr.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Final

from ledger.blocks import BlockHeader
from ledger.genesis import Genesis, load_genesis
from ledger.keys import (
    format_address,
)
from secnode.cli.common import ADDRESS_HELP, common_options, connect, print_json, resolve_address
from secnode.cli.trust import score_text
from secnode.client.audit import AuditFailure, audit_chain, audit_trust
from secnode.client.audit_freshness import (
    Freshness,
    block_time_text,
    default_state_path,
    load_state,
    save_state,
)
from secnode.schema import models as m

DEFAULT_GENESIS: Final = Path(__file__).resolve().parents[2] / "genesis.json"


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


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
    """The auditor's state file around one run (secnode.client.audit_freshness)."""

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
    client = connect(args)
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
    client = connect(args)
    passed: list[dict[str, str]] = []

    def report(check: str, detail: str) -> None:
        passed.append({"check": check, "detail": detail})
        if not args.json:
            print(f"ok      {check:<13} {detail}")

    try:
        memory = _Memory(args, genesis)
        head = client.call_as("sec_status", None, m.StatusResult).height
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


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `sec audit trust|chain`."""
    common = common_options()
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
    trust.set_defaults(handler=_audit_trust)
    chain = kinds.add_parser(
        "chain", help="replay from genesis: certificates, tx roots, state roots", parents=[common]
    )
    chain.add_argument("--to", type=int, metavar="HEIGHT", help="default: the node's height")
    chain.set_defaults(handler=_audit_chain)
