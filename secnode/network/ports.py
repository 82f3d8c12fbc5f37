"""Free local ports for the networks that tools and tests start (nemesis, benchmarks, e2e).

Ports are picked below Linux's ephemeral range (32768-60999 by default), where every outbound
socket takes its port: a port probed free in that range can be taken by a node's own dial or a
forwarder's between the probe and the node's bind ("address already in use").
"""

from __future__ import annotations

import random
import socket
from contextlib import ExitStack
from typing import Final

PORT_RANGE: Final = (10_000, 32_000)
"""Where bases are drawn from (the end excluded)."""
ATTEMPTS: Final = 200


def free_port_base(count: int, host: str = "127.0.0.1") -> int:
    """A base port such that base .. base + count - 1 could all be bound on `host` just now;
    OSError if no such run is found in PORT_RANGE."""
    generator = random.Random()
    for _ in range(ATTEMPTS):
        base = generator.randrange(PORT_RANGE[0], PORT_RANGE[1] - count)
        with ExitStack() as sockets:
            try:
                for port in range(base, base + count):
                    probe = sockets.enter_context(socket.socket())
                    probe.bind((host, port))
            except OSError:
                continue
            return base
    raise OSError(f"found no {count} consecutive free ports in {PORT_RANGE} on {host}")
