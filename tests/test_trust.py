"""Trust attestations and epochs on a development chain with the contracts: each attestation
rule (`test_invalid_*`), the attestation log and its root, and epoch scheduling and records."""

from __future__ import annotations

from typing import Any

import pytest

from contracts.eigentrust import Attestation, TrustScore, compute_scores, inputs_root, scores_root
from contracts.epochs import (
    EPOCH_KEY,
    PENDING_KEY,
    SCORE_PREFIX,
    get_epoch,
    get_pending,
    get_score,
    parse_epoch_record,
)
from contracts.orders import (
    COMPLETED,
    RESOLVED,
    OrderCancel,
    OrderConfirm,
    OrderDispute,
    OrderPay,
    OrderResolve,
    OrderShip,
)
from contracts.trust import (
    Attest,
    get_counts,
    get_log,
    load_attestations,
    log_root,
)
from ledger.accounts import account_key
from ledger.encoding import decode
from ledger.receipts import Receipt
from tests.orderkit import OrderChain, order_genesis, shipment

TOTAL = 2 * 1_000 + 500  # the default order of OrderChain.create
ATTEST_WINDOW_S = 100


def make_chain(**parameters: int) -> OrderChain:
    settings = {"attest_window_s": ATTEST_WINDOW_S, "trust_epoch_blocks": 1_000, **parameters}
    return OrderChain(genesis=order_genesis(**settings))


@pytest.fixture
def chain() -> OrderChain:
    return make_chain()


def complete(chain: OrderChain, buyer: str = "buyer2", sharer: str | None = None) -> bytes:
    """An order of merchant1 for `buyer` taken to COMPLETED; its id."""
    order_id = chain.create(
        buyer=buyer, sharer=sharer, commission_bps=None if sharer is None else 500
    )
    for name, tx_type, body in (
        (buyer, "order.pay", OrderPay(order_id, TOTAL)),
        ("merchant1", "order.ship", OrderShip(order_id, shipment(order_id.hex()))),
        (buyer, "order.confirm", OrderConfirm(order_id)),
    ):
        receipt = chain.send(name, tx_type, body)
        assert receipt.ok, receipt
    chain.run([], at_s=chain.now + 11)  # the 10 s return window passes
    assert chain.order(order_id).state == COMPLETED
    return order_id


def attest(chain: OrderChain, name: str, order_id: bytes, subject: str, value: int = 1) -> Receipt:
    return chain.send(name, "trust.attest", Attest(order_id, chain.address(subject), value))


def rejected(
    chain: OrderChain, name: str, body: Attest, code: str, at_s: int | None = None
) -> None:
    """The attestation fails with `code` and changes nothing but the sender's nonce."""
    before = dict(chain.state.committed)
    receipt = chain.send(name, "trust.attest", body, at_s)
    assert (receipt.ok, receipt.code) == (False, code), receipt
    changed = {
        key
        for key in set(before) | set(chain.state.committed)
        if before.get(key) != chain.state.committed.get(key)
    }
    # The deadline hook may tidy its due-queue in any block; nothing else may change.
    changed = {key for key in changed if not key.startswith(b"due")}
    assert changed <= {account_key(chain.address(name))}, sorted(changed)


# --- the rules ---------------------------------------------------------------------------------


def test_parties_attest_about_each_other(chain: OrderChain) -> None:
    order_id = complete(chain, sharer="sharer1")
    for name, subject, value in (
        ("buyer2", "merchant1", 1),
        ("buyer2", "sharer1", -1),
        ("merchant1", "buyer2", 1),
    ):
        receipt = attest(chain, name, order_id, subject, value)
        assert receipt.ok, receipt
        (event,) = receipt.events
        assert event["event"] == "trust.attested" and event["value"] == value
    records = load_attestations(chain.state, 3)
    completed_s = chain.order(order_id).updated_s
    assert records[0] == Attestation(
        order_id,
        chain.address("buyer2"),
        chain.address("merchant1"),
        1,
        TOTAL,
        completed_s,
        records[0].height,
    )
    assert [r.value for r in records] == [1, -1, 1]
    assert get_counts(chain.state, chain.address("buyer2")) == (1, 2)
    assert get_counts(chain.state, chain.address("merchant1")) == (1, 1)


