"""`sec snapshot create|restore`: a node's state at a certified height, to join without replay.

The work is `secnode.snapshot`; this module opens the node homes (through their config.toml)
and prints what was written. docs/operations.md "Snapshots and pruning".
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from contracts import TX_TYPES
from ledger.errors import LedgerError
from ledger.genesis import Genesis, load_genesis
from ledger.store import GENESIS_KEY, ChainStore
from ledger.store_leveldb import LevelDBStore
from secnode.cli.common import CommandError, emit
from secnode.runtime.config import load_config


def _home_paths(home: Path) -> tuple[Genesis, Path]:
    """The genesis and data directory a home's config.toml names."""
    try:
        config = load_config(home)
        genesis = load_genesis(_resolve(home, config.genesis_file))
    except LedgerError as exc:
        raise CommandError(f"--home {home}: {exc}") from None
    return genesis, _resolve(home, config.data_dir)


def _resolve(home: Path, name: str) -> Path:
    path = Path(name)
    return path if path.is_absolute() else home / path


def _open_stopped(home: Path) -> tuple[ChainStore, Genesis]:
    genesis, data = _home_paths(home)
    if not (data / "CURRENT").is_file():
        raise CommandError(f"--home {home}: no chain data in {data}")
    try:
        kv = LevelDBStore(data)
    except LedgerError as exc:
        if "lock" in str(exc).lower():
            raise CommandError(
                f"--home {home}: {data} is locked by a running node; stop it first, or "
                "snapshot a copy of its home"
            ) from None
        raise CommandError(f"--home {home}: {exc}") from None
    if kv.get(GENESIS_KEY) != genesis.document_hash():
        kv.close()
        raise CommandError(f"--home {home}: {data} does not hold the chain of its genesis file")
    return ChainStore(kv, TX_TYPES), genesis


def _create(args: argparse.Namespace) -> int:
    from secnode.snapshot.create import create_snapshot
    from secnode.snapshot.format import SnapshotError

    started = time.perf_counter()
    store, genesis = _open_stopped(args.home)
    try:
        head = store.head_height()
        if args.height is not None and args.height != head:
            raise CommandError(
                f"--height {args.height}: a node keeps the state of its head only, which is "
                f"height {head}; snapshot a stopped node (or a copy of its home) at that height"
            )
        created = create_snapshot(store, genesis.chain_id, genesis.document_hash(), args.out)
    except SnapshotError as exc:
        raise CommandError(str(exc)) from None
    except OSError as exc:
        raise CommandError(
            f"--out {args.out}: {exc.strerror or exc}; nothing was written"
        ) from None
    finally:
        store.close()
    manifest = created.manifest
    seconds = time.perf_counter() - started
    emit(
        args,
        f"snapshot of height {manifest.height} (state root {manifest.state_root.hex()[:16]}..., "
        f"{manifest.entries} entries in {len(manifest.chunks)} chunks, "
        f"{created.bytes_written:,} bytes) written to {args.out} in {seconds:.2f} s",
        {
            "out": str(args.out),
            **manifest.to_json(),
            "bytes": created.bytes_written,
            "seconds": round(seconds, 3),
        },
    )
    return 0


def _restore(args: argparse.Namespace) -> int:
    from secnode.snapshot.format import SnapshotError
    from secnode.snapshot.restore import restore_snapshot

    started = time.perf_counter()
    genesis, data = _home_paths(args.home)
    try:
        restored = restore_snapshot(args.source, genesis, data)
    except SnapshotError as exc:
        raise CommandError(f"--from {args.source}: {exc}") from None
    except OSError as exc:
        raise CommandError(f"{data}: {exc.strerror or exc}; nothing was restored") from None
    manifest = restored.manifest
    seconds = time.perf_counter() - started
    emit(
        args,
        f"restored height {manifest.height} ({manifest.entries} state entries, certificate "
        f"checked from the genesis through {restored.validator_changes} validator change(s)) "
        f"into {data} in {seconds:.2f} s; `sec node start --home {args.home}` continues from "
        "there",
        {
            "home": str(args.home),
            "data_dir": str(data),
            "height": manifest.height,
            "block_hash": manifest.block_hash.hex(),
            "state_root": manifest.state_root.hex(),
            "entries": manifest.entries,
            "validator_changes": restored.validator_changes,
            "seconds": round(seconds, 3),
        },
    )
    return 0


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `sec snapshot create` and `sec snapshot restore`."""
    parser = commands.add_parser(
        "snapshot",
        help="write or restore the state at a certified height (join without replay)",
        description="Snapshots of a stopped node's state. docs/operations.md, 'Snapshots and "
        "pruning'.",
    )
    verbs = parser.add_subparsers(dest="snapshot_verb", metavar="VERB", required=True)
    create = verbs.add_parser(
        "create",
        help="write the state of a stopped node's head block as chunks with a manifest",
    )
    create.add_argument("--home", required=True, type=Path, metavar="HOME")
    create.add_argument(
        "--out", required=True, type=Path, metavar="DIR", help="a new (or empty) directory"
    )
    create.add_argument(
        "--height",
        type=int,
        metavar="H",
        help="refuse unless the head is at H (a node keeps no older state)",
    )
    create.add_argument("--json", action="store_true", help="print the manifest as JSON")
    create.set_defaults(handler=_create)
    restore = verbs.add_parser(
        "restore",
        help="verify a snapshot from the genesis and write a store a node continues from",
    )
    restore.add_argument(
        "--home",
        required=True,
        type=Path,
        metavar="HOME",
        help="a node home (config.toml, genesis.json, key) whose data directory is empty",
    )
    restore.add_argument(
        "--from", dest="source", required=True, type=Path, metavar="DIR", help="the snapshot"
    )
    restore.add_argument("--json", action="store_true", help="print the summary as JSON")
    restore.set_defaults(handler=_restore)
