"""The read-only contract queries (orders_of, find_order, attestations_of, log_range, read_epoch,
read_score) on a real `State`, the state scans they rest on, and the paging guarantees of
`orders_of`: cursors are the last order id examined, and a page never rescans earlier rows."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from contracts import TX_TYPES
from contracts.epochs import EPOCH_KEY, epoch_key, get_epoch, read_epoch, read_score, score_key
from contracts.orders import (
    CREATED,
    FUNDED,
    OrderPay,
    OrdersPage,
    find_order,
    get_order,
    order_key,
    orders_of,
    party_key,
)
from contracts.trust import (
    attestation_key,
    attestations_of,
    counts_key,
    load_attestations,
    log_range,
    log_size,
    logged_attestation,
)
from ledger.encoding import encode
from ledger.errors import StoreError
from ledger.kv import MemoryStore
from ledger.state import State, StateScanner
from ledger.store import ChainStore, CommittedState
from tests.orderkit import OrderChain, order_genesis
from tests.test_trust import TOTAL, attest, complete, make_chain, run_to

# --- the scans ---------------------------------------------------------------------------------


def test_state_scan_sees_the_overlay_in_key_order_and_starts_after_the_cursor() -> None:
    state = State({b"p:" + bytes([i]): b"old" for i in range(5)} | {b"q:": b"other"})
    state.set(b"p:" + bytes([9]), b"new")
    state.delete(b"p:" + bytes([3]))
    state.set(b"p:" + bytes([1]), b"changed")
    assert list(state.scan(b"p:")) == [
        (b"p:\x00", b"old"),
        (b"p:\x01", b"changed"),
        (b"p:\x02", b"old"),
        (b"p:\x04", b"old"),
        (b"p:\x09", b"new"),
    ]
    assert [key for key, _ in state.scan(b"p:", start_after=bytes([2]))] == [b"p:\x04", b"p:\x09"]
    assert list(state.scan(b"p:", start_after=bytes([9]))) == []


def test_committed_state_reads_the_committed_rows_not_the_overlay() -> None:
    state = State({b"p:\x01": b"a", b"p:\x02": b"b"})
    store = ChainStore(MemoryStore(), TX_TYPES)
    store.kv.write([(b"S" + key, value) for key, value in state.committed.items()])
    committed = CommittedState(state, store)
    state.set(b"p:\x03", b"pending")
    state.set(b"p:\x01", b"pending")
    assert committed.get(b"p:\x01") == b"a" and committed.get(b"p:\x03") is None
    assert list(committed.scan(b"p:")) == [(b"p:\x01", b"a"), (b"p:\x02", b"b")]
    assert list(committed.scan(b"p:", start_after=b"\x01")) == [(b"p:\x02", b"b")]


# --- orders ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def orders() -> tuple[OrderChain, list[bytes]]:
    """Eight orders of merchant1 (buyer1 and buyer2 alternating, the last with sharer1), the
    one with the smallest id paid; their ids in increasing order."""
    chain = OrderChain(genesis=order_genesis())
    created = [chain.create(buyer="buyer1" if n % 2 == 0 else "buyer2") for n in range(7)]
    created.append(chain.create(buyer="buyer2", sharer="sharer1", commission_bps=500))
    ids = sorted(created)
    buyer = "buyer1" if created.index(ids[0]) % 2 == 0 else "buyer2"
    assert chain.send(buyer, "order.pay", OrderPay(ids[0], TOTAL)).ok
    return chain, ids


def _ids(page: OrdersPage) -> list[bytes]:
    return [entry.order_id for entry in page.orders]


def test_orders_of_lists_every_order_of_a_party_with_its_role(
    orders: tuple[OrderChain, list[bytes]],
) -> None:
    chain, ids = orders
    page = orders_of(chain.state, chain.address("merchant1"), limit=100)
    assert _ids(page) == ids and page.next_after is None
    assert {entry.role for entry in page.orders} == {"merchant"}
    assert [entry.order for entry in page.orders] == [chain.order(i) for i in ids]
    shared = orders_of(chain.state, chain.address("sharer1"), limit=100)
    assert [(e.role, e.order.sharer) for e in shared.orders] == [
        ("sharer", chain.address("sharer1"))
    ]
    assert orders_of(chain.state, chain.address("buyer3"), limit=5) == OrdersPage((), None)


def test_orders_of_filters_by_role_and_state(orders: tuple[OrderChain, list[bytes]]) -> None:
    chain, ids = orders
    merchant, buyer2 = chain.address("merchant1"), chain.address("buyer2")
    assert _ids(orders_of(chain.state, merchant, in_state=FUNDED, limit=100)) == [ids[0]]
    created = orders_of(chain.state, merchant, in_state=CREATED, limit=100)
    assert _ids(created) == ids[1:]
    as_buyer = orders_of(chain.state, buyer2, role="buyer", limit=100)
    assert len(as_buyer.orders) == 4 and {e.role for e in as_buyer.orders} == {"buyer"}
    assert orders_of(chain.state, buyer2, role="merchant", limit=100).orders == ()


def test_the_cursor_is_the_last_order_id_of_a_full_page(
    orders: tuple[OrderChain, list[bytes]],
) -> None:
    chain, ids = orders
    merchant = chain.address("merchant1")
    first = orders_of(chain.state, merchant, limit=3)
    assert _ids(first) == ids[:3] and first.next_after == ids[2]
    second = orders_of(chain.state, merchant, after=first.next_after, limit=3)
    assert _ids(second) == ids[3:6] and second.next_after == ids[5]
    last = orders_of(chain.state, merchant, after=second.next_after, limit=3)
    assert _ids(last) == ids[6:] and last.next_after is None
    # A page that ends exactly at the last order does not know it is the last.
    exact = orders_of(chain.state, merchant, after=ids[4], limit=3)
    assert _ids(exact) == ids[5:] and exact.next_after is None


def test_a_capped_examination_returns_a_short_page_whose_cursor_is_the_last_examined(
    orders: tuple[OrderChain, list[bytes]],
) -> None:
    chain, ids = orders
    merchant = chain.address("merchant1")
    page = orders_of(chain.state, merchant, in_state=CREATED, limit=10, max_examined=2)
    assert _ids(page) == [ids[1]] and page.next_after == ids[1]
    skipped = orders_of(
        chain.state, merchant, in_state=FUNDED, after=ids[0], limit=10, max_examined=2
    )
    assert skipped.orders == () and skipped.next_after == ids[2]


@dataclass
class CountingScanner:
    """A `StateScanner` that records each scan's start and counts the rows it hands out."""

    inner: StateScanner
    starts: list[bytes | None] = field(default_factory=list)
    rows: int = 0

    def get(self, key: bytes) -> bytes | None:
        return self.inner.get(key)

    def scan(
        self, prefix: bytes, *, start_after: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        self.starts.append(start_after)
        for row in self.inner.scan(prefix, start_after=start_after):
            self.rows += 1
            yield row


def test_paging_seeks_past_the_cursor_and_reads_one_row_past_the_page(
    orders: tuple[OrderChain, list[bytes]],
) -> None:
    chain, ids = orders
    counting = CountingScanner(chain.state)
    seen: list[bytes] = []
    cursor: bytes | None = None
    rows_per_page = []
    while True:
        before = counting.rows
        page = orders_of(counting, chain.address("merchant1"), after=cursor, limit=3)
        rows_per_page.append(counting.rows - before)
        seen += _ids(page)
        cursor = page.next_after
        if cursor is None:
            break
    assert seen == ids
    assert counting.starts == [None, ids[2], ids[5]]
    assert rows_per_page == [4, 4, 2]  # each page and the one look-ahead row, nothing before


def test_paging_the_store_gives_what_paging_the_state_gives(
    orders: tuple[OrderChain, list[bytes]],
) -> None:
    chain, _ = orders
    store = ChainStore(MemoryStore(), TX_TYPES)
    store.kv.write([(b"S" + key, value) for key, value in chain.state.committed.items()])
    committed = CommittedState(chain.state, store)
    for name in ("merchant1", "buyer1", "buyer2", "sharer1"):
        address = chain.address(name)
        for limit in (1, 2, 3, 5):
            state_cursor: bytes | None = None
            while True:
                from_state = orders_of(chain.state, address, after=state_cursor, limit=limit)
                from_store = orders_of(committed, address, after=state_cursor, limit=limit)
                assert from_store == from_state
                state_cursor = from_state.next_after
                if state_cursor is None:
                    break


def test_find_order_reads_the_record_or_none(orders: tuple[OrderChain, list[bytes]]) -> None:
    chain, ids = orders
    assert find_order(chain.state, ids[0]) == get_order(chain.state, ids[0])
    assert find_order(chain.state, bytes(32)) is None


def _state_with(rows: dict[bytes, bytes]) -> State:
    return State(dict(rows))


def test_invalid_order_record_is_a_store_error() -> None:
    state = _state_with({order_key(bytes(32)): encode(["not", "an", "order"])})
    with pytest.raises(StoreError, match=f"order record {bytes(32).hex()}"):
        find_order(state, bytes(32))


def test_invalid_party_index_naming_an_absent_order_is_a_store_error() -> None:
    party = bytes(20)
    state = _state_with({party_key(party, bytes(32)): encode("buyer")})
    with pytest.raises(StoreError, match=f"names order {bytes(32).hex()}, which is absent"):
        orders_of(state, party, limit=1)


def test_invalid_party_index_role_is_a_store_error() -> None:
    party = bytes(20)
    state = _state_with({party_key(party, bytes(32)): encode(7)})
    with pytest.raises(StoreError, match="is not a role"):
        orders_of(state, party, limit=1)
    state = _state_with({party_key(party, bytes(32)): b"\xc1"})
    with pytest.raises(StoreError, match="party index entry of order"):
        orders_of(state, party, limit=1)


@pytest.mark.parametrize(
    ("party", "limit", "max_examined", "message"),
    [
        (bytes(19), 1, None, "is 19 bytes, not an address"),
        (bytes(20), 0, None, "limit must be at least 1, not 0"),
        (bytes(20), 1, 0, "max_examined must be at least 1, not 0"),
    ],
)
def test_invalid_orders_of_arguments(
    party: bytes, limit: int, max_examined: int | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        orders_of(State(), party, limit=limit, max_examined=max_examined)


# --- attestations and epochs -------------------------------------------------------------------


@pytest.fixture(scope="module")
def attested() -> OrderChain:
    """Epoch 1 (committed at block 6, without inputs), then two completed orders and four
    attestations, then blocks until an epoch whose inputs hold all four is committed."""
    chain = make_chain(trust_epoch_blocks=5, trust_epoch_delay=1)
    run_to(chain, 6)
    first = complete(chain, sharer="sharer1")
    second = complete(chain)
    for name, order_id, subject, value in (
        ("buyer2", first, "merchant1", 1),
        ("buyer2", first, "sharer1", -1),
        ("merchant1", first, "buyer2", 1),
        ("buyer2", second, "merchant1", 1),
    ):
        assert attest(chain, name, order_id, subject, value).ok
    run_to(chain, 5 * (chain.head.height // 5 + 1) + 1)
    return chain


def test_attestations_of_pages_through_an_address_in_each_role(attested: OrderChain) -> None:
    chain = attested
    everything = load_attestations(chain.state, log_size(chain.state))
    buyer2, merchant = chain.address("buyer2"), chain.address("merchant1")
    by_buyer = attestations_of(chain.state, buyer2, "attester", limit=2)
    assert by_buyer.total == 3 and by_buyer.next_position == 2
    assert [a.sequence for a in by_buyer.attestations] == [0, 1]
    rest = attestations_of(chain.state, buyer2, "attester", start=2, limit=2)
    assert [a.sequence for a in rest.attestations] == [3] and rest.next_position is None
    for logged in by_buyer.attestations + rest.attestations:
        assert logged.attestation == everything[logged.sequence]
        assert logged.attestation.attester == buyer2
    about = attestations_of(chain.state, merchant, "subject", limit=10)
    assert [a.sequence for a in about.attestations] == [0, 3] and about.total == 2
    assert attestations_of(chain.state, merchant, "subject", start=5, limit=1).attestations == ()
    nobody = attestations_of(chain.state, chain.address("buyer3"), "subject", limit=5)
    assert (nobody.total, nobody.attestations, nobody.next_position) == (0, (), None)


def test_the_log_is_read_by_sequence(attested: OrderChain) -> None:
    chain = attested
    assert log_size(chain.state) == 4
    leaves = list(log_range(chain.state, 1, 3))
    assert [logged.sequence for logged in leaves] == [1, 2]
    assert [logged.leaf for logged in leaves] == [
        chain.state.get(attestation_key(n)) for n in (1, 2)
    ]
    assert logged_attestation(chain.state, 3).attestation.value == 1


def test_read_epoch_gives_the_record_its_key_and_bytes(attested: OrderChain) -> None:
    chain = attested
    latest = read_epoch(chain.state)
    assert latest is not None and latest.key == EPOCH_KEY
    assert latest.raw == chain.state.get(EPOCH_KEY) and latest.record == get_epoch(chain.state)
    assert latest.record.attestations == 4
    first = read_epoch(chain.state, 1)
    assert first is not None and first.key == epoch_key(1) and first.record.attestations == 0
    assert first.raw == chain.state.get(epoch_key(1))
    assert read_epoch(chain.state, latest.record.epoch + 1) is None
    assert read_epoch(State()) is None


def test_read_score_is_the_record_or_zero(attested: OrderChain) -> None:
    chain = attested
    merchant = chain.address("merchant1")
    score = read_score(chain.state, merchant)
    assert score.key == score_key(merchant) and score.raw == chain.state.get(score_key(merchant))
    assert score.positive == 2 and score.negative == 0 and score.score > 0
    unscored = read_score(chain.state, chain.address("buyer3"))
    assert (unscored.raw, unscored.score, unscored.positive, unscored.negative) == (
        None,
        0,
        0,
        0,
    )


def test_invalid_missing_attestation_is_a_store_error() -> None:
    address = bytes(20)
    state = _state_with({counts_key(address): encode([1, 0])})
    with pytest.raises(StoreError, match=r"attestation index subject 0 of sec\w+ is missing"):
        attestations_of(state, address, "subject", limit=1)
    with pytest.raises(StoreError, match="attestation 5 is missing from state"):
        logged_attestation(state, 5)


def test_invalid_epoch_and_score_records_are_store_errors() -> None:
    state = _state_with({EPOCH_KEY: encode({"epoch": 1}), score_key(bytes(20)): encode([1, 2])})
    with pytest.raises(StoreError, match="epoch record latest"):
        read_epoch(state)
    with pytest.raises(StoreError, match="score record of"):
        read_score(state, bytes(20))
