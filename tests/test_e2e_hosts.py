"""End to end across hosts: four validators, each in its own network namespace with its own
address, joined by veth links to a bridge, agree on a chain.

Loopback hides mistakes a real deployment would hit (a node that listens on 127.0.0.1 only, a
peer address that only resolves locally, a genesis made without `--hosts`). Here every node has
its own network stack: its own 10.77.0.x address, its own loopback, nothing shared, and the
network is made the way an operator makes one for several machines (`sec genesis new --hosts`).
The test's RPC calls and CLI commands run from a fifth, client namespace, so they cross the
links too. All addresses exist only inside namespaces this test creates and deletes.

Needs root (CAP_NET_ADMIN) and iproute2's `ip`; skipped, with the reason, where either is
missing or the kernel refuses namespaces or veth pairs.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from secnode.runtime.config import load_config
from tests.e2e_cluster import Cluster, dev_address

pytestmark = pytest.mark.slow

SUBNET = "10.77.0"
HOSTS = 4
CLIENT_HOST = 100
"""Host number of the client namespace's address."""


@dataclass(frozen=True, slots=True)
class Hosts:
    """The namespaces of one test: a bridge, one per validator, one for the client."""

    bridge: str
    nodes: list[str]
    client: str

    def address(self, index: int) -> str:
        return f"{SUBNET}.{index + 1}"


def ip(*arguments: str) -> None:
    """Run `ip ARGUMENTS`; a refusal skips the test with ip's own words."""
    result = subprocess.run(["ip", *arguments], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.skip(f"cannot build the test network: `ip {' '.join(arguments)}`: {result.stderr}")


@contextmanager
def namespaces() -> Iterator[Hosts]:
    """Create the namespaces and links; delete them all (and so the links) on exit."""
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root (CAP_NET_ADMIN)")
    if shutil.which("ip") is None:
        pytest.skip("iproute2's `ip` is not installed")
    suffix = secrets.token_hex(3)
    hosts = Hosts(
        bridge=f"sec-br-{suffix}",
        nodes=[f"sec-h{i}-{suffix}" for i in range(HOSTS)],
        client=f"sec-cl-{suffix}",
    )
    created: list[str] = []
    try:
        for name in [hosts.bridge, *hosts.nodes, hosts.client]:
            ip("netns", "add", name)
            created.append(name)
            ip("-n", name, "link", "set", "lo", "up")
        ip("-n", hosts.bridge, "link", "add", "br0", "type", "bridge")
        ip("-n", hosts.bridge, "link", "set", "br0", "up")
        members = [(name, index + 1) for index, name in enumerate(hosts.nodes)]
        for port, (name, number) in enumerate([*members, (hosts.client, CLIENT_HOST)]):
            link = f"port{port}"
            ip("-n", name, "link", "add", "eth0", "type", "veth", "peer", "name", link)
            ip("-n", name, "link", "set", link, "netns", hosts.bridge)
            ip("-n", hosts.bridge, "link", "set", link, "master", "br0", "up")
            ip("-n", name, "addr", "add", f"{SUBNET}.{number}/24", "dev", "eth0")
            ip("-n", name, "link", "set", "eth0", "up")
        yield hosts
    finally:
        for name in reversed(created):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


def test_four_validators_on_separate_hosts_agree(tmp_path: Path) -> None:
    with (
        namespaces() as hosts,
        Cluster.create(
            tmp_path / "net",
            hosts=[hosts.address(i) for i in range(HOSTS)],
            namespaces=hosts.nodes,
            client_netns=hosts.client,
        ) as cluster,
    ):
        for node in cluster.nodes:
            peers = load_config(node.home).p2p.peers
            assert all(p.address.startswith(f"{SUBNET}.") for p in peers), peers
        cluster.start()
        cluster.wait_ready(timeout=60)

        merchant = dev_address("merchant1")
        opening = cluster.call(0, "sec_getAccount", {"address": merchant})["balance"]
        senders = ("buyer1", "buyer2", "buyer3", "sharer1")
        outcomes = cluster.transfers([(i, senders[i], "merchant1", 10 + i) for i in range(HOSTS)])
        top = max(outcome["height"] for outcome in outcomes)
        cluster.wait_for_heights(range(HOSTS), top + 5, timeout=30)

        for index in range(HOSTS):
            status = cluster.status(index)
            assert status is not None and status["peers"] == HOSTS - 1, cluster.diagnostics()
        cluster.assert_same_chain(range(HOSTS))
        cluster.assert_state_agrees(range(HOSTS), merchant)
        closing = cluster.call(1, "sec_getAccount", {"address": merchant})["balance"]
        assert closing == opening + sum(10 + i for i in range(HOSTS))
