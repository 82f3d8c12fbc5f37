"""End to end: a node key outside the genesis is refused at the P2P handshake, and garbage on
the P2P and RPC ports of every validator leaves the network serving and committing.

Real node processes (tests/e2e_cluster.py); the attackers are raw TCP sockets, a scripted peer
that speaks the real handshake (tests.p2p_testing.ScriptedPeer), and a whole node started from a
fresh key with every validator as its peer.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
from contextlib import ExitStack
from pathlib import Path

import pytest

from ledger.keys import PrivateKey
from p2p.errors import HandshakeAborted
from p2p.handshake import InitiatorHandshake
from secnode.network.devnet import DEV_CHAIN_ID, validator_key
from secnode.runtime.config import NodeConfig, P2PSection, PeerConfig, RPCSection, render_config
from tests.e2e_cluster import Cluster, free_port_base, iter_log_lines, run_cli, wait_until
from tests.p2p_testing import ScriptedPeer

pytestmark = pytest.mark.slow

ALL = (0, 1, 2, 3)
IDLE_CONNECTIONS = 70
"""Silent connections held open on each P2P port: more than the 64 pending handshakes a host
admits (p2p Tuning.max_pending_handshakes), so the cap itself is exercised."""
SOCKET_TIMEOUT_S = 5.0


def make_intruder_home(cluster: Cluster, home: Path) -> tuple[str, int, int]:
    """A node home with a fresh key (`sec keys new`), the network's genesis and every validator
    as a peer. Returns its address, P2P port and RPC port."""
    created = run_cli("keys", "new", "--plain", "--out", str(home / "node.key"), "--json")
    address = json.loads(created.stdout)["address"]
    shutil.copyfile(cluster.directory / "genesis.json", home / "genesis.json")
    genesis = json.loads((cluster.directory / "genesis.json").read_text())
    keys = {v["name"]: v["public_key"] for v in genesis["validators"]}
    peers = [
        PeerConfig(name=n.name, public_key=keys[n.name], address=f"127.0.0.1:{n.p2p_port}")
        for n in cluster.nodes
    ]
    p2p_port = free_port_base(2)
    config = NodeConfig(
        name="intruder",
        p2p=P2PSection(listen=f"127.0.0.1:{p2p_port}", peers=peers),
        rpc=RPCSection(listen=f"127.0.0.1:{p2p_port + 1}"),
    )
    (home / "config.toml").write_text(render_config(config))
    return address, p2p_port, p2p_port + 1


def test_peer_with_unknown_node_key_is_refused(cluster: Cluster, tmp_path: Path) -> None:
    home = tmp_path / "intruder"
    address, p2p_port, rpc_port = make_intruder_home(cluster, home)
    intruder = cluster.add_node(home, f"http://127.0.0.1:{rpc_port}", p2p_port)
    refusal = f"UnknownPeer: node key {address} is not on the allowlist"

    def refused_by_every_validator() -> bool:
        return all(
            any(refusal in line for line in iter_log_lines(node.log_path)) for node in cluster.nodes
        )

    wait_until(
        refused_by_every_validator, 30, f"every validator to log {refusal!r}", cluster.diagnostics
    )
    start = max(h for h in cluster.heights().values() if h is not None)
    cluster.wait_for_heights(ALL, start + 10, timeout=30)
    status = cluster.node_status(intruder)
    assert status is not None, cluster.diagnostics()
    assert (status["height"], status["peers"]) == (0, 0), status
    for index in ALL:
        validator = cluster.status(index)
        assert validator is not None
        assert validator["peers"] == 3, validator

    asyncio.run(check_handshakes(cluster, p2p_port))


async def check_handshakes(cluster: Cluster, intruder_port: int) -> None:
    """A scripted peer with a fresh key is refused by every validator; the same code with a
    genesis validator's key completes the handshake (with the intruder, which allowlists the
    genesis validators), so the refusals are about the key."""
    stranger = PrivateKey.generate()
    # `sec genesis new` gives every network its own chain id (not DEV_CHAIN_ID).
    chain_id = json.loads((cluster.directory / "genesis.json").read_text())["chain_id"]
    for node in cluster.nodes:
        with pytest.raises(HandshakeAborted, match="instead of confirming"):
            await ScriptedPeer.connect(node.p2p_port, stranger, chain_id)
    peer = await ScriptedPeer.connect(intruder_port, validator_key("node3"), chain_id)
    await peer.close()


def p2p_garbage() -> list[bytes]:
    """What a confused or hostile client might write to a P2P port before closing."""
    hello = InitiatorHandshake(
        PrivateKey.generate(), DEV_CHAIN_ID, frozenset(), None
    ).first_message()
    return [
        b"",
        os.urandom(4096),
        b"\xff\xff" + os.urandom(300),  # a 64 KiB handshake message (cap 1 KiB), then silence
        b"\x00\x00",  # an empty handshake message
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        len(hello).to_bytes(2, "big") + hello + b"\x00\x40" + os.urandom(64),  # bad message 3
        len(hello).to_bytes(2, "big") + hello[:-1],  # a valid hello cut short
    ]


RPC_GARBAGE: list[tuple[bytes, bytes | None]] = [
    (b"GARBAGE\r\n\r\n", b" 400 "),
    (
        b"POST /rpc HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 10000000000\r\n\r\n{",
        b" 413 ",
    ),
    (
        b"POST /rpc HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 9\r\nConnection: close\r\n\r\n{nonsense",
        b'"code":-32700',
    ),
    (b"POST /rpc HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Flood: " + b"a" * 100_000 + b"\r\n\r\n", None),
    (
        b"POST /rpc HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b" 400 ",
    ),
    (  # half a request: the body never comes
        b"POST /rpc HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n" + b'{"jsonrpc"',
        None,
    ),
    (os.urandom(2048), None),
]
"""(bytes written to an RPC port, what the answer must contain, or None to just close)."""


def send_and_close(port: int, data: bytes, expect: bytes | None) -> None:
    """Write `data`, then (if `expect`) read until the answer contains it; then hang up."""
    with socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT_S) as connection:
        try:
            connection.sendall(data)
        except ConnectionError:
            return  # the node hung up mid-way: that is an allowed answer to garbage
        if expect is None:
            return
        answer = read_answer(connection, expect)
        status_line = answer.split(b"\r\n", 1)[0]
        assert expect in answer, f"port {port}: sent {data[:80]!r}..., got {answer[:300]!r}"
        assert b" 500 " not in status_line, answer[:300]


def read_answer(connection: socket.socket, expect: bytes) -> bytes:
    """What the node writes until `expect` shows up, it closes, or SOCKET_TIMEOUT_S passes."""
    answer = b""
    try:
        while expect not in answer and (chunk := connection.recv(65536)):
            answer += chunk
    except (TimeoutError, ConnectionError):
        pass
    return answer


class TracebackLogged(AssertionError):
    """A node logged a traceback."""


def assert_no_tracebacks(cluster: Cluster, after: str) -> None:
    for node in cluster.nodes:
        if any("Traceback" in line for line in iter_log_lines(node.log_path)):
            raise TracebackLogged(
                f"{node.name} logged a traceback {after}\n{cluster.diagnostics()}"
            )


def test_garbage_on_p2p_and_rpc_ports_leaves_every_node_serving(cluster: Cluster) -> None:
    for node in cluster.nodes:
        for data in p2p_garbage():
            send_and_close(node.p2p_port, data, None)
    assert_no_tracebacks(cluster, "after garbage on its P2P port")
    for node in cluster.nodes:
        for data, expect in RPC_GARBAGE:
            send_and_close(rpc_port(cluster, node.index), data, expect)

    with ExitStack() as idle:
        for node in cluster.nodes:
            for _ in range(IDLE_CONNECTIONS):
                address = ("127.0.0.1", node.p2p_port)
                idle.enter_context(socket.create_connection(address, SOCKET_TIMEOUT_S))
        start = max(h for h in cluster.heights().values() if h is not None)
        cluster.wait_for_heights(ALL, start + 10, timeout=30)
        cluster.transfer(2, "buyer1", "merchant1", 3)

    for node in cluster.nodes:
        assert node.is_running(), f"{node.name} exited\n{cluster.diagnostics()}"
        status = cluster.status(node.index)
        assert status is not None and status["peers"] == 3, cluster.diagnostics()
    cluster.assert_same_chain(ALL)


def rpc_port(cluster: Cluster, index: int) -> int:
    return int(cluster.nodes[index].rpc_url.rpartition(":")[2])


def test_garbage_on_the_rpc_port_is_logged_without_a_traceback(tmp_path: Path) -> None:
    """Bad requests are the client's fault: at most a one-line note, never a traceback (a
    stream of them would otherwise flood the log at ERROR)."""
    with Cluster.create(tmp_path / "net", validators=1) as single:
        single.start()
        single.wait_ready()
        for data, expect in RPC_GARBAGE:
            send_and_close(rpc_port(single, 0), data, expect)
        assert single.status(0) is not None  # every request above has been handled
        assert_no_tracebacks(single, "after garbage on its RPC port")
