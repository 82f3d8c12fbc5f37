"""`sec tx attest` and `sec query trust|attestations`.

`sec query trust ADDRESS` shows a score and checks its two state proofs under the state root the
node names. The auditor, which trusts no node, is `sec audit trust` (`secnode.cli.audit`).
"""

from __future__ import annotations

import argparse
from typing import Any

from contracts.eigentrust import SCALE
from contracts.epochs import EPOCH_KEY, score_key
from contracts.trust import Attest
from ledger.keys import format_address
from ledger.state_tree import verify_state_proof
from secnode.cli.common import (
    ADDRESS_HELP,
    CommandError,
    connect,
    follow_pages,
    hash_hex,
    print_fields,
    print_json,
    resolve_address,
)
from secnode.cli.submit import submit
from secnode.schema.trust import GetAttestationsResult, TrustScoreResult


def score_text(score: int) -> str:
    """A fixed-point score as a decimal fraction of all trust, exactly (9 decimals)."""
    return f"{score // SCALE}.{score % SCALE:09d}"


def _value(text: str) -> int:
    if text not in ("1", "+1", "-1"):
        raise argparse.ArgumentTypeError(f"must be +1 or -1, got {text!r}")
    return int(text)


# --- sec tx attest, sec query trust|attestations ---------------------------------------------


def _tx_attest(args: argparse.Namespace) -> int:
    order_id = bytes.fromhex(hash_hex(args.order, "--order"))
    body = Attest(order_id, resolve_address(args.subject, "--subject"), args.value)
    return submit(args, body)


def _query_trust(args: argparse.Namespace) -> int:
    address = resolve_address(args.address, "ADDRESS")
    answer = connect(args).call_as(
        "sec_getTrustScore", {"address": format_address(address)}, TrustScoreResult
    )
    root, values, proofs = answer.state_root, answer.values, answer.proofs
    verify_state_proof(root, score_key(address), values.score, proofs.score.to_proof())
    verify_state_proof(root, EPOCH_KEY, values.epoch, proofs.epoch.to_proof())
    if args.json:
        print_json({**answer.model_dump(mode="json"), "verified": True})
        return 0
    epoch = answer.epoch
    print_fields(
        [
            ("address", format_address(answer.address)),
            ("score", f"{score_text(answer.score)} of all trust ({answer.score} / 10^9)"),
            ("attestations", f"+{answer.positive} / -{answer.negative}"),
            (
                "epoch",
                f"{epoch.epoch} (inputs to block {epoch.input_height}, "
                f"committed in block {epoch.committed_height})",
            ),
            ("scores root", epoch.scores_root.hex()),
            ("height", answer.height),
            ("proofs", "score and epoch records verified under the state root"),
            ("audit", "sec audit trust ADDRESS checks the certificate and recomputes the epoch"),
        ]
    )
    return 0


def _query_attestations(args: argparse.Namespace) -> int:
    if (args.subject is None) == (args.attester is None):
        raise CommandError("give exactly one of --subject or --attester")
    role = "subject" if args.subject is not None else "attester"
    address = resolve_address(args.subject or args.attester, f"--{role}")
    client = connect(args)

    def fetch(cursor: int | None) -> GetAttestationsResult:
        params = {role: format_address(address), "cursor": cursor, "limit": args.limit}
        return client.call_as("sec_getAttestations", params, GetAttestationsResult)

    pages = follow_pages(fetch, args.cursor, lambda page: page.next_cursor, follow=args.all)
    entries = [entry for page in pages for entry in page.attestations]
    answer = pages[-1]
    if args.json:
        print_json(answer.model_copy(update={"attestations": entries}).model_dump(mode="json"))
        return 0
    rows: list[tuple[str, Any]] = [
        (role, format_address(answer.address)),
        ("total", answer.total),
    ]
    for entry in entries:
        other = format_address(entry.attester if role == "subject" else entry.subject)
        sign = "+1" if entry.value > 0 else "-1"
        rows.append(
            (f"#{entry.sequence}", f"{sign} {other} order {entry.order_id.hex()} w{entry.weight}")
        )
    if answer.next_cursor is not None:
        rows.append(("next", f"--cursor {answer.next_cursor}"))
    print_fields(rows)
    return 0


# --- sec audit -----------------------------------------------------------------------------


# --- parsers ---------------------------------------------------------------------------------


def add_commands(
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
    attest.set_defaults(handler=_tx_attest)
    trust = what.add_parser("trust", help="a trust score (proofs verified)", parents=[common])
    trust.add_argument("address", metavar="ADDRESS", help=ADDRESS_HELP)
    trust.set_defaults(handler=_query_trust)
    listing = what.add_parser(
        "attestations", help="attestations about or by an account", parents=[common]
    )
    listing.add_argument("--subject", metavar="ADDRESS", help=ADDRESS_HELP)
    listing.add_argument("--attester", metavar="ADDRESS", help=ADDRESS_HELP)
    listing.add_argument("--cursor", type=int, default=0, metavar="N")
    listing.add_argument("--limit", type=int, default=20, metavar="N", help="per page, <= 100")
    listing.add_argument("--all", action="store_true", help="follow next_cursor to the end")
    listing.set_defaults(handler=_query_attestations)
