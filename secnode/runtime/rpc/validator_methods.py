"""RPC methods sec_getValidatorsWithProof (the validators record, proven under a certified root)
and sec_getValidatorChanges (the proof of each change since genesis).

A light client that verifies headers from genesis (docs/protocol.md §15) must learn each new
validator set from something it can check. This method serves the `"validators"` state record
(§12.3: `current` and the `pending` schedule) with its state proof (§11.2) under the state root
of the head block, together with that header and its commit certificate, all read from one
committed height without an `await` in between.

Invariant: the answer is self-consistent or an error: the committed state root is the head
header's `state_root`, and `current` hashes to the head header's `validators_hash` (the set
that certifies block H is `current` after block H, because activation happens at the start of
a block and a change takes effect at least two blocks after the one that schedules it).

Proofs exist only at the head (the node keeps no historical state), so `height`, when given,
pins the answer: if the head is elsewhere the call fails with not_found naming the head height,
and the client asks again. A client following the chain sees every change in `pending` at least
`validator_change_delay` blocks before it takes effect.

A client that was not following learns the changes from sec_getValidatorChanges: the proofs the
node recorded when it stored each block that scheduled one (`ledger.validator_changes`),
each under the state root of that block, which the set ruling then certified.
"""

from __future__ import annotations

from typing import Final

from ledger.encoding import decode
from ledger.errors import StoreError
from ledger.validator_changes import (
    MAX_VALIDATOR_CHANGES,
    known_effective_heights,
    scheduled_changes,
)
from ledger.validator_state import VALIDATORS_KEY
from ledger.validators import ValidatorSet
from secnode.runtime.rpc.errors import NOT_FOUND, not_found
from secnode.runtime.rpc.jsonrpc import Method
from secnode.runtime.rpc.view import NodeView
from secnode.schema import models as m
from secnode.schema.objects import BlockHeader, CommitCertificate, StateProof, Validator
from secnode.schema.validators import (
    PendingValidators,
    ValidatorChange,
    ValidatorChangesResult,
    ValidatorsWithProofResult,
)

METHOD: Final = "sec_getValidatorsWithProof"
CHANGES_METHOD: Final = "sec_getValidatorChanges"


async def get_validators_with_proof(
    view: NodeView, params: m.HeightParams
) -> ValidatorsWithProofResult:
    """See the module docstring. Reads one committed height (no await below)."""
    head = view.store.head_height()
    if head is None:
        raise StoreError("the store has no head block")
    if params.height is not None and params.height != head:
        raise not_found(
            "validators proof at height",
            f"{params.height} (proofs are served at the head only; the head is {head})",
        )
    state = view.state
    root = state.committed_root()
    block = view.store.get_block(head)
    if block is None:
        raise StoreError(f"the store has no head block {head}")
    if block.header.state_root != root:
        raise StoreError(f"committed state root is not that of head block {head}")
    raw = state.get_committed(VALIDATORS_KEY)
    if raw is None:
        raise StoreError("committed state has no validators record")
    record = decode(raw)
    current = ValidatorSet.from_public_keys(record["current"])
    if current.hash() != block.header.validators_hash:
        raise StoreError(f"the validators record does not match head block {head}'s header")
    pending = []
    for effective, keys in record["pending"]:
        validators = ValidatorSet.from_public_keys(keys)
        pending.append(
            PendingValidators(
                effective_height=effective,
                hash=validators.hash(),
                validators=Validator.list_of(validators),
            )
        )
    return ValidatorsWithProofResult(
        height=head,
        block_hash=block.hash(),
        state_root=root,
        header=BlockHeader.of(block.header),
        certificate=CommitCertificate.of_optional(view.store.get_certificate(head)),
        value=raw,
        proof=StateProof.of(state.prove(VALIDATORS_KEY)),
        validators=Validator.list_of(current),
        hash=current.hash(),
        quorum=current.quorum,
        pending=pending,
    )


async def get_validator_changes(view: NodeView, params: m.NoParams) -> ValidatorChangesResult:
    """sec_getValidatorChanges: the node-local change proofs (`ledger.validator_changes`),
    one entry per scheduled set, and whether they cover every change the head's record knows.
    One prefix scan of at most `MAX_VALIDATOR_CHANGES` rows (no await below)."""
    raw = view.state.get_committed(VALIDATORS_KEY)
    if raw is None:
        raise StoreError("committed state has no validators record")
    changes: list[ValidatorChange] = []
    truncated = False
    for scheduled in scheduled_changes(view.store, MAX_VALIDATOR_CHANGES + 1):
        for effective in scheduled.effective_heights:
            if len(changes) == MAX_VALIDATOR_CHANGES:
                truncated = True
                break
            changes.append(
                ValidatorChange(
                    scheduled_height=scheduled.height,
                    effective_height=effective,
                    value=scheduled.record,
                    proof=StateProof.of(scheduled.proof),
                )
            )
    proven = {change.effective_height for change in changes}
    known = set(known_effective_heights(decode(raw)))
    return ValidatorChangesResult(changes=changes, complete=not truncated and known <= proven)


SUMMARY: Final = "The validators record with a state proof under the head's certified root."
DESCRIPTION: Final = (
    'The "validators" state record (current set and pending schedule, docs/protocol.md §12.3) '
    "as raw bytes and decoded, its membership proof under the head block's state_root, and "
    "that header with its commit certificate, so a light client can learn a new validator set "
    "without trusting this node (§15 step 3). Proofs are served at the head only: `height`, if "
    "given, must be the head height, else not_found naming the head; ask again."
)

CHANGES_SUMMARY: Final = "Proofs of every validator change, to trace the set from genesis."
CHANGES_DESCRIPTION: Final = (
    "For each validator set a block scheduled (docs/protocol.md §13.2), oldest first: the "
    "scheduling block's height (get its header and certificate with sec_getCommit), the height "
    'the set takes effect, and the raw "validators" record after that block with its state '
    "proof under that block's state_root, recorded by this node when it stored the block. A "
    "light client starts from the genesis set and verifies each in order (§15.1). At most 256 "
    "changes; complete is false when the head's record knows of a change missing here (a store "
    "older than this index), and then the set cannot be traced from genesis through this node."
)


def validator_method_table(view: NodeView) -> dict[str, Method]:
    """sec_getValidatorsWithProof and sec_getValidatorChanges by name (for the method table)."""

    async def call(params: m.HeightParams) -> ValidatorsWithProofResult:
        return await get_validators_with_proof(view, params)

    async def changes(params: m.NoParams) -> ValidatorChangesResult:
        return await get_validator_changes(view, params)

    return {
        METHOD: Method(
            METHOD,
            SUMMARY,
            DESCRIPTION,
            m.HeightParams,
            ValidatorsWithProofResult,
            call,
            (NOT_FOUND.code,),
        ),
        CHANGES_METHOD: Method(
            CHANGES_METHOD,
            CHANGES_SUMMARY,
            CHANGES_DESCRIPTION,
            m.NoParams,
            ValidatorChangesResult,
            changes,
        ),
    }
