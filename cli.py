"""`sec`: the SEC chain command line (also `python cli.py`).

Human-readable output by default, `--json` for scripts; errors are one line on stderr with a
non-zero exit status. Commands that talk to a node do so only over JSON-RPC.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ledger.errors import LedgerError
from ledger.keys import PrivateKey, format_address, read_key_file, write_key_file


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit status 1."""


def _emit(args: argparse.Namespace, human: str, data: dict[str, Any]) -> None:
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2, sort_keys=True))
    else:
        print(human)


# --- keys ----------------------------------------------------------------------------------------


def cmd_keys_new(args: argparse.Namespace) -> int:
    genesis_hash = None
    if args.genesis:
        from ledger.genesis import load_genesis

        genesis_hash = load_genesis(Path(args.genesis)).document_hash()
    key = PrivateKey.generate()
    path = Path(args.out)
    write_key_file(path, key, overwrite=args.force, genesis_hash=genesis_hash)
    address = format_address(key.address)
    data = {"path": str(path), "address": address, "public_key": key.public_key.hex()}
    human = f"wrote {path} (mode 0600)\naddress     {address}\npublic key  {key.public_key.hex()}"
    if genesis_hash is not None:
        data["genesis"] = genesis_hash.hex()
        human += f"\nfor genesis {genesis_hash.hex()}"
    _emit(args, human, data)
    return 0


def cmd_keys_show(args: argparse.Namespace) -> int:
    key = read_key_file(Path(args.path))
    address = format_address(key.address)
    _emit(
        args,
        f"address     {address}\npublic key  {key.public_key.hex()}",
        {"address": address, "public_key": key.public_key.hex()},
    )
    return 0


# --- networks and nodes ------------------------------------------------------------------------


def cmd_genesis_new(args: argparse.Namespace) -> int:
    from secnode.network.home import create_network, new_chain_id

    hosts = args.hosts.split(",") if args.hosts else None
    bases = {
        name: value
        for name, value in (("p2p_base", args.p2p_port_base), ("rpc_base", args.rpc_port_base))
        if value is not None
    }
    plans = create_network(
        Path(args.out),
        args.validators,
        dev=args.dev,
        hosts=hosts,
        chain_id=args.chain_id or new_chain_id(),  # a network of its own: no replay between two
        **bases,
    )
    nodes = [
        {
            "name": p.name,
            "p2p": p.p2p_address,
            "rpc": p.rpc_url,
            "home": str(Path(args.out) / p.name),
        }
        for p in plans
    ]
    lines = [f"wrote {args.out}/genesis.json, account keys in {args.out}/accounts/"]
    lines += [f"  {n['name']}: home {n['home']}  p2p {n['p2p']}  rpc {n['rpc']}" for n in nodes]
    lines.append(f"start each with: sec node start --home {args.out}/node0")
    _emit(args, "\n".join(lines), {"genesis": f"{args.out}/genesis.json", "nodes": nodes})
    return 0


def cmd_node_start(args: argparse.Namespace) -> int:
    from secnode.runtime.node import serve

    return serve(Path(args.home))


def cmd_testnet(args: argparse.Namespace) -> int:
    from secnode.network.testnet import run

    if args.nodes < 1:
        raise CommandError("--nodes must be at least 1")
    bases = {
        name: value
        for name, value in (("p2p_base", args.p2p_port_base), ("rpc_base", args.rpc_port_base))
        if value is not None
    }
    return run(Path(args.dir), args.nodes, restart_crashed=args.restart_crashed, **bases)


# --- delegations to package entry points ----------------------------------------------------------


