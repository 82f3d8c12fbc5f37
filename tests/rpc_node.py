"""A real in-process `NodeView` for RPC and CLI tests, without consensus.

`RpcTestNode` is a development chain on a `MemoryStore` with a real mempool. `submit` is mempool
admission; `commit_pending()` plays the consensus layer: it builds a block from the mempool,
certifies it with commit signatures of three of the four dev validators, commits it to the
store and state, evicts the mempool and wakes `wait_committed` callers. With `auto_commit`
every admitted transaction is committed on the next loop iteration.

`ServedNode` runs such a node and the real aiohttp app on 127.0.0.1:0 in a background thread
with its own event loop, for code that calls the node synchronously (the CLI).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
from aiohttp import web

from contracts import TX_TYPES, build_executor
from ledger.accounts import get_account
from ledger.blocks import Block, BlockHeader
from ledger.certificates import build_certificate, commit_signing_bytes
from ledger.chain import BlockResult, build_block
from ledger.genesis import Genesis
from ledger.keys import PrivateKey
from ledger.kv import MemoryStore
from ledger.receipts import Receipt
from ledger.store import ChainStore, open_chain
from ledger.transactions import SignedTransaction, TxBody, sign_transaction
from ledger.validator_changes import index_validator_changes
from ledger.validators import ValidatorSet
from secnode.network.devnet import (
    DEV_CHAIN_ID,
    dev_account_key,
    dev_genesis,
    dev_genesis_hash,
    validator_key,
)
from secnode.runtime.chain_activity import ChainActivity
from secnode.runtime.mempool import Mempool
from secnode.runtime.metrics import Metrics
from secnode.runtime.order_index import index_order_events
from secnode.runtime.rpc.server import SUBSCRIPTIONS, RpcConfig, make_app, start_rpc_server
from secnode.runtime.rpc.subscriptions import SubscriptionHub
from secnode.runtime.rpc.view import NodeStatus, PeerStatus
from tests.chainkit import require_type

SIGNERS = ("node0", "node1", "node2")
COMMIT_DELAY_MS = 250
"""How long after its block time the test node says it committed a block (its "wall clock")."""
T = TypeVar("T")


class RpcTestNode:
    """Implements secnode.runtime.rpc.view.NodeView over a dev chain (see the module docstring)."""

    def __init__(self, *, auto_commit: bool = False) -> None:
        self.genesis: Genesis = dev_genesis()
        store, state, head = open_chain(MemoryStore(), self.genesis, TX_TYPES)
        self.store: ChainStore = store
        self.state = state
        self.head: BlockHeader = head
        store.add_indexer(index_order_events)
        store.add_proving_indexer(index_validator_changes)
        self.activity = ChainActivity.seeded(store)
        self.mempool = Mempool(self.genesis.chain_id, genesis_hash=self.genesis.document_hash())
        self.executor = build_executor(self.genesis.chain_id, self.genesis.document_hash())
        self.auto_commit = auto_commit
        self.syncing = False
        self.group_view: int | None = None
        """Set to a view other than 0 to play a node outside the group's view."""
        self.admitted = asyncio.Event()
        """Set whenever a transaction enters the mempool."""
        self._new_block = asyncio.Event()
        self.on_commit: Callable[[Block, list[Receipt]], None] | None = None
        """Told of every committed block (the served app's subscription hub)."""

    def status(self) -> NodeStatus:
        return NodeStatus(
            node_name="node0",
            node_address=validator_key("node0").address,
            height=self.head.height,
            head_hash=self.head.hash(),
            head_time_ms=self.head.timestamp_ms,
            view=0,
            view_changes=0,
            is_validator=True,
            peers=3,
            syncing=self.syncing,
            view_in_sync=self.group_view in (None, 0),
            group_view=self.group_view,
        )

    def peers(self) -> list[PeerStatus]:
        """The other validators of the dev network, as if connected from local ports."""
        return [
            PeerStatus(bytes(validator_key(name).public_key), f"127.0.0.1:{30301 + index}")
            for index, name in enumerate(("node1", "node2", "node3"))
        ]

    def validators_at(self, height: int) -> ValidatorSet:
        return self.genesis.validator_set()

    async def submit(self, tx: SignedTransaction) -> None:
        self.mempool.admit(tx, lambda address: get_account(self.state, address))
        self.admitted.set()
        if self.auto_commit:
            asyncio.get_running_loop().call_soon(self.commit_pending)

    async def wait_committed(
        self,
        tx_hash: bytes,
        timeout: float,  # noqa: ASYNC109  # the name is NodeView's
    ) -> tuple[int, int] | None:
        try:
            async with asyncio.timeout(timeout):
                while (location := self.store.find_transaction(tx_hash)) is None:
                    await self._new_block.wait()
        except TimeoutError:
            return None
        return location

    def _next_nonce(self, address: bytes) -> int:
        account = get_account(self.state, address)
        return 0 if account is None else account.nonce

    def commit_pending(self, timestamp_ms: int | None = None) -> BlockResult:
        """Commit the mempool's ready transactions as one certified block, at `timestamp_ms`
        (default: one second after the head)."""
        candidates = self.mempool.select(1000, self._next_nonce)
        result = build_block(
            self.executor,
            self.state,
            self.head,
            candidates,
            timestamp_ms=self.head.timestamp_ms + 1000 if timestamp_ms is None else timestamp_ms,
            proposer=validator_key("node0").address,
            view=0,
            verified=self.mempool.verified,
        )
        block = result.block
        block_hash = block.hash()
        message = commit_signing_bytes(self.genesis.chain_id, block.height, block_hash)
        signatures: dict[bytes, bytes] = {
            validator_key(name).address: validator_key(name).sign(message) for name in SIGNERS
        }
        certificate = build_certificate(block.height, block_hash, signatures)
        changes = self.state.commit_block()
        self.store.commit_block(block, certificate, result.receipts, changes)
        self.head = block.header
        self.activity.record(block, certificate, block.header.timestamp_ms + COMMIT_DELAY_MS)
        self.mempool.remove_committed(block.transactions, self._next_nonce)
        self._new_block.set()
        self._new_block = asyncio.Event()
        if self.on_commit is not None:
            self.on_commit(block, list(result.receipts))
        return result


