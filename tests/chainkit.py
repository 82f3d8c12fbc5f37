"""A small in-memory development chain for tests: genesis, keys by name, nonce tracking."""

from __future__ import annotations

from dataclasses import dataclass, field

from ledger.accounts import get_account, get_supply
from ledger.blocks import BlockHeader
from ledger.chain import BlockResult, build_block
from ledger.execution import BlockContext, Executor
from ledger.genesis import Genesis, genesis_block, genesis_state
from ledger.keys import PrivateKey
from ledger.receipts import Receipt
from ledger.state import State
from ledger.transactions import SignedTransaction, TxBody, sign_transaction
from secnode.network.devnet import dev_account_key, dev_genesis, validator_key


def require_type(tx_type: str, body: TxBody) -> None:
    """Tests still name the type they send, for the reader: it must be the body's own."""
    if tx_type != type(body).TYPE:
        raise AssertionError(f"{type(body).__name__} is a {type(body).TYPE}, not a {tx_type}")


@dataclass
class Chain:
    """Genesis state plus helpers to sign and apply transactions by account name."""

    genesis: Genesis = field(default_factory=dev_genesis)
    executor: Executor = field(init=False)
    state: State = field(init=False)
    head: BlockHeader = field(init=False)
    nonces: dict[str, int] = field(default_factory=dict)
    extra_keys: dict[str, PrivateKey] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.executor = Executor(self.genesis.chain_id, self.genesis.document_hash())
        self.state = genesis_state(self.genesis)
        self.head = genesis_block(self.genesis, self.state.compute_root()).header
        self.state.commit_block()

    def key(self, name: str) -> PrivateKey:
        return self.extra_keys.get(name) or dev_account_key(name)

    def address(self, name: str) -> bytes:
        return self.key(name).address

    def sign(
        self, name: str, tx_type: str, body: TxBody, nonce: int | None = None
    ) -> SignedTransaction:
        """Sign `body` as `name`; `tx_type` states the type the test means (checked)."""
        require_type(tx_type, body)
        if nonce is None:
            nonce = self.nonces.get(name, 0)
            self.nonces[name] = nonce + 1
        return sign_transaction(
            self.key(name),
            self.genesis.chain_id,
            nonce,
            body,
            genesis_hash=self.genesis.document_hash(),
        )

    def apply(self, tx: SignedTransaction, time_s: int = 1_800_000_000) -> Receipt:
        """Execute one transaction directly (no block) and commit it."""
        context = BlockContext(self.genesis.chain_id, self.head.height + 1, time_s)
        receipt = self.executor.apply_transaction(self.state, tx, context)
        self.state.commit_block()
        return receipt

    def block(self, txs: list[SignedTransaction], timestamp_ms: int | None = None) -> BlockResult:
        result = build_block(
            self.executor,
            self.state,
            self.head,
            txs,
            timestamp_ms=timestamp_ms or self.head.timestamp_ms + 1000,
            proposer=validator_key("node0").address,
            view=0,
        )
        self.state.commit_block()
        self.head = result.block.header
        return result

    def balance(self, name: str) -> int:
        account = get_account(self.state, self.address(name))
        return 0 if account is None else account.balance

    def total_credits(self) -> tuple[int, int]:
        """(sum of balances + escrow, minted - burned): equal when credits are conserved."""
        import msgpack

        from ledger.accounts import ACCOUNT_PREFIX

        total = sum(
            msgpack.unpackb(value)[2] for _, value in self.state.iterate_prefix(ACCOUNT_PREFIX)
        )
        supply = get_supply(self.state)
        return total + supply.escrow, supply.minted - supply.burned
