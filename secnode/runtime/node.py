"""`Node`: one SEC chain node assembled from its home directory.

`Node.open(home)` loads config, key and genesis, opens the LevelDB store (resuming from it),
restores the PBFT replica from its persisted records, and builds mempool, application, p2p host
and RPC app. `Node.run()` owns every task in one `asyncio.TaskGroup` (p2p, RPC server, the
consensus driver's catch-up tasks) until `stop()` — called by the SIGINT/SIGTERM handlers of
`serve` — cancels them, flushes nothing (every commit is already one synced batch) and closes
the store. A crash at any instant leaves the store at its last committed block.

The node implements `secnode.runtime.rpc.view.NodeView` for the RPC layer.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import signal
from collections import defaultdict
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from consensus.config import ReplicaConfig, ValidatorSchedule
from consensus.errors import ConfigError as ConsensusConfigError
from consensus.errors import RestoreError
from consensus.records import decode_record
from consensus.replica import Replica
from contracts import TX_TYPES, build_executor
from ledger.accounts import Account, get_account
from ledger.errors import LedgerError
from ledger.genesis import Genesis, load_genesis
from ledger.keys import PrivateKey, PublicKey, Signer, format_address
from ledger.state import State
from ledger.store import ChainStore, open_chain
from ledger.store_leveldb import LevelDBStore
from ledger.transactions import SignedTransaction, decode_transaction
from ledger.validator_changes import index_validator_changes, scheduling_heights
from ledger.validator_state import (
    current_validators,
    pending_validator_changes,
    validator_schedule,
    validators_at,
)
from ledger.validators import ValidatorSet
from p2p import Handlers, P2PConfig, P2PHost, PeerAddress, RequestRejected, allowlist
from secnode.keyfile import PassphraseReader, read_key_file
from secnode.runtime.app import Committed, LedgerApp
from secnode.runtime.byzantine import make_host
from secnode.runtime.chain_activity import ChainActivity
from secnode.runtime.clock import NodeClock, clock_from_environment
from secnode.runtime.config import (
    CONFIG_FILE,
    ConfigError,
    NodeConfig,
    load_config,
    split_host_port,
)
from secnode.runtime.driver import ConsensusDriver
from secnode.runtime.logs import LogSettingsError, NodeContext, bind_node, configure
from secnode.runtime.mempool import Mempool, MempoolRejected
from secnode.runtime.metrics import Metrics
from secnode.runtime.order_index import index_order_events
from secnode.runtime.rpc.auth import AuthConfigError
from secnode.runtime.rpc.security import RpcSecurity, load_rpc_security
from secnode.runtime.rpc.server import SUBSCRIPTIONS, RpcConfig, make_app, start_rpc_server
from secnode.runtime.rpc.subscriptions import SubscriptionHub
from secnode.runtime.rpc.view import NodeStatus, PeerStatus
from secnode.runtime.trust_precompute import PrecomputedScores
from secnode.statesync.join import join
from secnode.statesync.protocol import decode_request, is_state_sync, parse_request
from secnode.statesync.shelf import SnapshotShelf

log = logging.getLogger("secnode.node")

PRUNE_PER_COMMIT = 16
"""Heights a non-archive node prunes per commit: a backlog (pruning just switched on) drains
over a few hundred blocks instead of stalling one commit."""

SNAPSHOT_STOP_WAIT_S = 30.0
"""At stop, how long the node waits for a snapshot's worker thread (it stops at its next
chunk) before closing the store."""

RESYNC_LIMIT = 2_000
"""Pending transactions re-sent to a peer when it connects (oldest first)."""

CHARGED_REJECTIONS = frozenset({"invalid_signature"})
"""Mempool rejection codes charged to the gossiping peer: what no honest relay can send (a
node relays only what its mempool admitted, signature checked). Duplicates, used or pending
nonces, unknown senders, full pools and expiry depend on the relay's view and are free."""