def _delegate(target: str) -> Callable[[argparse.Namespace], int]:
    """Run `module:function(argv)` with the remaining arguments (keeps startup fast)."""

    def run(args: argparse.Namespace) -> int:
        module_name, function_name = target.split(":")
        module = __import__(module_name, fromlist=[function_name])
        result: int = getattr(module, function_name)(list(args.rest))
        return result

    return run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sec",
        description="SEC chain: permissioned PBFT ledger for social e-commerce.",
        epilog="Run `sec COMMAND --help` for each command's options.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    keys = commands.add_parser("keys", help="create and inspect Ed25519 key files")
    key_commands = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    new = key_commands.add_parser("new", help="generate a key file (mode 0600)")
    new.add_argument("--out", required=True, help="path of the key file to write")
    new.add_argument("--force", action="store_true", help="overwrite an existing file")
    new.add_argument(
        "--genesis",
        metavar="FILE",
        help="genesis.json of the network the key is for: recorded, and `sec tx` refuses to "
        "sign with the key for a node of another network",
    )
    new.add_argument("--json", action="store_true", help="machine-readable output")
    new.set_defaults(handler=cmd_keys_new)
    show = key_commands.add_parser("show", help="print a key file's address and public key")
    show.add_argument("path", help="key file")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(handler=cmd_keys_show)

    bench = commands.add_parser("bench", help="benchmarks: cluster | ledger | p2p | trust")
    bench_kinds = bench.add_subparsers(dest="bench_kind", metavar="KIND", required=True)
    bench_kinds.add_parser("ledger", help="ledger hot paths as ratios to Ed25519 verify")
    bench_kinds.add_parser("p2p", help="encrypted transport vs a plain asyncio stream")
    bench_kinds.add_parser("cluster", help="4 local validators under load: tx/s, finality, CPU")
    bench_kinds.add_parser("trust", help="one trust epoch: 100k accounts, 1M attestations")
    bench_kinds.add_parser("rpc", help="commit latency p50/p99 quiet vs a hostile RPC client")
    commands.add_parser("sim", help="deterministic PBFT fault simulator (sec sim --help)")
    genesis = commands.add_parser("genesis", help="create a network: genesis + node homes")
    genesis_commands = genesis.add_subparsers(
        dest="genesis_command", metavar="ACTION", required=True
    )
    new_network = genesis_commands.add_parser(
        "new",
        help="write DIR/genesis.json, one node home per validator and account keys",
        description="Create a new network. For nodes on separate machines pass --hosts with one "
        "HOST or HOST:P2P_PORT per validator; then copy DIR/nodeI to machine I.",
    )
    new_network.add_argument("--validators", type=int, default=4, help="number of validators")
    new_network.add_argument("--out", required=True, help="directory to create")
    new_network.add_argument("--hosts", help="comma-separated HOST[:PORT] per validator")
    new_network.add_argument(
        "--chain-id", help="chain id (default: sec-<8 random hex digits>, new for each network)"
    )
    new_network.add_argument(
        "--p2p-port-base",
        type=int,
        metavar="PORT",
        help="P2P port of node0; on one machine node i gets PORT+i (default 26600)",
    )
    new_network.add_argument(
        "--rpc-port-base",
        type=int,
        metavar="PORT",
        help="RPC port of node0; on one machine node i gets PORT+i (default 8545)",
    )
    new_network.add_argument(
        "--dev", action="store_true", help="use the PUBLIC development keys (never for value)"
    )
    new_network.add_argument("--json", action="store_true", help="machine-readable output")
    new_network.set_defaults(handler=cmd_genesis_new)

    node = commands.add_parser("node", help="run a node")
    node_commands = node.add_subparsers(dest="node_command", metavar="ACTION", required=True)
    start = node_commands.add_parser("start", help="run the node in HOME until SIGINT/SIGTERM")
    start.add_argument("--home", required=True, help="node home (config.toml, node.key, ...)")
    start.set_defaults(handler=cmd_node_start)

    testnet = commands.add_parser(
        "testnet",
        help="the one-command local network (4 validator processes on LevelDB)",
        description="Start N validators as separate processes from the committed development "
        "genesis (public keys!). A node that ends is reported and the others keep running; "
        "`sec testnet restart NODE [--dir DIR]` (re)starts one from another terminal. "
        "Ctrl-C stops them; running again resumes the same chain.",
    )
    testnet.add_argument("--nodes", type=int, default=4, help="validators (default 4)")
    testnet.add_argument("--dir", default="testnet", help="network directory (default ./testnet)")
    testnet.add_argument(
        "--restart-crashed", action="store_true", help="start again a node that ran and ended"
    )
    testnet.add_argument(
        "--p2p-port-base", type=int, help="first P2P port (default 26600; new DIR only)"
    )
    testnet.add_argument(
        "--rpc-port-base", type=int, help="first RPC port (default 8545; new DIR only)"
    )
    testnet.set_defaults(handler=cmd_testnet)

    from secnode.cli.common import add_client_commands  # sec tx ..., sec query ...

    add_client_commands(commands)

    from secnode.cli.trust import add_audit_commands  # sec audit trust|chain

    add_audit_commands(commands)
    return parser


DELEGATED: dict[tuple[str, ...], str] = {
    ("bench", "ledger"): "secnode.bench.ledger:main",
    ("bench", "p2p"): "secnode.bench.p2p:main",
    ("bench", "cluster"): "secnode.bench.cluster:main",
    ("bench", "trust"): "secnode.bench.trust:main",
    ("bench", "rpc"): "secnode.bench.rpc_stress:main",
    ("sim",): "consensus.sim.runner:main",
    ("testnet", "restart"): "secnode.network.testnet:restart_main",
    ("nemesis",): "secnode.nemesis.runner:main",
}
"""Commands whose options are parsed by the package that implements them."""


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    for prefix, target in DELEGATED.items():
        if tuple(arguments[: len(prefix)]) == prefix:
            namespace = argparse.Namespace(rest=arguments[len(prefix) :])
            return _run(_delegate(target), namespace)
    parser = build_parser()
    args = parser.parse_args(arguments)
    return _run(args.handler, args)


def _run(handler: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    try:
        status: int = handler(args)
    except (CommandError, LedgerError) as exc:
        print(f"sec: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("sec: interrupted", file=sys.stderr)
        return 130
    return status


if __name__ == "__main__":
    sys.exit(main())
