"""The RPC methods, implemented over `NodeView` only.

Reads use the committed view: the store for blocks, receipts and the transaction index, and
`state.get_committed` / `state.prove` / `state.committed_root` for state (order records through
the contract's queries, contracts.orders, over `ledger.store.CommittedState`), so a block
executing in the state overlay is never visible. Each read runs without an `await` in between,
so on the node's event loop it sees one consistent committed height (assuming the node commits
the store and the state together, without yielding in between).

Results are the shared schema's models (`secnode.schema`), built straight from ledger objects
with their constructors (`BlockResult.of`, `StateProof.of`, ...), never from dicts.

Errors are raised as `RpcError` (secnode.runtime.rpc.errors); a missing block, transaction or
account is `not_found`, a store that lacks a row it indexes is a `StoreError` (internal error,
logged).
"""

from __future__ import annotations

from typing import Any, Final

from contracts import TX_TYPES
from contracts.orders import OrderCreate, find_order, order_key, orders_of
from ledger.accounts import Account, account_key, mask_to_roles
from ledger.blocks import Block
from ledger.encoding import decode
from ledger.errors import DecodeError, MalformedTransaction, StoreError
from ledger.keys import format_address, parse_address
from ledger.merkle import leaf_hash, node_hash
from ledger.receipts import Receipt
from ledger.store import CommittedState, LruCache
from ledger.transactions import decode_transaction
from secnode.runtime.mempool import MempoolRejected
from secnode.runtime.rpc.budget import REPLY_BYTES_PER_STORED_BYTE, Worker, reserve_reply_bytes
from secnode.runtime.rpc.console_methods import console_method_table
from secnode.runtime.rpc.errors import (
    BUSY,
    NOT_FOUND,
    PRUNED,
    REJECTED,
    TIMEOUT,
    RpcError,
    busy,
    invalid_params,
    not_found,
    pruned,
    rejected,
    timeout,
)
from secnode.runtime.rpc.group_methods import group_method_table
from secnode.runtime.rpc.jsonrpc import Method
from secnode.runtime.rpc.openrpc import build_document
from secnode.runtime.rpc.review_methods import review_method_table
from secnode.runtime.rpc.subscriptions import subscription_method_table
from secnode.runtime.rpc.trust_methods import trust_method_table
from secnode.runtime.rpc.validator_methods import validator_method_table
from secnode.runtime.rpc.view import NodeView
from secnode.schema import models as m
from secnode.schema.objects import (
    BlockHeader,
    CommitCertificate,
    InclusionProof,
    StateProof,
    Transaction,
)
from secnode.schema.objects import Order as OrderView
from secnode.schema.objects import Receipt as ReceiptView

DEFAULT_MAX_COMMIT_WAITERS: Final = 256
MAX_ORDERS_EXAMINED: Final = 1_000
"""sec_listOrders looks at most this many index entries per call (a filtered page may be short)."""
TREE_CACHE_SIZE: Final = 64
"""Blocks whose transaction Merkle tree (every level) is kept for inclusion proofs."""