def test_a_resolved_order_can_be_attested(chain: OrderChain) -> None:
    order_id = chain.create(buyer="buyer2")
    chain.send("buyer2", "order.pay", OrderPay(order_id, TOTAL))
    chain.send("buyer2", "order.dispute", OrderDispute(order_id, None))
    chain.send("arbiter", "order.resolve", OrderResolve(order_id, 1_000))
    assert chain.order(order_id).state == RESOLVED
    assert attest(chain, "buyer2", order_id, "merchant1", -1).ok
    assert attest(chain, "merchant1", order_id, "buyer2", -1).ok


def test_invalid_unknown_order(chain: OrderChain) -> None:
    body = Attest(bytes(32), chain.address("merchant1"), 1)
    rejected(chain, "buyer2", body, "unknown_order")


@pytest.mark.parametrize("stage", ["created", "funded", "shipped", "received", "cancelled"])
def test_invalid_order_not_completed(chain: OrderChain, stage: str) -> None:
    order_id = chain.create(buyer="buyer2")
    plans: dict[str, list[tuple[str, str, Any]]] = {
        "created": [],
        "cancelled": [("buyer2", "order.cancel", OrderCancel(order_id))],
        "funded": [("buyer2", "order.pay", OrderPay(order_id, TOTAL))],
        "shipped": [
            ("buyer2", "order.pay", OrderPay(order_id, TOTAL)),
            ("merchant1", "order.ship", OrderShip(order_id, shipment("s"))),
        ],
        "received": [
            ("buyer2", "order.pay", OrderPay(order_id, TOTAL)),
            ("merchant1", "order.ship", OrderShip(order_id, shipment("s"))),
            ("buyer2", "order.confirm", OrderConfirm(order_id)),
        ],
    }
    for name, tx_type, body in plans[stage]:
        assert chain.send(name, tx_type, body).ok
    rejected(
        chain, "buyer2", Attest(order_id, chain.address("merchant1"), 1), "order_not_completed"
    )


def test_invalid_attester_not_buyer_or_merchant(chain: OrderChain) -> None:
    order_id = complete(chain, sharer="sharer1")
    for outsider in ("sharer1", "arbiter", "buyer3"):
        body = Attest(order_id, chain.address("buyer2"), 1)
        rejected(chain, outsider, body, "wrong_actor")


@pytest.mark.parametrize(
    ("attester", "subject"),
    [
        ("buyer2", "buyer2"),
        ("buyer2", "arbiter"),
        ("buyer2", "sharer1"),  # the order has no sharer
        ("merchant1", "merchant1"),
        ("merchant1", "arbiter"),
        ("buyer2", "buyer3"),
    ],
)
def test_invalid_subject(chain: OrderChain, attester: str, subject: str) -> None:
    order_id = complete(chain)
    rejected(chain, attester, Attest(order_id, chain.address(subject), 1), "invalid_subject")


def test_invalid_subject_merchant_about_sharer(chain: OrderChain) -> None:
    order_id = complete(chain, sharer="sharer1")
    body = Attest(order_id, chain.address("sharer1"), 1)
    rejected(chain, "merchant1", body, "invalid_subject")


def test_invalid_attest_window_closed(chain: OrderChain) -> None:
    order_id = complete(chain)
    completed_s = chain.order(order_id).updated_s
    body = Attest(order_id, chain.address("merchant1"), 1)
    rejected(chain, "buyer2", body, "attest_window_closed", at_s=completed_s + ATTEST_WINDOW_S)
    # One second earlier is still inside the window (checked on a fresh order).
    other = complete(chain)
    inside = chain.order(other).updated_s + ATTEST_WINDOW_S - 1
    assert attest_at(chain, other, inside).ok


