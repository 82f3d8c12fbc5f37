"""`sec console [--node URL] [--listen HOST:PORT] [--genesis FILE]`: serve the web console from
this machine, reading any node (secnode.console.local; docs/console.md)."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from ledger.genesis import load_genesis
from secnode.cli.common import CommandError
from secnode.client.rpc import DEFAULT_RPC_URL
from secnode.console import LOCAL_LISTEN
from secnode.console.bundle import ConsoleSettings
from secnode.runtime.config import split_host_port


def _listen_address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise CommandError(f"--listen {text!r} is not HOST:PORT (e.g. {LOCAL_LISTEN})")
    return split_host_port(text)


async def _serve(settings: ConsoleSettings, host: str, port: int, genesis_hash: str | None) -> None:
    from secnode.console.local import check_node, console_server, page_url

    async with console_server(settings, host, port) as bound:
        url = page_url(host, bound)
        print(f"console: {url}/  (open it in a browser)", flush=True)
        genesis = (
            f"pinned (hash {genesis_hash})" if genesis_hash is not None else "taken from the node"
        )
        print(f"reading node {settings.node}; genesis {genesis}", flush=True)
        check = await check_node(settings.node, url, genesis_hash)
        print(check.line, flush=True)
        print("Ctrl-C stops it.", flush=True)
        await asyncio.Event().wait()


def _console(args: argparse.Namespace) -> int:
    from secnode.console.local import node_base_url

    node = node_base_url(args.node)
    host, port = _listen_address(args.listen)
    document, genesis_hash = None, None
    if args.genesis:
        genesis = load_genesis(Path(args.genesis))  # validated as a node validates it
        document = genesis.model_dump(mode="json")  # the form whose hash is the genesis hash
        genesis_hash = genesis.document_hash().hex()
    settings = ConsoleSettings(node=node, genesis=document, pinned=document is not None)
    try:
        asyncio.run(_serve(settings, host, port, genesis_hash))
    except KeyboardInterrupt:
        print("stopped.")
    return 0


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `sec console`."""
    console = commands.add_parser(
        "console",
        help="serve the web console from this machine, reading any node",
        description="Serve the web console (blocks, orders, accounts, trust; every shown "
        "record verified in the browser) from this machine and point it at a node. Unlike the "
        "console a node serves itself, the checking code comes from your own installation. "
        "The node must allow this console's origin in its [rpc] cors_origins (sec testnet "
        f"allows http://{LOCAL_LISTEN}); a line says what to add if it does not.",
    )
    console.add_argument(
        "--node",
        default=DEFAULT_RPC_URL,
        metavar="URL",
        help=f"the node's RPC URL, http(s)://host:port (default {DEFAULT_RPC_URL})",
    )
    console.add_argument(
        "--listen",
        default=LOCAL_LISTEN,
        metavar="HOST:PORT",
        help=f"where to serve the console (default {LOCAL_LISTEN}; port 0: any free port)",
    )
    console.add_argument(
        "--genesis",
        metavar="FILE",
        help="your own copy of the network's genesis.json: the console then trusts only the "
        "validators it names instead of the genesis the node sends (recommended)",
    )
    console.set_defaults(handler=_console)
