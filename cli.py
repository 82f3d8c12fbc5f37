"""`sec`: the SEC chain command line (also `python cli.py`).

Human-readable output by default, `--json` for scripts; errors are one line on stderr with a
non-zero exit status. Commands that talk to a node do so only over JSON-RPC. The command groups
live in `secnode.cli` (one module each); this file assembles the parser and owns the one error
handler.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from functools import partial

from ledger.errors import LedgerError
from secnode.cli import (
    audit,
    console,
    demo,
    export,
    groups,
    keys,
    network,
    orders,
    query,
    reviews,
    rpc_tokens,
    snapshot,
    trust,
    tx,
    watch,
)
from secnode.cli.common import CommandError, common_options, tx_options
from secnode.client.rpc import RpcClientError
from secnode.keyfile import KeyFileError

# --- commands whose options are parsed by the package that implements them ---------------------
# Imported only when run, so that `sec tx ...` starts without loading benchmarks or the simulator.


def _bench_ledger(argv: list[str]) -> int:
    from secnode.bench.ledger import main

    return main(argv)


def _bench_p2p(argv: list[str]) -> int:
    from secnode.bench.p2p import main

    return main(argv)


def _bench_cluster(argv: list[str]) -> int:
    from secnode.bench.cluster import main

    return main(argv)


def _bench_trust(argv: list[str]) -> int:
    from secnode.bench.trust import main

    return main(argv)


def _bench_rpc(argv: list[str]) -> int:
    from secnode.bench.rpc_stress import main

    return main(argv)


def _bench_state(argv: list[str]) -> int:
    from secnode.bench.state import main

    return main(argv)


def _bench_txcost(argv: list[str]) -> int:
    from secnode.bench.txcost import main

    return main(argv)


def _sim(argv: list[str]) -> int:
    from consensus.sim.runner import main

    return main(argv)


def _testnet_restart(argv: list[str]) -> int:
    from secnode.network.testnet import restart_main

    return restart_main(argv)


def _nemesis(argv: list[str]) -> int:
    from secnode.nemesis.runner import main

    return main(argv)


DELEGATED: dict[tuple[str, ...], Callable[[list[str]], int]] = {
    ("bench", "ledger"): _bench_ledger,
    ("bench", "p2p"): _bench_p2p,
    ("bench", "cluster"): _bench_cluster,
    ("bench", "trust"): _bench_trust,
    ("bench", "rpc"): _bench_rpc,
    ("bench", "state"): _bench_state,
    ("bench", "txcost"): _bench_txcost,
    ("sim",): _sim,
    ("testnet", "restart"): _testnet_restart,
    ("nemesis",): _nemesis,
}
"""Command prefix -> entry point taking the remaining arguments."""


def _delegated(entry: Callable[[list[str]], int], args: argparse.Namespace) -> int:
    rest: list[str] = args.rest
    return entry(rest)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sec",
        description="SEC chain: permissioned PBFT ledger for social e-commerce.",
        epilog="Run `sec COMMAND --help` for each command's options.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    keys.add_commands(commands)

    bench = commands.add_parser(
        "bench", help="benchmarks: cluster | ledger | p2p | trust | rpc | state | txcost"
    )
    bench_kinds = bench.add_subparsers(dest="bench_kind", metavar="KIND", required=True)
    bench_kinds.add_parser("ledger", help="ledger hot paths as ratios to Ed25519 verify")
    bench_kinds.add_parser("p2p", help="encrypted transport vs a plain asyncio stream")
    bench_kinds.add_parser("cluster", help="4 local validators under load: tx/s, finality, CPU")
    bench_kinds.add_parser("trust", help="one trust epoch: 100k accounts, 1M attestations")
    bench_kinds.add_parser("rpc", help="commit latency p50/p99 quiet vs a hostile RPC client")
    bench_kinds.add_parser("state", help="state tree at 1M keys: restart to root, block cost")
    bench_kinds.add_parser("txcost", help="one node's CPU per transaction, stage by stage")
    commands.add_parser("sim", help="deterministic PBFT fault simulator (sec sim --help)")
    commands.add_parser("nemesis", help="fault cycles on a real 4-node network (--help)")
    network.add_commands(commands)

    common = common_options()
    parents = [common, tx_options()]
    tx_parser = commands.add_parser("tx", help="sign and submit a transaction")
    verbs = tx_parser.add_subparsers(dest="tx_verb", metavar="VERB", required=True)
    query_parser = commands.add_parser("query", help="read from a node (verifying proofs)")
    what = query_parser.add_subparsers(dest="query_what", metavar="WHAT", required=True)
    tx.add_commands(verbs, parents)
    query.add_commands(what, common)
    orders.add_commands(verbs, what, parents, common)
    trust.add_commands(verbs, what, parents, common)
    reviews.add_commands(verbs, what, parents, common)
    groups.add_commands(verbs, what, parents, common)
    audit.add_commands(commands)
    watch.add_commands(commands)
    console.add_commands(commands)
    demo.add_commands(commands)
    export.add_commands(commands)
    rpc_tokens.add_commands(commands)
    snapshot.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    for prefix, entry in DELEGATED.items():
        if tuple(arguments[: len(prefix)]) == prefix:
            namespace = argparse.Namespace(rest=arguments[len(prefix) :])
            return _run(partial(_delegated, entry), namespace)
    parser = build_parser()
    args = parser.parse_args(arguments)
    return _run(args.handler, args)


def _run(handler: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """The CLI's one error handler: a failure the user can act on is one line on stderr and exit
    status 1 (a node's answer of the wrong shape is a `MalformedAnswer`, an RpcClientError naming
    the node, the method and the field); Ctrl-C is exit status 130. Anything else is a bug and
    keeps its traceback."""
    try:
        return handler(args)
    except (CommandError, RpcClientError, KeyFileError, LedgerError) as exc:
        line = " ".join(str(exc).split())
    except KeyboardInterrupt:
        print("sec: interrupted", file=sys.stderr)
        return 130
    print(f"sec: error: {line}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
