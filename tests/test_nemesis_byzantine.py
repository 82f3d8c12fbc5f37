"""secnode.runtime.byzantine: the test-only liar is off by default and lies with its real key
when asked."""

from __future__ import annotations

import pytest

from consensus.messages import Prepare, PrePrepare, decode_message, encode_message
from contracts import TX_TYPES
from ledger.blocks import Block, BlockHeader, decode_block, transactions_root
from ledger.keys import PrivateKey, Signer, verify_signature
from p2p import P2PConfig, P2PHost, allowlist
from secnode.runtime.byzantine import (
    ENVIRONMENT_VARIABLE,
    ByzantineConfigError,
    ByzantineHost,
    make_host,
)

CHAIN = "sec-test"
KEY = PrivateKey.from_label("validator:byzantine-test")


def p2p_config() -> P2PConfig:
    return P2PConfig(
        chain_id=CHAIN,
        allowed_keys=allowlist([bytes(KEY.public_key)]),
        peers=(),
        listen_host="127.0.0.1",
        listen_port=0,
    )


def signed_pre_prepare(signer: Signer) -> PrePrepare:
    header = BlockHeader(
        chain_id=CHAIN,
        height=7,
        prev_hash=bytes(32),
        timestamp_ms=1_764_000_000_000,
        proposer=signer.address,
        view=3,
        tx_root=transactions_root(()),
        receipts_root=bytes(32),
        state_root=bytes(32),
        validators_hash=bytes(32),
    )
    block = Block(header, ())
    unsigned = PrePrepare(3, 7, block.hash(), bytes(32), block.encode(), signer.address, b"")
    return PrePrepare(
        3,
        7,
        block.hash(),
        bytes(32),
        block.encode(),
        signer.address,
        signer.sign(unsigned.signing_bytes(CHAIN)),
    )


def test_off_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENVIRONMENT_VARIABLE, raising=False)
    host = make_host(p2p_config(), Signer(KEY), CHAIN)
    assert type(host) is P2PHost


def test_invalid_behaviour_is_refused_naming_the_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, "lie-a-lot")
    with pytest.raises(ByzantineConfigError, match="'lie-a-lot' is not one of replay, equivocate"):
        make_host(p2p_config(), Signer(KEY), CHAIN)


def test_equivocation_signs_a_conflicting_pre_prepare_and_prepare(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, "equivocate")
    signer = Signer(KEY)
    host = make_host(p2p_config(), signer, CHAIN)
    assert isinstance(host, ByzantineHost)
    honest = signed_pre_prepare(signer)
    forged_bytes = host._conflicting(encode_message(honest))
    assert forged_bytes is not None
    forged = decode_message(forged_bytes)
    assert isinstance(forged, PrePrepare)
    assert (forged.view, forged.seq, forged.parent) == (honest.view, honest.seq, honest.parent)
    assert forged.digest != honest.digest
    # Well formed, only different:
    assert decode_block(forged.payload, TX_TYPES).hash() == forged.digest
    assert verify_signature(bytes(KEY.public_key), forged.signing_bytes(CHAIN), forged.signature)

    vote_unsigned = Prepare(3, 7, honest.digest, signer.address, b"")
    vote = Prepare(
        3, 7, honest.digest, signer.address, signer.sign(vote_unsigned.signing_bytes(CHAIN))
    )
    other_bytes = host._conflicting(encode_message(vote))
    assert other_bytes is not None
    other = decode_message(other_bytes)
    assert isinstance(other, Prepare)
    assert (other.view, other.seq) == (3, 7) and other.digest != vote.digest
    assert verify_signature(bytes(KEY.public_key), other.signing_bytes(CHAIN), other.signature)