class RpcMethods:
    """Method implementations bound to one node view."""

    def __init__(
        self,
        view: NodeView,
        max_commit_waiters: int = DEFAULT_MAX_COMMIT_WAITERS,
        worker: Worker | None = None,
    ) -> None:
        self.view = view
        self.max_commit_waiters = max_commit_waiters
        self.worker = worker or Worker()
        self._waiting = 0
        self._trees: LruCache[bytes, tuple[tuple[bytes, ...], ...]] = LruCache(TREE_CACHE_SIZE)
        self._genesis_hash: bytes | None = None
        """The genesis document hash, computed at the first sec_status: it encodes the whole
        document (milliseconds per call at a few hundred accounts, more with a bigger genesis),
        too much for a call priced at one unit."""

    # --- helpers ---------------------------------------------------------------------------

    def _committed(self) -> CommittedState:
        return CommittedState(self.view.state, self.view.store)

    def _head_height(self) -> int:
        height = self.view.store.head_height()
        if height is None:
            raise StoreError("the store has no head block")
        return height

    def _absent(self, what: str, key: str, height: int) -> RpcError:
        """The error for a block at `height` that the store does not hold: pruned if the
        height is below what this node keeps, else not found."""
        kept_from = self.view.store.pruned_below()
        if height < kept_from:
            return pruned(what, key, kept_from)
        return not_found(what, key)

    def _block(self, height: int) -> Block:
        block = self.view.store.get_block(height)
        if block is None:
            raise self._absent("block", str(height), height)
        return block

    async def _block_off_loop(self, height: int) -> Block:
        """The block at `height`; a cache miss is decoded in a worker thread (a committed
        block never changes, so the thread reads nothing the loop mutates)."""
        block = self.view.store.cached_block(height)
        if block is None:
            store = self.view.store
            block = await self.worker.run(lambda: store.get_block(height))
        if block is None:
            raise self._absent("block", str(height), height)
        return block

    def _tree(self, block: Block) -> tuple[tuple[bytes, ...], ...]:
        """Every level of the block's transaction tree, built once per block (n - 1 hashes), so
        each later inclusion proof costs log n look-ups instead of n hashes."""
        key = block.hash()
        tree = self._trees.get(key)
        if tree is None:
            tree = tree_levels([leaf_hash(t.encoded) for t in block.transactions])
            self._trees.put(key, tree)
        return tree

    def _receipt(self, height: int, index: int) -> Receipt:
        receipts = self.view.store.get_receipts(height)
        if receipts is None or index >= len(receipts):
            raise StoreError(f"the store has no receipt {index} of block {height}")
        return receipts[index]

    def _existing_height(self, height: int | None) -> int:
        head = self._head_height()
        if height is None:
            return head
        if height > head:
            raise not_found("block", str(height))
        return height

    def _committed_send_result(
        self, tx_hash: bytes, height: int, index: int
    ) -> m.SendTransactionResult:
        block = self._block(height)
        return m.SendTransactionResult(
            hash=tx_hash,
            status="committed",
            height=height,
            index=index,
            block_hash=block.hash(),
            receipt=ReceiptView.of(self._receipt(height, index)),
        )

    async def _wait_committed(self, tx_hash: bytes, timeout_s: float) -> tuple[int, int]:
        if self._waiting >= self.max_commit_waiters:
            raise busy(self.max_commit_waiters)
        self._waiting += 1
        try:
            location = await self.view.wait_committed(tx_hash, timeout_s)
        finally:
            self._waiting -= 1
        if location is None:
            raise timeout(tx_hash, timeout_s)
        return location

    # --- methods ---------------------------------------------------------------------------

    async def status(self, params: m.NoParams) -> m.StatusResult:
        status = self.view.status()
        if self._genesis_hash is None:
            self._genesis_hash = self.view.genesis.document_hash()
        return m.StatusResult(
            chain_id=self.view.genesis.chain_id,
            genesis_hash=self._genesis_hash,
            node_name=status.node_name,
            node_address=status.node_address,
            height=status.height,
            head_hash=status.head_hash,
            head_time_ms=status.head_time_ms,
            view=status.view,
            view_changes=status.view_changes,
            is_validator=status.is_validator,
            peers=status.peers,
            syncing=status.syncing,
            mempool_size=len(self.view.mempool),
            view_in_sync=status.view_in_sync,
            group_view=status.group_view,
        )

    async def send_transaction(self, params: m.SendTransactionParams) -> m.SendTransactionResult:
        try:
            tx = decode_transaction(bytes.fromhex(params.tx), TX_TYPES)
        except MalformedTransaction as exc:
            raise invalid_params([("tx", str(exc))]) from None
        # A pending transaction is not committed (a commit takes it out of the mempool), so
        # the store is read only for one that is not pending.
        mempool = self.view.mempool
        location = None if tx.hash in mempool else self.view.store.find_transaction(tx.hash)
        if location is None and tx.hash not in mempool:
            try:
                await self.view.submit(tx)
            except MempoolRejected as exc:
                raise rejected(exc, tx.hash) from None
            if tx.hash not in mempool:
                location = self.view.store.find_transaction(tx.hash)
        if location is None and params.wait == "commit":
            location = await self._wait_committed(tx.hash, params.timeout_s)
        if location is None:
            return m.SendTransactionResult(hash=tx.hash, status="pending")
        return self._committed_send_result(tx.hash, *location)

    async def get_transaction(self, params: m.GetTransactionParams) -> m.TransactionResult:
        tx_hash = bytes.fromhex(params.hash)
        location = self.view.store.find_transaction(tx_hash)
        if location is None:
            pending = self.view.mempool.get(tx_hash)
            if pending is None:
                raise not_found("transaction", tx_hash.hex())
            return m.TransactionResult(
                hash=tx_hash, status="pending", tx=Transaction.of(pending), raw=pending.encoded
            )
        height, index = location
        if self.view.store.get_block_bytes(height) is None:
            raise self._absent("transaction", tx_hash.hex(), height)
        block = await self._block_off_loop(height)
        if index >= len(block.transactions) or block.transactions[index].hash != tx_hash:
            raise StoreError(
                f"transaction index row for {tx_hash.hex()} does not match block {height}"
            )
        tx = block.transactions[index]
        tree = self._tree(block)
        proof = InclusionProof(
            leaf_index=index,
            tree_size=len(tree[0]),
            leaf_hash=tree[0][index],
            hashes=path_from_levels(tree, index),
            tx_root=block.header.tx_root,
        )
        return m.TransactionResult(
            hash=tx_hash,
            status="committed",
            tx=Transaction.of(tx),
            raw=tx.encoded,
            height=height,
            index=index,
            block_hash=block.hash(),
            receipt=ReceiptView.of(self._receipt(height, index)),
            proof=proof,
        )

    async def get_block(self, params: m.GetBlockParams) -> m.BlockResult:
        if params.hash is not None:
            height = self.view.store.height_of_block(bytes.fromhex(params.hash))
            if height is None:
                raise not_found("block", params.hash.lower())
        else:
            height = self._existing_height(params.height)
        if not params.full:
            return m.BlockResult.of(await self._block_off_loop(height))
        stored = self.view.store.stored_size(height)
        if stored is None:
            raise self._absent("block", str(height), height)
        # Refuse before building: the reply is proportional to the stored bytes.
        reserve_reply_bytes(stored * REPLY_BYTES_PER_STORED_BYTE)
        store = self.view.store

        def build() -> m.BlockResult:
            # Worker thread: reads only the committed block and receipts of `height`, which
            # never change once committed (chosen on the loop above).
            block = store.get_block(height)
            if block is None:
                raise StoreError(f"block {height} vanished from the store")
            return m.BlockResult.of(block, store.get_receipts(height) or [])

        return await self.worker.run(build)

    async def get_commit(self, params: m.HeightParams) -> m.CommitResult:
        height = self._existing_height(params.height)
        block = self._block(height)
        return m.CommitResult(
            height=height,
            hash=block.hash(),
            header=BlockHeader.of(block.header),
            certificate=CommitCertificate.of_optional(self.view.store.get_certificate(height)),
        )

    async def get_validators(self, params: m.HeightParams) -> m.ValidatorsResult:
        height = self._existing_height(params.height)
        return m.ValidatorsResult.of(height, self.view.validators_at(height))

    async def get_account(self, params: m.GetAccountParams) -> m.AccountResult:
        address = parse_address(params.address)
        key = account_key(address)
        state = self.view.state
        raw = state.get_committed(key)
        root = state.committed_root()
        height = self._head_height()
        if raw is None and not params.prove:
            raise not_found("account", format_address(address))
        account = None if raw is None else _decode_account(raw, address)
        return m.AccountResult(
            address=address,
            exists=account is not None,
            public_key=None if account is None else account.public_key,
            nonce=None if account is None else account.nonce,
            balance=None if account is None else account.balance,
            roles=None if account is None else mask_to_roles(account.roles),
            name=None if account is None else account.name,
            height=height,
            state_root=root,
            proof=StateProof.of(state.prove(key)) if params.prove else None,
            value=state.get_committed(key) if params.prove else None,
        )

    async def get_order(self, params: m.GetOrderParams) -> m.OrderResult:
        order_id = bytes.fromhex(params.order_id)
        key = order_key(order_id)
        state = self.view.state
        record = find_order(self._committed(), order_id)
        root = state.committed_root()
        height = self._head_height()
        if record is None and not params.prove:
            raise not_found("order", order_id.hex())
        order = None if record is None else OrderView.of(order_id, record)
        items = None if order is None else order.items
        created_height: int | None = None
        location = None if record is None else self.view.store.find_transaction(order_id)
        if location is not None:
            created = self._block(location[0]).transactions[location[1]]
            if isinstance(created.body, OrderCreate):
                created_height = location[0]
        return m.OrderResult(
            order_id=order_id,
            exists=order is not None,
            order=order,
            items=items,
            created_height=created_height,
            height=height,
            state_root=root,
            proof=StateProof.of(state.prove(key)) if params.prove else None,
            value=state.get_committed(key) if params.prove else None,
        )

    async def list_orders(self, params: m.ListOrdersParams) -> m.ListOrdersResult:
        address = parse_address(params.party)
        height = self._head_height()
        # The cursor is the last order id examined; the store seeks straight past it, so a deep
        # page costs what a first page costs.
        page = orders_of(
            self._committed(),
            address,
            role=params.role,
            in_state=params.state,
            after=None if params.cursor is None else bytes.fromhex(params.cursor),
            limit=params.limit,
            max_examined=MAX_ORDERS_EXAMINED,
        )
        entries = [
            m.OrderListEntry(role=entry.role, order=OrderView.of(entry.order_id, entry.order))
            for entry in page.orders
        ]
        next_cursor = page.next_after
        return m.ListOrdersResult(
            party=address, orders=entries, next_cursor=next_cursor, height=height
        )