@dataclass(frozen=True, slots=True)
class Paths:
    """Where a node home's relative paths point (absolute paths stay as they are)."""

    home: Path

    def resolve(self, name: str) -> Path:
        path = Path(name)
        return path if path.is_absolute() else self.home / path


class Node:
    """A validator (or observer) node. Implements NodeView."""

    def __init__(
        self,
        config: NodeConfig,
        key: PrivateKey,
        genesis: Genesis,
        store: ChainStore,
        state: State,
        replica_records: list[bytes],
        clock: Callable[[], float] | None = None,
        home: Path | None = None,
    ) -> None:
        self.config = config
        self.clock: Callable[[], float] = NodeClock() if clock is None else clock
        """The node's one source of "now" (see `secnode.runtime.clock`)."""
        self.key = key
        self.signer = Signer(key)
        self.genesis = genesis
        self.store = store
        self.state = state
        self.metrics = Metrics()
        self.mempool = Mempool(
            genesis.chain_id,
            config.mempool.mempool_config(),
            clock=self.clock,
            genesis_hash=genesis.document_hash(),
        )
        head = store.head().header
        store.add_indexer(index_order_events)
        store.add_proving_indexer(index_validator_changes)
        self.activity = ChainActivity.seeded(store)
        """Recent commits as this node saw them (for sec_getNetwork)."""
        self.trust_scores = PrecomputedScores(on_epoch=self.metrics.observe_trust_epoch)
        statesync = config.statesync
        self.snapshots = SnapshotShelf(
            Paths(home or Path.cwd()).resolve(statesync.snapshot_dir),
            statesync.snapshot_interval,
            statesync.snapshot_keep,
        )
        """The snapshots this node takes and serves to joining peers ([statesync])."""
        self._tasks: asyncio.TaskGroup | None = None
        self.subscriptions: SubscriptionHub | None = None
        """WebSocket subscribers, told of every committed block (set when the RPC app is made)."""
        self.app = LedgerApp(
            build_executor(genesis.chain_id, genesis.document_hash(), self.trust_scores),
            store,
            state,
            head,
            self.mempool,
            self.signer.address,
            max_block_transactions=config.consensus.max_block_transactions,
            max_clock_drift_s=config.consensus.max_clock_drift_s,
            metrics=self.metrics,
        )
        self.replica = self._restore_replica(replica_records)
        # TEST-ONLY FAULT hook: a plain P2PHost unless SEC_BYZANTINE is set
        # (secnode/runtime/byzantine.py)
        self.host: P2PHost = make_host(self._p2p_config(), self.signer, genesis.chain_id)
        self._waiters: dict[bytes, list[asyncio.Future[tuple[int, int]]]] = defaultdict(list)
        self._stop = asyncio.Event()
        self._enough_peers = asyncio.Event()
        self.driver: ConsensusDriver | None = None
        self.rpc_port: int | None = None
        self.rpc_security = RpcSecurity()
        """TLS context, tokens and Host names of [rpc] (read from the home by `open`)."""
        self.failure: str | None = None
        """Why the node stopped itself (the driver's fail-stop), if it did."""
        self.metrics.attach(self)

    # --- construction ------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        home: Path,
        config: NodeConfig | None = None,
        passphrase: PassphraseReader | None = None,
        key: PrivateKey | None = None,
    ) -> Node:
        """Load everything from a node home (raises LedgerError subclasses with clear text);
        `config` is the home's config.toml when the caller has already loaded it; `passphrase`
        opens an encrypted node key (KeyFileError without it), unless the caller has already
        read the key (`key`)."""
        config = load_config(home) if config is None else config
        clock = clock_from_environment()  # before opening anything: a bad offset is a config error
        paths = Paths(home)
        rpc_security = load_rpc_security(config.rpc, paths.resolve)  # before the store opens
        if key is None:
            key = read_key_file(paths.resolve(config.key_file), passphrase)
        genesis = load_genesis(paths.resolve(config.genesis_file))
        store, state, _ = open_chain(
            LevelDBStore(paths.resolve(config.data_dir)), genesis, TX_TYPES
        )
        records = [value for _, value in store.records()]
        try:
            node = cls(config, key, genesis, store, state, records, clock, home)
            node.rpc_security = rpc_security
            return node
        except ConsensusConfigError as exc:  # e.g. a view timeout not above the block interval
            store.close()
            raise ConfigError(f"{home / CONFIG_FILE}: [consensus] {exc}") from None
        except RestoreError as exc:
            store.close()
            raise LedgerError(f"cannot resume consensus from {config.data_dir}: {exc}") from None

    def _schedule(self) -> ValidatorSchedule:
        """Past, current and pending sets from the committed state (a pending change effective
        at head + 1 included: the state activates it only when that block executes)."""
        return ValidatorSchedule(tuple(validator_schedule(self.state)))

    def _restore_replica(self, encoded_records: list[bytes]) -> Replica:
        consensus = self.config.consensus
        genesis_block = self.store.get_block(0)
        if genesis_block is None:
            raise LedgerError("store has no genesis block")
        replica_config = ReplicaConfig(
            chain_id=self.genesis.chain_id,
            genesis_digest=genesis_block.hash(),
            batch_wait=consensus.batch_wait_s,
            empty_block_interval=consensus.empty_block_interval_s,
            view_timeout=consensus.view_change_timeout_s,
        )
        head = self.app.head
        records = [decode_record(value) for value in encoded_records]
        certificates = []
        for height in range(max(1, head.height - 64), head.height + 1):
            certificate = self.store.get_certificate(height)
            if certificate is not None:
                certificates.append(certificate)
        return Replica.restore(
            replica_config,
            self.signer,
            self.app,
            self._schedule(),
            height=head.height,
            digest=head.hash(),
            records=records,
            certificates=certificates,
            now=self.clock(),
        )

    def _allowed_keys(self) -> frozenset[PublicKey]:
        """Who may connect, from the committed state: the current validators and every set
        scheduled to take effect (an incoming validator must catch up before its turn), plus
        the configured observers and peers. Not the genesis set: a removed validator is out."""
        p2p = self.config.p2p
        keys = [bytes(m.public_key) for m in current_validators(self.state).members]
        for _, scheduled in pending_validator_changes(self.state):
            keys += [bytes(m.public_key) for m in scheduled.members]
        keys += [bytes.fromhex(k) for k in p2p.observers]
        keys += [bytes.fromhex(p.public_key) for p in p2p.peers]
        return allowlist(keys)

    def _refresh_allowlist(self) -> None:
        """After a commit: follow a validator set change (closes removed validators' links)."""
        allowed = self._allowed_keys()
        if allowed != self.host.allowed_keys:
            self.host.set_allowed_keys(allowed)

    def _p2p_config(self) -> P2PConfig:
        return p2p_config(self.config, self.genesis.chain_id, self._allowed_keys())

    # --- running -----------------------------------------------------------------------------

    def _rpc_app(self, security: RpcSecurity) -> web.Application:
        """The RPC app of [rpc]; AuthConfigError if restricted_methods names no method."""
        return make_app(
            self,
            self.metrics,
            RpcConfig(
                max_body_bytes=self.config.rpc.max_body_bytes,
                max_batch_size=self.config.rpc.max_batch,
                max_request_cost=self.config.rpc.max_request_cost,
                max_reply_bytes=self.config.rpc.max_reply_bytes,
                rate_limit_per_s=self.config.rpc.rate_limit_per_s,
                rate_limit_burst=self.config.rpc.rate_limit_burst,
                rpc_share=self.config.rpc.rpc_share,
                max_ws_connections=self.config.rpc.max_ws_connections,
                max_subscriptions=self.config.rpc.max_subscriptions,
                subscriber_queue=self.config.rpc.subscriber_queue,
                console=self.config.rpc.console,
                cors_origins=tuple(self.config.rpc.cors_origins),
                allowed_hosts=security.allowed_hosts,
                restricted_methods=tuple(self.config.rpc.restricted_methods),
                tokens=security.tokens,
            ),
        )

    async def run(self) -> None:
        """Serve until `stop()`; every task lives in this TaskGroup."""
        bind_node(
            NodeContext(
                self.config.name,
                format_address(self.signer.address),
                lambda: (self.app.head.height, self.replica.view),
            )
        )
        rpc_host, rpc_port = split_host_port(self.config.rpc.listen)
        security = self.rpc_security
        try:
            rpc_app = self._rpc_app(security)
        except AuthConfigError as exc:  # a restricted method this node does not have
            self.store.close()
            raise ConfigError(str(exc)) from None
        self.subscriptions = rpc_app[SUBSCRIPTIONS]
        try:
            runner, self.rpc_port = await start_rpc_server(
                rpc_app, rpc_host, rpc_port, security.ssl_context
            )
        except OSError as exc:  # most often: the port is taken (another node, a testnet)
            self.store.close()
            raise ConfigError(f"rpc.listen {self.config.rpc.listen}: {_reason(exc)}") from None
        listening = False
        self.snapshots.load()
        try:
            async with asyncio.TaskGroup() as tasks:
                self._tasks = tasks
                driver = ConsensusDriver(
                    self.replica,
                    self.app,
                    self.host,
                    self.metrics,
                    tasks,
                    self._on_commit,
                    clock=self.clock,
                    on_fatal=self._on_fatal,
                )
                self.driver = driver
                self.host.set_handlers(
                    Handlers(
                        on_transaction=self._on_gossiped_transaction,
                        on_consensus=driver.on_consensus_bytes,
                        on_request=self._on_request,
                        on_peer_connected=self._on_peer_connected,
                        on_peer_disconnected=lambda peer, reason: self._peers_changed(),
                    )
                )
                tasks.create_task(self.host.run())
                await self.host.wait_listening()
                listening = True
                await self._wait_for_peers()
                driver.start()
                log.info(
                    "node %s serving: chain %s height %d, p2p %s, rpc %s:%d",
                    self.config.name,
                    self.genesis.chain_id,
                    self.app.head.height,
                    self.config.p2p.listen,
                    rpc_host,
                    self.rpc_port,
                )
                await self._stop.wait()
                self.snapshots.stopping.set()
                driver.stop()
                self.host.stop()
        except* OSError as failures:
            if listening:
                raise
            # P2PHost.run raises OSError only when it cannot bind the listening socket.
            reason = _reason(failures.exceptions[0])
            raise ConfigError(f"p2p.listen {self.config.p2p.listen}: {reason}") from None
        finally:
            await runner.cleanup()
            self.snapshots.stopping.set()  # a snapshot thread reads the store: let it finish
            await asyncio.to_thread(self.snapshots.idle.wait, SNAPSHOT_STOP_WAIT_S)
            self.snapshots.close()
            self.store.close()
            log.info("node %s stopped at height %d", self.config.name, self.app.head.height)

    def stop(self) -> None:
        self._stop.set()

    def _on_fatal(self, reason: str) -> None:
        """The driver failed to carry out a committed step: stop cleanly (fail-stop)."""
        self.failure = reason
        self._stop.set()

    # --- p2p handlers ------------------------------------------------------------------------

    def _peers_changed(self) -> None:
        connected = len(self.host.connected_peers())
        self.metrics.set_peers(connected)
        if connected >= self._peers_needed():
            self._enough_peers.set()

    def _on_peer_connected(self, peer: PublicKey) -> None:
        """Re-sync pending transactions with a peer that (re)connected: gossip reaches only the
        peers connected at admission time, and a primary that missed a transaction would never
        propose it. Bounded well below the peer's send-queue cap."""
        self._peers_changed()
        for index, tx in enumerate(self.mempool.by_hash.values()):
            if index >= RESYNC_LIMIT or not self.host.send_transaction(peer, tx.encoded):
                break

    def _peers_needed(self) -> int:
        """2f other validators: with them this node can take part in a quorum."""
        validators = current_validators(self.state)
        return min(validators.quorum - 1, len(self.config.p2p.peers))

    async def _wait_for_peers(self) -> None:
        """Start the consensus timers once a quorum is reachable (bounded wait), so a node
        that starts before its peers does not time out alone into a view change."""
        limit = 2 * self.config.consensus.view_change_timeout_s
        if len(self.host.connected_peers()) >= self._peers_needed():
            return
        try:
            await asyncio.wait_for(self._enough_peers.wait(), limit)
        except TimeoutError:
            log.warning(
                "only %d of %d peers connected after %.0f s; starting consensus anyway",
                len(self.host.connected_peers()),
                self._peers_needed(),
                limit,
            )

    def _on_gossiped_transaction(self, peer: PublicKey, data: bytes) -> bool:
        """Admit a gossiped transaction; True relays it on. Bytes that are not a transaction,
        and the rejections in CHARGED_REJECTIONS, are charged to the peer as bad consensus
        signatures are (`host.penalize`), so junk cannot buy our CPU for free."""
        try:
            tx = decode_transaction(data, TX_TYPES)
        except LedgerError as exc:
            self.metrics.record_rejected("malformed", "gossip")
            self.host.penalize(peer, f"gossiped transaction is malformed: {exc}")
            return False
        try:
            self.mempool.admit(tx, self._lookup)
        except MempoolRejected as exc:
            self.metrics.record_rejected(exc.code, "gossip")
            if exc.code in CHARGED_REJECTIONS:
                self.host.penalize(peer, f"gossiped transaction {exc.code}: {exc}")
            return exc.code == "duplicate"
        except LedgerError:
            return False
        if self.driver is not None:
            self.driver.on_transactions_pending()
        return True

    async def _on_request(self, peer: PublicKey, payload: bytes) -> bytes:
        """A peer's request: state sync ({want: ...}, `secnode.statesync`) or catch-up."""
        value = decode_request(payload)
        if is_state_sync(value):
            return await self.snapshots.serve(parse_request(value))
        if self.driver is None:
            raise RequestRejected("node is starting")
        return self.driver.serve_catch_up(payload)

    def _lookup(self, address: bytes) -> Account | None:
        return get_account(self.state, address)

    # --- commits -----------------------------------------------------------------------------

    def _prune(self, head: int) -> None:
        """A non-archive node drops old blocks ([storage]), at most PRUNE_PER_COMMIT heights
        per commit so a commit never stalls on a long backlog; the blocks that scheduled a
        validator change stay (clients trace the set from the genesis through them)."""
        floor = self.config.storage.prune_floor(head)
        if floor > self.store.pruned_below():
            self.store.prune_blocks(floor, PRUNE_PER_COMMIT, scheduling_heights(self.store))

    def _on_commit(self, committed: Committed, now: float) -> None:
        block = committed.block
        self.activity.record(block, self.store.get_certificate(block.height), int(now * 1000))
        self._prune(block.height)
        for index, tx in enumerate(block.transactions):
            for future in self._waiters.pop(tx.hash, []):
                if not future.done():
                    future.set_result((block.height, index))
        self.metrics.set_mempool(len(self.mempool), self.mempool.size_bytes)
        self._refresh_allowlist()
        self.trust_scores.after_commit(self.state, block.height, self._in_worker_thread)
        self.snapshots.after_commit(
            self.store, self.genesis.chain_id, self.genesis.document_hash(), self._in_worker_thread
        )
        if self.subscriptions is not None:  # never waits: a slow subscriber is dropped
            try:
                self.subscriptions.publish(block, committed.receipts)
            except Exception:  # notifications are best effort: never fail the commit path
                log.exception("publishing block %d to subscribers failed", block.height)
        if block.height % 100 == 0 or block.transactions:
            log.info(
                "committed block %d with %d transactions", block.height, len(block.transactions)
            )

    def _in_worker_thread(self, work: Callable[[], None]) -> None:
        """Run `work` (a trust epoch precomputation, a snapshot) in a thread, as a task of the
        node."""
        if self._tasks is None:
            return

        async def run() -> None:
            try:
                await asyncio.to_thread(work)
            except Exception:  # the top of this task; each job logs its own expected failures
                log.exception("work in a worker thread failed (trust precompute or snapshot)")

        self._tasks.create_task(run())

    # --- NodeView ----------------------------------------------------------------------------

    def status(self) -> NodeStatus:
        head = self.app.head
        validators = current_validators(self.state)
        return NodeStatus(
            node_name=self.config.name,
            node_address=self.signer.address,
            height=head.height,
            head_hash=head.hash(),
            head_time_ms=head.timestamp_ms,
            view=self.replica.view,
            view_changes=self.driver.view_changes if self.driver else 0,
            is_validator=self.signer.address in validators,
            peers=len(self.host.connected_peers()),
            syncing=bool(self.driver and self.driver.syncing),
            view_in_sync=self.replica.view_in_sync,
            group_view=self.replica.group_view,
        )

    def peers(self) -> list[PeerStatus]:
        names = {bytes.fromhex(peer.public_key): peer.name for peer in self.config.p2p.peers}
        return [
            PeerStatus(bytes(info.public_key), info.address, names.get(bytes(info.public_key)))
            for info in self.host.peers()
        ]

    # --- MetricsSource ------------------------------------------------------------------------

    def validator_last_signed(self) -> Mapping[str, int]:
        signed = self.activity.last_signed
        return {
            format_address(member.address): signed.get(bytes(member.address), 0)
            for member in current_validators(self.state).members
        }

    def peer_traffic(self) -> Mapping[str, tuple[int, int]]:
        names = {bytes.fromhex(peer.public_key): peer.name for peer in self.config.p2p.peers}
        return {
            names.get(bytes(key), bytes(key).hex()[:16]): totals
            for key, totals in self.host.traffic().items()
        }

    def peer_bans(self) -> int:
        return self.host.stats.peers_banned

    def validators_at(self, height: int) -> ValidatorSet:
        # From the committed state's history, not the replica's schedule: a restarted replica
        # starts its schedule at the current set, which would answer it for earlier heights.
        return validators_at(self.state, max(height, 1))

    async def submit(self, tx: SignedTransaction) -> None:
        try:
            self.mempool.admit(tx, self._lookup)
        except MempoolRejected as exc:
            self.metrics.record_rejected(exc.code, "rpc")
            raise
        self.host.broadcast_transaction(tx.encoded)
        if self.driver is not None:
            self.driver.on_transactions_pending()

    async def wait_committed(
        self,
        tx_hash: bytes,
        timeout: float,  # noqa: ASYNC109  # the NodeView contract is a bounded wait
    ) -> tuple[int, int] | None:
        location = self.store.find_transaction(tx_hash)
        if location is not None:
            return location
        future: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()
        self._waiters[tx_hash].append(future)
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return None
        finally:
            waiters = self._waiters.get(tx_hash)
            if waiters is not None and future in waiters:
                waiters.remove(future)
                if not waiters:
                    del self._waiters[tx_hash]


