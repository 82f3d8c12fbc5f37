"""PBFT consensus core (sans-io) for the SEC chain, and its deterministic simulator.

Public API (details in docs/consensus.md):

* `Replica(config, signer, app, validators, scheme=ED25519, now=0.0)` — a replica from genesis;
  `Replica.restore(config, signer, app, validators, height=, digest=, records=, certificates=)`
  after a restart. Inputs `start`, `on_message`, `on_tick`, `on_pending_transactions`,
  `on_catch_up_block`, `on_validator_set` each return a list of actions.
* Actions (`consensus.actions`): `Send`, `Broadcast`, `SetTimer`, `CommitBlock`, `Persist`,
  `DiscardRecords`, `RequestCatchUp`, `FaultDetected`, `EnteredView`; the driver carries them out
  in order and makes each `Persist` durable before any later action. `Action` is their closed
  union: a driver matches over it and ends in `typing.assert_never`, so none is forgotten.
* `Application` (`consensus.app`): `can_build_on`, `make_proposal`, `validate_proposal`,
  `verify_payload`.
* Messages (`consensus.messages`): `decode_message(bytes)` is the one entry point for wire bytes;
  `encode_message(m)` the inverse.
* Persistence records (`consensus.records`): `SignedRecord`, `PreparedRecord`,
  `CheckpointRecord`, with `encode_record` / `decode_record` / `record_is_obsolete`.
* Errors (`consensus.errors`): one base `ConsensusError`; rejected input raises a
  `MessageRejected` subclass whose `benign` flag says whether the sender is at fault.

The package does no I/O: no asyncio, sockets, wall clock or global randomness. The simulator in
`consensus.sim` runs replicas on a seeded in-memory network (`python -m consensus.sim.runner`).
"""

from consensus.actions import (
    Action,
    Broadcast,
    CommitBlock,
    DiscardRecords,
    EnteredView,
    FaultDetected,
    Persist,
    RequestCatchUp,
    Send,
    SetTimer,
)
from consensus.app import Application, Proposal
from consensus.config import ReplicaConfig, ValidatorSchedule
from consensus.crypto import ED25519, MessageSigner, SignatureScheme
from consensus.messages import Message, decode_message, encode_message
from consensus.records import Record, decode_record, encode_record, record_is_obsolete
from consensus.replica import Replica, ResourceUsage

__all__ = [
    "ED25519",
    "Action",
    "Application",
    "Broadcast",
    "CommitBlock",
    "DiscardRecords",
    "EnteredView",
    "FaultDetected",
    "Message",
    "MessageSigner",
    "Persist",
    "Proposal",
    "Record",
    "Replica",
    "ReplicaConfig",
    "RequestCatchUp",
    "ResourceUsage",
    "Send",
    "SetTimer",
    "SignatureScheme",
    "ValidatorSchedule",
    "decode_message",
    "decode_record",
    "encode_message",
    "encode_record",
    "record_is_obsolete",
]