def tree_levels(leaves: list[bytes]) -> tuple[tuple[bytes, ...], ...]:
    """The levels of the RFC 6962 tree over `leaves`, leaves first, root last: neighbours are
    paired and an odd last node is carried up unchanged, which builds exactly the RFC's
    left-balanced tree (ledger.merkle.merkle_root does the same)."""
    levels = [tuple(leaves)]
    while len(levels[-1]) > 1:
        level = levels[-1]
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        levels.append(tuple(paired))
    return tuple(levels)


def path_from_levels(levels: tuple[tuple[bytes, ...], ...], index: int) -> list[bytes]:
    """RFC 6962 §2.1.1 PATH(index) read off `tree_levels` (equal to ledger.merkle's
    inclusion_proof): the sibling at each level, skipped where a carried-up node has none."""
    path = []
    for level in levels[:-1]:
        sibling = index ^ 1
        if sibling < len(level):
            path.append(level[sibling])
        index //= 2
    return path


def _decode_account(raw: bytes, address: bytes) -> Account:
    """The committed account record (ledger.accounts layout: [public_key, nonce, balance,
    roles, name]); a record of any other shape is store corruption."""
    try:
        record = decode(raw)
    except DecodeError as exc:
        raise StoreError(f"account record of {format_address(address)}: {exc}") from None
    if not isinstance(record, list) or len(record) != 5:
        raise StoreError(f"account record of {format_address(address)} is not a 5-item array")
    public_key, nonce, balance, roles, name = record
    return Account(public_key, nonce, balance, roles, name)


