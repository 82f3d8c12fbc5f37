"""Execution rules of the core transaction types: one test_invalid_* per rejection rule."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts import TX_TYPES
from contracts.orders import OrderConfirm
from ledger.accounts import get_account, get_parameter
from ledger.errors import (
    InvalidSignature,
    NonceMismatch,
    UnknownAccount,
    WrongChain,
)
from ledger.keys import PrivateKey
from ledger.transactions import (
    AccountRegister,
    AccountRoles,
    Burn,
    Mint,
    ParameterSet,
    Transfer,
    ValidatorUpdate,
    sign_transaction,
)
from ledger.validator_state import current_validators, validators_at
from tests.chainkit import Chain


def test_transfer_moves_credits_and_bumps_nonce() -> None:
    chain = Chain()
    before = chain.balance("buyer1"), chain.balance("sharer1")
    receipt = chain.apply(
        chain.sign("buyer1", "credit.transfer", Transfer(chain.address("sharer1"), 500))
    )
    assert receipt.ok, receipt.message
    assert (chain.balance("buyer1"), chain.balance("sharer1")) == (before[0] - 500, before[1] + 500)
    account = get_account(chain.state, chain.address("buyer1"))
    assert account is not None and account.nonce == 1


def test_invalid_transfer_insufficient_balance_rolls_back_but_consumes_nonce() -> None:
    chain = Chain()
    balance = chain.balance("sharer1")
    tx = chain.sign("sharer1", "credit.transfer", Transfer(chain.address("buyer1"), balance + 1))
    receipt = chain.apply(tx)
    assert not receipt.ok and receipt.code == "insufficient_balance"
    assert chain.balance("sharer1") == balance
    account = get_account(chain.state, chain.address("sharer1"))
    assert account is not None and account.nonce == 1


def test_invalid_transfer_to_unregistered_recipient() -> None:
    chain = Chain()
    stranger = PrivateKey.from_label("stranger").address
    receipt = chain.apply(chain.sign("buyer1", "credit.transfer", Transfer(stranger, 1)))
    assert receipt.code == "unknown_account"


def test_invalid_transfer_to_self() -> None:
    chain = Chain()
    receipt = chain.apply(
        chain.sign("buyer1", "credit.transfer", Transfer(chain.address("buyer1"), 1))
    )
    assert receipt.code == "invalid_amount"


def test_invalid_wrong_chain_is_inadmissible() -> None:
    chain = Chain()
    tx = sign_transaction(
        chain.key("buyer1"),
        "other-chain",
        0,
        Transfer(chain.address("sharer1"), 1),
        genesis_hash=chain.genesis.document_hash(),
    )
    with pytest.raises(WrongChain, match="other-chain"):
        chain.apply(tx)


def test_invalid_nonce_replay_is_inadmissible() -> None:
    chain = Chain()
    tx = chain.sign("buyer1", "credit.transfer", Transfer(chain.address("sharer1"), 1))
    chain.apply(tx)
    with pytest.raises(NonceMismatch, match="expected 1"):
        chain.apply(tx)


def test_invalid_future_nonce_is_inadmissible() -> None:
    chain = Chain()
    with pytest.raises(NonceMismatch):
        chain.apply(
            chain.sign("buyer1", "credit.transfer", Transfer(chain.address("sharer1"), 1), nonce=5)
        )


def test_invalid_unregistered_sender_is_inadmissible() -> None:
    chain = Chain()
    chain.extra_keys["ghost"] = PrivateKey.from_label("ghost")
    with pytest.raises(UnknownAccount, match="not registered"):
        chain.apply(chain.sign("ghost", "credit.transfer", Transfer(chain.address("buyer1"), 1)))


def test_invalid_signature_is_inadmissible() -> None:
    chain = Chain()
    good = chain.sign("buyer1", "credit.transfer", Transfer(chain.address("sharer1"), 1))
    forged = sign_transaction(
        chain.key("buyer2"),
        good.chain_id,
        0,
        good.body,
        genesis_hash=chain.genesis.document_hash(),
    )
    from ledger.transactions import parse_transaction

    wire = good.to_wire() | {"signature": forged.signature}
    with pytest.raises(InvalidSignature):
        chain.apply(parse_transaction(wire, TX_TYPES))
    assert chain.balance("sharer1") == 10_000_00


def test_register_and_roles_by_admin() -> None:
    chain = Chain()
    newcomer = PrivateKey.from_label("newcomer")
    receipt = chain.apply(
        chain.sign(
            "admin", "account.register", AccountRegister(newcomer.public_key, ("member",), "new")
        )
    )
    assert receipt.ok, receipt.message
    receipt = chain.apply(
        chain.sign("admin", "account.roles", AccountRoles(newcomer.address, ("merchant",), ()))
    )
    assert receipt.ok
    account = get_account(chain.state, newcomer.address)
    assert account is not None and account.has_role("merchant") and account.has_role("member")


def test_invalid_register_by_non_admin() -> None:
    chain = Chain()
    newcomer = PrivateKey.from_label("newcomer")
    receipt = chain.apply(
        chain.sign("buyer1", "account.register", AccountRegister(newcomer.public_key, ("member",)))
    )
    assert receipt.code == "not_authorized"
    assert get_account(chain.state, newcomer.address) is None


def test_invalid_register_existing_account() -> None:
    chain = Chain()
    receipt = chain.apply(
        chain.sign(
            "admin",
            "account.register",
            AccountRegister(chain.key("buyer1").public_key, ("member",)),
        )
    )
    assert receipt.code == "account_exists"


def test_invalid_roles_grant_and_revoke_same() -> None:
    chain = Chain()
    receipt = chain.apply(
        chain.sign(
            "admin",
            "account.roles",
            AccountRoles(chain.address("buyer1"), ("merchant",), ("merchant",)),
        )
    )
    assert receipt.code == "invalid_parameter"


def test_invalid_admin_revokes_own_admin() -> None:
    chain = Chain()
    receipt = chain.apply(
        chain.sign("admin", "account.roles", AccountRoles(chain.address("admin"), (), ("admin",)))
    )
    assert receipt.code == "not_authorized"


def test_mint_and_burn_by_issuer_keep_conservation() -> None:
    chain = Chain()
    assert chain.apply(chain.sign("issuer", "credit.mint", Mint(chain.address("buyer1"), 777))).ok
    assert chain.apply(chain.sign("issuer", "credit.burn", Burn(100))).ok
    total, supply = chain.total_credits()
    assert total == supply


def test_invalid_mint_by_non_issuer() -> None:
    chain = Chain()
    receipt = chain.apply(chain.sign("admin", "credit.mint", Mint(chain.address("admin"), 1)))
    assert receipt.code == "not_authorized"
    assert chain.balance("admin") == 0


def test_invalid_burn_more_than_balance() -> None:
    chain = Chain()
    receipt = chain.apply(chain.sign("issuer", "credit.burn", Burn(chain.balance("issuer") + 1)))
    assert receipt.code == "insufficient_balance"


def test_invalid_burn_by_non_issuer() -> None:
    chain = Chain()
    receipt = chain.apply(chain.sign("buyer1", "credit.burn", Burn(1)))
    assert receipt.code == "not_authorized"


def test_invalid_mint_overflow() -> None:
    chain = Chain()
    receipt = chain.apply(
        chain.sign("issuer", "credit.mint", Mint(chain.address("buyer1"), 2**63 - 1))
    )
    assert receipt.code == "invalid_amount"


def test_parameter_set_by_admin() -> None:
    chain = Chain()
    assert chain.apply(chain.sign("admin", "param.set", ParameterSet("ship_deadline_s", 42))).ok
    assert get_parameter(chain.state, "ship_deadline_s") == 42


def test_invalid_parameter_unknown_or_out_of_range() -> None:
    chain = Chain()
    assert (
        chain.apply(chain.sign("admin", "param.set", ParameterSet("nope", 1))).code
        == "invalid_parameter"
    )
    receipt = chain.apply(
        chain.sign("admin", "param.set", ParameterSet("max_commission_bps", 3001))
    )
    assert receipt.code == "invalid_parameter"


def test_invalid_parameter_by_non_admin() -> None:
    chain = Chain()
    receipt = chain.apply(chain.sign("buyer1", "param.set", ParameterSet("ship_deadline_s", 42)))
    assert receipt.code == "not_authorized"


def test_validator_update_takes_effect_after_delay() -> None:
    chain = Chain()
    new_key = PrivateKey.from_label("validator:node4").public_key
    before = current_validators(chain.state)
    block = chain.block([chain.sign("admin", "validator.update", ValidatorUpdate((new_key,), ()))])
    assert block.receipts[0].ok, block.receipts[0].message
    delay = get_parameter(chain.state, "validator_change_delay")
    effective = block.block.height + delay
    assert current_validators(chain.state) == before
    assert validators_at(chain.state, effective).size == before.size + 1
    for _ in range(delay - 1):
        chain.block([])
        assert current_validators(chain.state) == before
    result = chain.block([])
    assert result.block.height == effective
    assert current_validators(chain.state).size == before.size + 1
    assert result.block.header.validators_hash == current_validators(chain.state).hash()


def test_invalid_validator_update_duplicate_or_missing() -> None:
    chain = Chain()
    existing = current_validators(chain.state).members[0].public_key
    receipt = chain.apply(chain.sign("admin", "validator.update", ValidatorUpdate((existing,), ())))
    assert receipt.code == "invalid_validator_update"
    stranger = PrivateKey.from_label("x").address
    receipt = chain.apply(chain.sign("admin", "validator.update", ValidatorUpdate((), (stranger,))))
    assert receipt.code == "invalid_validator_update"


def test_invalid_validator_update_by_non_admin() -> None:
    chain = Chain()
    new_key = PrivateKey.from_label("validator:node9").public_key
    receipt = chain.apply(chain.sign("buyer1", "validator.update", ValidatorUpdate((new_key,), ())))
    assert receipt.code == "not_authorized"


def test_unimplemented_type_fails_cleanly() -> None:
    chain = Chain()
    receipt = chain.apply(chain.sign("buyer1", "order.confirm", OrderConfirm(bytes(32))))
    assert receipt.code == "not_implemented"


_names = st.sampled_from(
    ["issuer", "buyer1", "buyer2", "buyer3", "sharer1", "sharer2", "merchant1"]
)
_actions = st.lists(
    st.tuples(
        st.sampled_from(["transfer", "mint", "burn"]), _names, _names, st.integers(1, 3 * 10**8)
    ),
    max_size=40,
)


@given(_actions)
def test_random_sequences_conserve_credits(actions: list[tuple[str, str, str, int]]) -> None:
    chain = Chain()
    for kind, sender, recipient, amount in actions:
        if kind == "transfer":
            tx = chain.sign(sender, "credit.transfer", Transfer(chain.address(recipient), amount))
        elif kind == "mint":
            tx = chain.sign(sender, "credit.mint", Mint(chain.address(recipient), amount))
        else:
            tx = chain.sign(sender, "credit.burn", Burn(amount))
        chain.apply(tx)
        total, supply = chain.total_credits()
        assert total == supply
        assert all(chain.balance(n) >= 0 for n in ("issuer", "buyer1", "sharer1"))