def attest_at(chain: OrderChain, order_id: bytes, at_s: int) -> Receipt:
    return chain.send(
        "buyer2", "trust.attest", Attest(order_id, chain.address("merchant1"), 1), at_s
    )


def test_invalid_already_attested(chain: OrderChain) -> None:
    order_id = complete(chain)
    assert attest(chain, "buyer2", order_id, "merchant1").ok
    body = Attest(order_id, chain.address("merchant1"), -1)
    rejected(chain, "buyer2", body, "already_attested")
    # The same pair on another order is a new attestation.
    assert attest(chain, "buyer2", complete(chain), "merchant1").ok


def test_invalid_value_is_rejected_by_the_schema(chain: OrderChain) -> None:
    from ledger.errors import MalformedTransaction
    from ledger.schema import parse_struct

    for value in (0, 2, -2, True):
        with pytest.raises(MalformedTransaction, match="value"):
            parse_struct(
                Attest,
                {"order_id": bytes(32), "subject": bytes(20), "value": value},
                "body",
            )


# --- the log -----------------------------------------------------------------------------------


def test_the_log_root_is_the_rfc6962_root_of_all_attestations() -> None:
    chain = make_chain()
    roots = []
    for _ in range(5):
        order_id = complete(chain)
        assert attest(chain, "buyer2", order_id, "merchant1").ok
        assert attest(chain, "merchant1", order_id, "buyer2", -1).ok
        count, _ = get_log(chain.state)
        assert log_root(chain.state) == inputs_root(load_attestations(chain.state, count))
        roots.append(log_root(chain.state))
    assert len(set(roots)) == 5


# --- epochs ------------------------------------------------------------------------------------


def run_to(chain: OrderChain, height: int) -> None:
    while chain.head.height < height:
        chain.run([])


def test_epoch_inputs_are_fixed_at_the_input_height_and_committed_later() -> None:
    chain = make_chain(trust_epoch_blocks=20, trust_epoch_delay=3)
    order_id = complete(chain)
    assert attest(chain, "buyer2", order_id, "merchant1").ok
    run_to(chain, 20)  # blocks 1..20: the inputs of epoch 1
    assert get_pending(chain.state) == (1, [])
    chain.run([])  # block 21 fixes epoch 1 ...
    next_epoch, (pending,) = get_pending(chain.state)
    assert (next_epoch, pending.epoch, pending.input_height, pending.due_height) == (2, 1, 20, 23)
    assert pending.attestations == 1
    # ... an attestation after the input height is not an input of epoch 1.
    assert attest(chain, "merchant1", order_id, "buyer2").ok
    run_to(chain, 22)
    assert get_epoch(chain.state) is None
    chain.run([])  # block 23 commits it
    epoch = get_epoch(chain.state)
    assert epoch is not None
    assert (epoch.epoch, epoch.input_height, epoch.committed_height) == (1, 20, 23)
    assert epoch.attestations == 1
    inputs = load_attestations(chain.state, 1)
    assert epoch.inputs_root == inputs_root(inputs)
    scores = compute_scores(inputs, epoch.parameters)
    assert epoch.scores_root == scores_root(scores)
    assert epoch.accounts == len(scores)
    for score in scores:
        assert get_score(chain.state, score.address) == (
            score.score,
            score.positive,
            score.negative,
        )
    assert get_epoch(chain.state, 1) == epoch
    assert get_pending(chain.state) == (2, [])


def test_parameters_and_pretrusted_set_are_committed_with_the_epoch() -> None:
    chain = make_chain(trust_epoch_blocks=5, trust_epoch_delay=1, trust_iterations=7)
    run_to(chain, 6)
    epoch = get_epoch(chain.state)
    assert epoch is not None and epoch.committed_height == 6
    params = epoch.parameters
    assert params.iterations == 7
    assert params.pretrusted == tuple(sorted(chain.address(n) for n in ("merchant1", "buyer1")))
    raw = chain.state.get(EPOCH_KEY)
    assert raw is not None and parse_epoch_record(raw) == epoch
    assert decode(raw)["parameters"]["scale"] == 10**9
    # Without attestations only the pre-trusted accounts are scored.
    scored = [k for k, _ in chain.state.iterate_prefix(SCORE_PREFIX)]
    assert len(scored) == 2