_DESCRIPTIONS: Final[dict[str, tuple[str, str]]] = {
    "sec_status": (
        "Node and chain status.",
        "Height, head, PBFT view, peers and sync state of the answering node.",
    ),
    "sec_sendTransaction": (
        "Submit a signed transaction.",
        "Decodes the canonical bytes (malformed: invalid params naming the field), admits the "
        "transaction to the mempool and gossips it. wait=mempool returns status pending; "
        "wait=commit waits up to timeout_s (max 60) and returns the block, index and receipt. "
        "A transaction already pending or committed is not an error: its status is returned. "
        "Errors: rejected (data.reason is the admission rule), timeout (it may still commit), "
        "busy (too many commit waits).",
    ),
    "sec_getTransaction": (
        "A transaction by hash, with its receipt and inclusion proof.",
        "Committed: height, index, receipt and an RFC 6962 inclusion proof under the block's "
        "tx_root (verify with ledger.merkle.verify_inclusion over leaf_hash(raw)). Pending: "
        "the transaction only. Otherwise not_found.",
    ),
    "sec_getBlock": (
        "A block by height or hash (default: the latest).",
        "Header, header hash and transaction hashes; full=true adds transactions and receipts.",
    ),
    "sec_getCommit": (
        "A block header with its commit certificate.",
        "The certificate holds a quorum ((n+f)//2+1) of validator signatures over the header "
        "hash. Genesis (height 0) has none: certificate is null, the block is trusted through "
        "the genesis file.",
    ),
    "sec_getValidators": (
        "The validator set that certifies a block (default: the latest).",
        "Members in set order (sorted by address), quorum (n+f)//2+1 and f, and the "
        "validators_hash that the block header commits to.",
    ),
    "sec_getAccount": (
        "An account, optionally with a state proof.",
        "Read from committed state. prove=true adds the state proof of the account record under "
        "state_root (membership, or non-membership with exists=false for an unknown account); "
        "verify with ledger.state_tree.verify_state_proof(state_root, b'acct:' + address, "
        "value, proof). Without prove an unknown account is not_found.",
    ),
    "sec_getOrder": (
        "An order, optionally with a state proof.",
        "Read from committed state: the order record (state, parties, amounts, deadline of the "
        "current state, settlement) and the lines of its order.create transaction. prove=true "
        "adds the state proof of the record under state_root (non-membership with exists=false "
        "for an unknown id); verify with ledger.state_tree.verify_state_proof(state_root, "
        "b'order:' + order_id, value, proof). Without prove an unknown order is not_found.",
    ),
    "sec_listOrders": (
        "An account's orders, by state and role, paginated by order id.",
        "Orders where `party` is merchant, buyer, arbiter, sharer or inviter, in increasing "
        "order id, optionally only one state and/or role. Pass next_cursor back as cursor for "
        "the next page; null means the listing is complete. A page may hold fewer than limit "
        "orders (each call examines at most 1000 index entries).",
    ),
    "rpc.discover": (
        "This API as an OpenRPC 1.2.6 document.",
        "Generated from the same models that validate the parameters.",
    ),
}