class ServedNode:
    """An `RpcTestNode` behind the real HTTP app, on its own loop in a background thread."""

    def __init__(self, *, auto_commit: bool = True, config: RpcConfig | None = None) -> None:
        self.loop = asyncio.new_event_loop()
        self.config = config
        self.auto_commit = auto_commit
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, name="rpc-test-node", daemon=True)
        self.node: RpcTestNode
        self.metrics = Metrics()
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServedNode:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the test RPC server did not start within 10 s")
        if self._failure is not None:
            raise RuntimeError("the test RPC server failed to start") from self._failure
        return self

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._start())
        except BaseException as exc:  # reported to the starting thread
            self._failure = exc
            self._ready.set()
            self.loop.close()
            return
        self._ready.set()
        self.loop.run_forever()
        if self._runner is not None:
            self.loop.run_until_complete(self._runner.cleanup())
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    async def _start(self) -> None:
        self.node = RpcTestNode(auto_commit=self.auto_commit)
        app = make_app(self.node, self.metrics, self.config)
        self.node.on_commit = app[SUBSCRIPTIONS].publish
        self._runner, self.port = await start_rpc_server(app, "127.0.0.1", 0)

    def call(self, function: Callable[[], T]) -> T:
        """Run `function` on the node's loop (the node is not thread-safe) and return its value."""

        async def run() -> T:
            return function()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


def sign(
    name: str, nonce: int, tx_type: str, body: TxBody, key: PrivateKey | None = None
) -> SignedTransaction:
    """A transaction from dev account `name` (or `key`) on the dev chain (`tx_type` must be the
    body's own type)."""
    require_type(tx_type, body)
    return sign_transaction(
        key or dev_account_key(name),
        DEV_CHAIN_ID,
        nonce,
        body,
        genesis_hash=dev_genesis_hash(),
    )


@dataclass
class Served:
    """A node served over HTTP in the test's own loop, with a client session."""

    node: RpcTestNode
    metrics: Metrics
    session: aiohttp.ClientSession
    url: str
    hub: SubscriptionHub
    """The app's subscription hub (WebSocket subscribers)."""

    async def post(self, body: bytes | str, **headers: str) -> tuple[int, Any]:
        """POST a raw body to /rpc; (HTTP status, parsed JSON or None if the body is empty)."""
        data = body.encode() if isinstance(body, str) else body
        async with self.session.post(self.url + "/rpc", data=data, headers=headers) as response:
            raw = await response.read()
            return response.status, (json.loads(raw) if raw else None)

    async def call(self, method: str, params: Any = None, request_id: Any = 1) -> Any:
        """One call; the whole response object."""
        request: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": request_id}
        if params is not None:
            request["params"] = params
        status, response = await self.post(json.dumps(request))
        assert status == 200, (status, response)
        return response

    async def result(self, method: str, params: Any = None) -> Any:
        """The result of a call that must succeed."""
        response = await self.call(method, params)
        assert "result" in response, response
        return response["result"]

    async def error(self, method: str, params: Any = None) -> dict[str, Any]:
        """The error of a call that must fail."""
        response = await self.call(method, params)
        assert "error" in response, response
        error: dict[str, Any] = response["error"]
        return error


@asynccontextmanager
async def serve(
    config: RpcConfig | None = None, *, auto_commit: bool = False
) -> AsyncIterator[Served]:
    """Serve a fresh `RpcTestNode` on 127.0.0.1:0 in the running loop."""
    node = RpcTestNode(auto_commit=auto_commit)
    metrics = Metrics()
    app = make_app(node, metrics, config)
    node.on_commit = app[SUBSCRIPTIONS].publish
    runner, port = await start_rpc_server(app, "127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{port}"
            yield Served(node, metrics, session, url, app[SUBSCRIPTIONS])
    finally:
        await runner.cleanup()
