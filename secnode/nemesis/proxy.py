"""The link layer of the nemesis: one TCP forwarder per directed pair of nodes.

Node A's configured address for peer B is the listener of link (A, B), which forwards to B's real
P2P port; so every P2P connection between two nodes, whichever side dialled, passes through one of
the two links of that pair. The P2P transport is encrypted and authenticated end to end, so a
link can only forward bytes or drop them: `cut(a, b)` aborts every live connection of both links
of the pair and refuses new ones until `heal()`.

The forwarders run on an asyncio loop in one daemon thread that this object owns; the public
methods are called from the runner's thread and wait for the loop to carry them out. Memory is
bounded: each connection holds at most one read chunk per direction (the writer is drained before
the next read).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

CHUNK: Final = 64 * 1024
CONNECT_TIMEOUT_S: Final = 2.0
CALL_TIMEOUT_S: Final = 10.0

T = TypeVar("T")


@dataclass(slots=True)
class Link:
    """Forwarder from node `source` to node `target`'s P2P listener."""

    source: int
    target: int
    target_port: int
    port: int = 0
    """Our listening port (what `source` dials for `target`)."""
    cut: bool = False
    writers: set[asyncio.StreamWriter] = field(default_factory=set)
    """Both ends of every live connection, to abort on a cut."""
    server: asyncio.Server | None = None


class LinkLayer:
    """Listeners for every directed link; cut and heal node pairs (see the module docstring)."""

    def __init__(self, host: str, p2p_ports: list[int]) -> None:
        self.host = host
        self.links = {
            (a, b): Link(a, b, p2p_ports[b])
            for a in range(len(p2p_ports))
            for b in range(len(p2p_ports))
            if a != b
        }
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> None:
        """Bind every listener (on a free port) and start forwarding."""
        self._thread.start()
        self._call(self._listen())

    def port(self, source: int, target: int) -> int:
        return self.links[(source, target)].port

    def cut(self, a: int, b: int) -> None:
        """Drop every connection between nodes a and b and refuse new ones."""
        self._call(self._set_cut(a, b, cut=True))

    def heal(self) -> None:
        """Let every link forward again."""
        for a, b in self.links:
            self._call(self._set_cut(a, b, cut=False))

    def cut_pairs(self) -> list[tuple[int, int]]:
        return sorted((a, b) for (a, b), link in self.links.items() if link.cut and a < b)

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        with contextlib.suppress(Exception):  # closing is best effort; the thread is a daemon
            self._call(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=CALL_TIMEOUT_S)
        if not self._thread.is_alive():
            self._loop.close()

    # --- on the loop -------------------------------------------------------------------------

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(CALL_TIMEOUT_S)

    async def _listen(self) -> None:
        for link in self.links.values():

            async def accept(
                reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: Link = link
            ) -> None:
                await self._forward(link, reader, writer)

            link.server = await asyncio.start_server(accept, self.host, 0)
            link.port = link.server.sockets[0].getsockname()[1]

    async def _set_cut(self, a: int, b: int, *, cut: bool) -> None:
        for key in ((a, b), (b, a)):
            link = self.links[key]
            link.cut = cut
            if cut:
                for writer in list(link.writers):
                    writer.transport.abort()
                link.writers.clear()

    async def _close(self) -> None:
        for link in self.links.values():
            if link.server is not None:
                link.server.close()
            for writer in list(link.writers):
                writer.transport.abort()
        for link in self.links.values():
            if link.server is not None:
                await link.server.wait_closed()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _forward(
        self, link: Link, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if link.cut:
            writer.transport.abort()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, link.target_port), CONNECT_TIMEOUT_S
            )
        except (OSError, TimeoutError):
            writer.transport.abort()  # target down: the dialler sees a dropped connection
            return
        if link.cut:  # cut while we were connecting
            writer.transport.abort()
            upstream_writer.transport.abort()
            return
        link.writers.update((writer, upstream_writer))
        try:
            await asyncio.gather(_pump(reader, upstream_writer), _pump(upstream_reader, writer))
        finally:
            link.writers.discard(writer)
            link.writers.discard(upstream_writer)
            writer.transport.abort()
            upstream_writer.transport.abort()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until either side ends; then end the other (the pair dies as one)."""
    try:
        while chunk := await reader.read(CHUNK):
            writer.write(chunk)
            await writer.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.transport.abort()
