"""`sec genesis new`, `sec node start` and `sec testnet`: creating a network and running nodes."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from secnode.cli.common import CommandError, emit, passphrase_options
from secnode.cli.keys import scrypt_option, scrypt_params

if TYPE_CHECKING:
    from secnode.network.keylist import ValidatorKey


def _genesis_new(args: argparse.Namespace) -> int:
    from secnode.network.home import create_network, new_chain_id

    hosts = args.hosts.split(",") if args.hosts else None
    operator_keys = _operator_keys(args)
    validators = args.validators if args.validators is not None else 4
    if operator_keys is not None:
        if args.validators is not None and args.validators != len(operator_keys):
            raise CommandError(
                f"--validators {args.validators}, yet {len(operator_keys)} validator keys are "
                "listed: leave out --validators, the list decides"
            )
        validators = len(operator_keys)
    sealing = _sealing(args)
    bases = {
        name: value
        for name, value in (("p2p_base", args.p2p_port_base), ("rpc_base", args.rpc_port_base))
        if value is not None
    }
    plans = create_network(
        Path(args.out),
        validators,
        dev=args.dev,
        operator_keys=operator_keys,
        hosts=hosts,
        console=args.console,
        chain_id=args.chain_id or new_chain_id(),  # a network of its own: no replay between two
        **bases,
        **sealing,
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
    if sealing:
        lines.append("every key file is encrypted with the passphrase given")
    lines += [f"  {n['name']}: home {n['home']}  p2p {n['p2p']}  rpc {n['rpc']}" for n in nodes]
    if operator_keys is None:
        lines.append(f"start each with: sec node start --home {args.out}/{plans[0].name}")
    else:  # the homes lack node.key: each operator adds the one they exported the key of
        lines.append(
            f"no node.key was written: copy {args.out}/NAME/ to NAME's machine, put NAME's own "
            "node.key in it, then: sec node start --home DIR"
        )
    emit(args, "\n".join(lines), {"genesis": f"{args.out}/genesis.json", "nodes": nodes})
    return 0


def _operator_keys(args: argparse.Namespace) -> list[ValidatorKey] | None:
    """The validators of --validators-file and --validator, in that order (None if neither)."""
    from secnode.network.keylist import (
        check_unique,
        parse_validator_option,
        read_key_list,
    )

    if args.validators_file is None and not args.validator:
        return None
    if args.dev:
        raise CommandError(
            "--dev with a validator key list: development keys are derived, not listed"
        )
    listed = [] if args.validators_file is None else read_key_list(Path(args.validators_file))
    listed += [parse_validator_option(value) for value in args.validator]
    return check_unique(listed, "the validator key list")


def _sealing(args: argparse.Namespace) -> dict[str, Any]:
    """`create_network`'s passphrase and scrypt cost for --encrypt (nothing without it)."""
    if not args.encrypt:
        if args.passphrase_file is not None:
            raise CommandError(
                "--passphrase-file needs --encrypt (sec genesis new writes plain keys)"
            )
        return {}
    if args.dev:
        raise CommandError(
            "--encrypt with --dev: development keys are public, a passphrase hides nothing"
        )
    from secnode.passphrase import PassphraseSource

    scrypt = scrypt_params(args)
    file = None if args.passphrase_file is None else Path(args.passphrase_file)
    return {"passphrase": PassphraseSource(file=file).new(Path(args.out)), "scrypt": scrypt}


def _node_start(args: argparse.Namespace) -> int:
    from secnode.passphrase import PassphraseSource
    from secnode.runtime.node import serve

    file = None if args.passphrase_file is None else Path(args.passphrase_file)
    return serve(
        Path(args.home),
        PassphraseSource(file=file).existing,
        args.log_format,
        args.log_level,
        state_sync=args.state_sync,
    )


def _testnet(args: argparse.Namespace) -> int:
    from secnode.network.testnet import run

    if args.nodes < 1:
        raise CommandError("--nodes must be at least 1")
    bases = {
        name: value
        for name, value in (("p2p_base", args.p2p_port_base), ("rpc_base", args.rpc_port_base))
        if value is not None
    }
    return run(Path(args.dir), args.nodes, restart_crashed=args.restart_crashed, **bases)


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `sec genesis`, `sec node` and `sec testnet`."""
    genesis = commands.add_parser("genesis", help="create a network: genesis + node homes")
    genesis_commands = genesis.add_subparsers(
        dest="genesis_command", metavar="ACTION", required=True
    )
    new_network = genesis_commands.add_parser(
        "new",
        help="write DIR/genesis.json, one node home per validator and account keys",
        description="Create a new network. For nodes on separate machines pass --hosts with one "
        "HOST or HOST:P2P_PORT per validator; then copy DIR/nodeI to machine I. When each "
        "operator keeps their own node key, list the public keys instead (--validators-file, "
        "--validator): the homes are named after the validators and hold no node.key.",
    )
    new_network.add_argument(
        "--validators", type=int, help="number of validators (default 4, or the listed keys)"
    )
    new_network.add_argument(
        "--validators-file",
        metavar="FILE",
        help="the validators' public keys, as `sec keys export-public` prints them: one "
        '{"name", "public_key"} object per line, or a JSON array; node homes get no node.key',
    )
    new_network.add_argument(
        "--validator",
        action="append",
        default=[],
        metavar="NAME=HEX",
        help="one more validator by name and public key (repeatable; after --validators-file)",
    )
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
    new_network.add_argument(
        "--console",
        action="store_true",
        help="every node serves the web console at its RPC address ([rpc] console = true)",
    )
    new_network.add_argument(
        "--encrypt",
        action="store_true",
        help="seal every key file written with one passphrase (asked twice, or --passphrase-file)",
    )
    passphrase_options(new_network)
    scrypt_option(new_network)
    new_network.add_argument("--json", action="store_true", help="machine-readable output")
    new_network.set_defaults(handler=_genesis_new)

    node = commands.add_parser("node", help="run a node")
    node_commands = node.add_subparsers(dest="node_command", metavar="ACTION", required=True)
    start = node_commands.add_parser(
        "start",
        help="run the node in HOME until SIGINT/SIGTERM",
        description="Run the node in HOME. An encrypted node.key is opened with the passphrase "
        "from --passphrase-file, SEC_KEY_PASSPHRASE_FILE, SEC_KEY_PASSPHRASE or a prompt.",
    )
    start.add_argument("--home", required=True, help="node home (config.toml, node.key, ...)")
    passphrase_options(start)
    start.add_argument(
        "--log-format",
        choices=("text", "json"),
        help="text: human lines (default); json: one JSON object per line (config [log] format)",
    )
    start.add_argument(
        "--log-level",
        metavar="SPEC",
        help="LEVEL and/or COMPONENT=LEVEL, comma-separated, e.g. info,consensus=debug,p2p=warning "
        "(components: consensus p2p rpc node app trust store keys statesync; over config.toml "
        "[log])",
    )
    start.add_argument(
        "--state-sync",
        action="store_true",
        help="if HOME has no chain data yet, join from a snapshot its [p2p] peers serve (checked "
        "from the genesis) instead of replaying every block (config [statesync] join)",
    )
    start.set_defaults(handler=_node_start)

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
    testnet.set_defaults(handler=_testnet)
