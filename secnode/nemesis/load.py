"""Clients of the nemesis: threads that submit transfers and orders over JSON-RPC all the time.

Each client signs as one development account (so no two clients share a nonce sequence) and
submits with `wait=commit` to a node drawn at random (a faulted one too: a client cannot know).
A transaction is *acknowledged* when a node answers `status: committed`; its hash, height and
block hash go into `Acknowledgements`, which the checker later requires on every node.

A submission that times out or meets a dead node keeps the same signed transaction and retries it
on another node (sending it again is idempotent), so a transaction is never signed twice with one
nonce. A rejection for its nonce makes the client read the account's nonce again.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Final

from contracts.orders import OrderCreate, OrderItem
from ledger.keys import PrivateKey, format_address
from ledger.transactions import SignedTransaction, Transfer, TxBody, sign_transaction
from secnode.client.rpc import RpcCallError, RpcClient, RpcClientError
from secnode.network.devnet import dev_account_key
from secnode.runtime.rpc.errors import REJECTED

COMMIT_WAIT_S: Final = 8.0
RPC_TIMEOUT_S: Final = COMMIT_WAIT_S + 4.0


@dataclass(frozen=True, slots=True)
class Acknowledged:
    """A transaction a node said was committed."""

    hash: str
    height: int
    block_hash: str
    kind: str
    node: int
    """Index of the node that acknowledged it."""


@dataclass(slots=True)
class Acknowledgements:
    """Thread-safe record of every acknowledgement and every failed submission."""

    items: list[Acknowledged] = field(default_factory=list)
    retries: int = 0
    rejections: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, item: Acknowledged) -> None:
        with self.lock:
            self.items.append(item)

    def since(self, start: int) -> list[Acknowledged]:
        with self.lock:
            return self.items[start:]

    def count(self) -> int:
        with self.lock:
            return len(self.items)

    def note_retry(self) -> None:
        with self.lock:
            self.retries += 1

    def note_rejection(self, reason: str) -> None:
        with self.lock:
            self.rejections[reason] = self.rejections.get(reason, 0) + 1


class Client(threading.Thread):
    """One account submitting one kind of transaction in a loop until `stop` is set."""

    def __init__(
        self,
        account: str,
        kind: str,
        counterparty: str,
        urls: list[str],
        acknowledgements: Acknowledgements,
        stop: threading.Event,
        seed: int,
    ) -> None:
        super().__init__(name=f"nemesis-client-{account}", daemon=True)
        self.key: PrivateKey = dev_account_key(account)
        self.kind = kind
        self.counterparty = dev_account_key(counterparty).address
        self.arbiter = dev_account_key("arbiter").address
        self.urls = urls
        self.acknowledgements = acknowledgements
        self.stop_event = stop
        self.random = random.Random(seed)
        self.chain_id: str | None = None
        self.genesis_hash: bytes = b""
        self.sequence = 0
        self.next_nonce = 0
        """One above the nonce of our last acknowledged transaction: a node that has not yet
        caught up would otherwise hand out a nonce already used."""

    def run(self) -> None:
        pending: SignedTransaction | None = None
        while not self.stop_event.is_set():
            index = self.random.randrange(len(self.urls))
            client = RpcClient(self.urls[index], RPC_TIMEOUT_S)
            try:
                if pending is None:
                    pending = self._sign(client)
                answer = client.call(
                    "sec_sendTransaction",
                    {"tx": pending.encoded.hex(), "wait": "commit", "timeout_s": COMMIT_WAIT_S},
                )
            except RpcCallError as exc:
                if exc.code == REJECTED.code:  # a nonce or admission rule: sign afresh
                    reason = exc.data.get("reason") if isinstance(exc.data, dict) else None
                    self.acknowledgements.note_rejection(str(reason))
                    pending = None
                    if reason == "nonce_too_low":
                        self.next_nonce = 0  # trust the chain's nonce again
                else:  # not committed in time, busy: it may still commit; send it again
                    self.acknowledgements.note_retry()
                self.stop_event.wait(0.2)
                continue
            except RpcClientError:
                self.acknowledgements.note_retry()  # node down, paused or slow: try another
                self.stop_event.wait(0.2)
                continue
            if answer.get("status") == "committed":
                self.acknowledgements.add(
                    Acknowledged(
                        answer["hash"], answer["height"], answer["block_hash"], self.kind, index
                    )
                )
                self.next_nonce = pending.nonce + 1
                pending = None

    def _sign(self, client: RpcClient) -> SignedTransaction:
        if self.chain_id is None:
            status = client.call("sec_status")
            self.chain_id = status["chain_id"]
            self.genesis_hash = bytes.fromhex(status["genesis_hash"])
        account = client.call("sec_getAccount", {"address": format_address(self.key.address)})
        self.sequence += 1
        body: TxBody
        if self.kind == "transfer":
            body = Transfer(self.counterparty, 1, f"nemesis {self.sequence}")
        else:
            item = OrderItem(f"sku-{self.sequence}", 1, 100)
            body = OrderCreate(self.counterparty, (item,), 0, self.arbiter, None, None)
        nonce = max(account["nonce"], self.next_nonce)
        return sign_transaction(
            self.key, self.chain_id, nonce, body, genesis_hash=self.genesis_hash
        )


CLIENTS: Final = (
    ("buyer1", "transfer", "merchant1"),
    ("buyer2", "transfer", "merchant2"),
    ("merchant1", "order", "buyer3"),
)
"""(account, kind, counterparty) of each client thread."""


def start_clients(
    urls: list[str], acknowledgements: Acknowledgements, stop: threading.Event, seed: int
) -> list[Client]:
    clients = [
        Client(account, kind, other, urls, acknowledgements, stop, seed + number)
        for number, (account, kind, other) in enumerate(CLIENTS)
    ]
    for client in clients:
        client.start()
    return clients