def p2p_config(config: NodeConfig, chain_id: str, allowed: frozenset[PublicKey]) -> P2PConfig:
    """The p2p host's config from config.toml's [p2p] with the keys allowed to connect."""
    p2p = config.p2p
    host, port = split_host_port(p2p.listen)
    return P2PConfig(
        chain_id=chain_id,
        allowed_keys=allowed,
        peers=tuple(
            PeerAddress(
                public_key=PublicKey(bytes.fromhex(peer.public_key)),
                host=split_host_port(peer.address)[0],
                port=split_host_port(peer.address)[1],
            )
            for peer in p2p.peers
        ),
        listen_host=host,
        listen_port=port,
    )


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error)


def serve(
    home: Path,
    passphrase: PassphraseReader | None = None,
    log_format: str | None = None,
    log_levels: str | None = None,
    state_sync: bool = False,
) -> int:
    """`sec node start --home HOME`: run until SIGINT/SIGTERM; 0 on a clean stop, 1 when the
    node stopped itself (its driver's fail-stop, logged as CRITICAL). `passphrase` opens an
    encrypted node.key; `log_format` and `log_levels` (the command line, `secnode.runtime.logs`
    syntax) go over config.toml's `log_level` and `[log]`. With `state_sync` (or [statesync]
    join), a home without chain data first fills its store from its peers
    (`secnode.statesync`)."""
    config = load_config(home)
    try:
        settings = config.log.settings(config.log_level).overridden(log_format, log_levels)
    except LogSettingsError as exc:
        raise ConfigError(f"--log-format/--log-level: {exc}") from None
    configure(settings)

    failures: list[str] = []

    async def main() -> None:
        key = None
        if state_sync or config.statesync.join:
            key = await _join_if_empty(home, config, passphrase)
        node = Node.open(home, config, passphrase, key)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, node.stop)
        await node.run()
        if node.failure is not None:
            failures.append(node.failure)

    run = event_loop_runner(os.environ.get(EVENT_LOOP_VARIABLE, "asyncio"))
    profile_path = os.environ.get("SEC_PROFILE")
    if profile_path:  # where the time goes: SEC_PROFILE=FILE writes a cProfile dump on exit
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
        try:
            run(main())
        finally:
            profiler.disable()
            profiler.dump_stats(f"{profile_path}.{config.name}")
    else:
        run(main())
    return 1 if failures else 0