def test_later_epochs_rescore_every_account_and_keep_the_history() -> None:
    chain = make_chain(trust_epoch_blocks=30, trust_epoch_delay=2)
    first = complete(chain, sharer="sharer1")
    assert attest(chain, "buyer2", first, "merchant1").ok
    run_to(chain, 32)
    one = get_epoch(chain.state)
    second = complete(chain, buyer="buyer3")
    assert attest(chain, "buyer3", second, "merchant1").ok
    assert attest(chain, "merchant1", second, "buyer3").ok
    assert attest(chain, "buyer2", first, "sharer1", -1).ok
    run_to(chain, 62)
    two = get_epoch(chain.state)
    assert one is not None and two is not None and (one.epoch, two.epoch) == (1, 2)
    assert get_epoch(chain.state, 1) == one
    scores = compute_scores(load_attestations(chain.state, two.attestations), two.parameters)
    assert scores_root(scores) == two.scores_root
    stored = [
        TrustScore(key[len(SCORE_PREFIX) :], *decode(value))
        for key, value in chain.state.iterate_prefix(SCORE_PREFIX)
    ]
    assert stored == scores
    assert get_score(chain.state, chain.address("sharer1")) == (
        next(s.score for s in scores if s.address == chain.address("sharer1")),
        0,
        1,
    )


def test_an_epoch_with_a_delay_longer_than_the_epoch_queues() -> None:
    chain = make_chain(trust_epoch_blocks=2, trust_epoch_delay=5)
    run_to(chain, 7)
    next_epoch, queue = get_pending(chain.state)
    assert [p.input_height for p in queue] == [4, 6] and next_epoch == 4
    epoch = get_epoch(chain.state)
    assert epoch is not None and (epoch.epoch, epoch.input_height) == (1, 2)
    assert chain.state.get(PENDING_KEY) is not None


def test_the_minimum_order_value_and_rule_version_are_committed_with_the_epoch() -> None:
    chain = make_chain(trust_epoch_blocks=5, trust_epoch_delay=1, trust_min_order_fen=3_000)
    order_id = complete(chain)  # 2 500 fen: below this chain's minimum
    assert attest(chain, "buyer2", order_id, "merchant1").ok
    run_to(chain, chain.head.height + 6)
    epoch = get_epoch(chain.state)
    assert epoch is not None and epoch.attestations == 1
    assert epoch.parameters.min_order_fen == 3_000
    raw = chain.state.get(EPOCH_KEY)
    assert raw is not None
    wire = decode(raw)["parameters"]
    assert (wire["version"], wire["min_order_fen"]) == (2, 3_000)
    # Below the minimum, the attestation still counts in the beta counts.
    merchant = get_score(chain.state, chain.address("merchant1"))
    assert merchant is not None and merchant[1:] == (1, 0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": 1}, "rule version 1"),
        ({"min_order_fen": 0}, "min_order_fen >= 1"),
    ],
)
def test_invalid_epoch_parameters_of_another_rule(change: dict[str, Any], message: str) -> None:
    from contracts.eigentrust import TrustParameters
    from contracts.epochs import parse_parameters
    from ledger.errors import DecodeError

    wire = TrustParameters(20, 150_000, 4, 86_400, ()).to_wire()
    assert parse_parameters(wire) == TrustParameters(20, 150_000, 4, 86_400, ())
    with pytest.raises(DecodeError, match=message):
        parse_parameters(wire | change)
    without = {k: v for k, v in wire.items() if k != "version"}
    with pytest.raises(DecodeError, match="must be a map of"):
        parse_parameters(without)