def _admits_at_once(params: Any) -> bool:
    """sec_sendTransaction answers without suspending unless it waits for the commit."""
    return isinstance(params, m.SendTransactionParams) and params.wait != "commit"


def method_table(
    view: NodeView,
    max_commit_waiters: int = DEFAULT_MAX_COMMIT_WAITERS,
    worker: Worker | None = None,
) -> dict[str, Method]:
    """Every method by name, `rpc.discover` included (its document is built once). `worker`
    runs heavy work off the event loop (share the dispatcher's, so one cap holds for both)."""
    impl = RpcMethods(view, max_commit_waiters, worker)
    specs: list[tuple[str, type[Any], type[Any], Any, tuple[int, ...]]] = [
        ("sec_status", m.NoParams, m.StatusResult, impl.status, ()),
        (
            "sec_sendTransaction",
            m.SendTransactionParams,
            m.SendTransactionResult,
            impl.send_transaction,
            (REJECTED.code, TIMEOUT.code, BUSY.code),
        ),
        (
            "sec_getTransaction",
            m.GetTransactionParams,
            m.TransactionResult,
            impl.get_transaction,
            (NOT_FOUND.code, PRUNED.code),
        ),
        (
            "sec_getBlock",
            m.GetBlockParams,
            m.BlockResult,
            impl.get_block,
            (NOT_FOUND.code, PRUNED.code),
        ),
        (
            "sec_getCommit",
            m.HeightParams,
            m.CommitResult,
            impl.get_commit,
            (NOT_FOUND.code, PRUNED.code),
        ),
        (
            "sec_getValidators",
            m.HeightParams,
            m.ValidatorsResult,
            impl.get_validators,
            (NOT_FOUND.code,),
        ),
        (
            "sec_getAccount",
            m.GetAccountParams,
            m.AccountResult,
            impl.get_account,
            (NOT_FOUND.code,),
        ),
        ("sec_getOrder", m.GetOrderParams, m.OrderResult, impl.get_order, (NOT_FOUND.code,)),
        ("sec_listOrders", m.ListOrdersParams, m.ListOrdersResult, impl.list_orders, ()),
    ]
    table: dict[str, Method] = {}
    for name, params, result, call, errors in specs:
        summary, description = _DESCRIPTIONS[name]
        heavy, waits = name == "sec_getBlock", name == "sec_sendTransaction"
        table[name] = Method(
            name,
            summary,
            description,
            params,
            result,
            call,
            errors,
            heavy,
            waits,
            _admits_at_once if name == "sec_sendTransaction" else None,
        )
    table.update(trust_method_table(view))
    table.update(validator_method_table(view))
    table.update(review_method_table(view))
    table.update(group_method_table(view))
    table.update(subscription_method_table())
    table.update(console_method_table(view, impl.worker))
    document: dict[str, Any] = {}

    async def discover(params: m.NoParams) -> m.OpenRpcDocument:
        return m.OpenRpcDocument(document)

    summary, description = _DESCRIPTIONS["rpc.discover"]
    table["rpc.discover"] = Method(
        "rpc.discover", summary, description, m.NoParams, m.OpenRpcDocument, discover
    )
    document.update(build_document(table))
    return table