async def _join_if_empty(
    home: Path, config: NodeConfig, passphrase: PassphraseReader | None
) -> PrivateKey:
    """The node key; before returning it, state-sync the store if the home has no chain
    data (NoSnapshot, a LedgerError, when that fails: the node does not start half-joined)."""
    paths = Paths(home)
    key = read_key_file(paths.resolve(config.key_file), passphrase)
    data_dir = paths.resolve(config.data_dir)
    if (data_dir / "CURRENT").exists():
        log.info("state sync skipped: %s already holds chain data", data_dir)
        return key
    genesis = load_genesis(paths.resolve(config.genesis_file))
    allowed = allowlist(
        [bytes.fromhex(peer.public_key) for peer in config.p2p.peers]
        + [bytes.fromhex(k) for k in config.p2p.observers]
    )
    synced = await join(
        p2p_config(config, genesis.chain_id, allowed),
        Signer(key),
        genesis,
        data_dir,
        config.statesync.join_wait_s,
        config.statesync.max_snapshot_bytes,
    )
    log.info(
        "state sync done: height %d, %d state rows, %d bytes from %d peers in %.1f s",
        synced.manifest.height,
        synced.manifest.entries,
        synced.bytes_fetched,
        len(synced.chunks_by_peer),
        synced.seconds,
    )
    return key


EVENT_LOOP_VARIABLE = "SEC_EVENT_LOOP"
"""Environment variable naming the node's event loop: "asyncio" (the default) or "uvloop" (the
libuv loop, from the optional extra `pip install 'secchain[uvloop]'`)."""


def event_loop_runner(name: str) -> Callable[[Coroutine[Any, Any, None]], None]:
    """The function that runs the node's main coroutine on the event loop `name`; ConfigError
    for an unknown name, or for uvloop when it is not installed."""
    if name == "asyncio":
        return asyncio.run
    if name != "uvloop":
        raise ConfigError(f"{EVENT_LOOP_VARIABLE} must be asyncio or uvloop, not {name!r}")
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        raise ConfigError(
            f"{EVENT_LOOP_VARIABLE}=uvloop needs the uvloop package: pip install 'secchain[uvloop]'"
        ) from None
    runner: Callable[[Coroutine[Any, Any, None]], None] = uvloop.run
    return runner
