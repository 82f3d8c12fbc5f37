"""Models of WebSocket subscriptions (sec_subscribe, sec_unsubscribe, sec_subscription).

A notification's `result` is one of `NewHead` (kind newHeads), `OrderEvent` (kind orderEvents)
or `EpochJson` (kind epochs, the epoch model of the trust methods), built from the same ledger
objects as the ordinary methods' answers (docs/rpc.md "Subscriptions").
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, RootModel, model_validator

from ledger.receipts import Receipt as LedgerReceipt
from ledger.transactions import SignedTransaction
from secnode.schema.models import AddressText
from secnode.schema.objects import BlockHeader, Receipt
from secnode.schema.values import Hash32, StrictModel

SubscriptionKind = Literal["newHeads", "orderEvents", "epochs"]


class SubscribeParams(StrictModel):
    kind: SubscriptionKind = Field(
        description="newHeads: every committed header; orderEvents: receipts of transactions "
        "touching `address`; epochs: every committed trust epoch"
    )
    address: AddressText | None = Field(
        None, description="account or merchant address; required by (only) orderEvents"
    )

    @model_validator(mode="after")
    def _address_matches_kind(self) -> SubscribeParams:
        if self.kind == "orderEvents" and self.address is None:
            raise ValueError("kind orderEvents needs an account or merchant address")
        if self.kind != "orderEvents" and self.address is not None:
            raise ValueError(f"kind {self.kind} takes no address")
        return self


class UnsubscribeParams(StrictModel):
    subscription: Annotated[str, Field(max_length=64)] = Field(
        description="id returned by sec_subscribe"
    )


class SubscriptionId(RootModel[str]):
    """The id of a new subscription; notifications carry it as `params.subscription`."""


class Unsubscribed(RootModel[bool]):
    """True if the subscription existed on this connection (and is now gone)."""


class NewHead(StrictModel):
    """A committed block's header (kind newHeads)."""

    hash: Hash32
    header: BlockHeader


class OrderEvent(StrictModel):
    """A committed transaction touching the subscribed address (kind orderEvents): its sender,
    a party in its body, or a party in its receipt's events."""

    height: int
    index: int = Field(description="position of the transaction in the block")
    tx_hash: Hash32
    type: str = Field(description="transaction type, e.g. order.create")
    receipt: Receipt

    @classmethod
    def of(
        cls, height: int, index: int, tx: SignedTransaction, receipt: LedgerReceipt
    ) -> OrderEvent:
        return cls(
            height=height,
            index=index,
            tx_hash=tx.hash,
            type=tx.type,
            receipt=Receipt.of(receipt),
        )
