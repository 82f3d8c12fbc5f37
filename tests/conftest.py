"""Shared test helpers: vectors, a small development chain, hypothesis profiles."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, settings

if TYPE_CHECKING:
    from tests.e2e_cluster import Cluster
    from tests.rpc_node import ServedNode

VECTORS = Path(__file__).parent / "vectors"

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=100
)
settings.register_profile(
    "ci", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=200
)
settings.load_profile("ci" if os.environ.get("CI") else "default")


def load_vectors(name: str) -> Any:
    return json.loads((VECTORS / name).read_text())


@pytest.fixture
def served() -> Iterator[ServedNode]:
    """A development node with its RPC served over HTTP on 127.0.0.1, committing every
    transaction it admits (tests/rpc_node.py); imported here only when a test asks for it."""
    from tests.rpc_node import ServedNode

    node = ServedNode().start()
    yield node
    node.stop()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """Four development validators as real processes on free ports (tests/e2e_cluster.py),
    started and ready; a test file that must change the network first defines its own."""
    from tests.e2e_cluster import Cluster

    with Cluster.create(tmp_path / "net") as network:
        network.start()
        network.wait_ready()
        yield network
