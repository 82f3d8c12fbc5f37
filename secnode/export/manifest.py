"""The export directory's layout, its manifest, and how it stays valid through an interruption.

    DIR/manifest.json                      what the export covers (rewritten atomically, last)
    DIR/segments/<from>-<to>/<table>.parquet   one file per table (`schema.TABLES`) per export
    DIR/segments/<from>-<to>/segment.json  that segment's own entry (written before it appears)

Each `sec export` adds one **segment**: the blocks after the last exported height up to the
store's head, and the attestations, epochs and changed state records that go with them. A
segment is assembled in a staging directory (every file fsynced) and appears by one rename, so a
reader that globs ``DIR/segments/*/blocks.parquet`` sees whole segments only, and nothing already
exported is ever rewritten. The manifest is a summary of the segments, replaced by rename after
each one appears; if an export stops between the two renames, the next one finds the newer
segment (each carries its own `segment.json`) and rolls the manifest forward. Staging
directories left by an interrupted export are removed by the next one.

Invariant: the segments' height ranges are contiguous from 0, their attestation ranges
contiguous from sequence 0, and their epochs contiguous from 1.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

from secnode.export.source import ExportError

FORMAT: Final = "sec-export/1"
MANIFEST: Final = "manifest.json"
SEGMENTS: Final = "segments"
SEGMENT_FILE: Final = "segment.json"
STAGING_PREFIX: Final = ".staging-"


@dataclass(frozen=True, slots=True)
class Segment:
    """What one export added."""

    name: str
    """Its directory under segments/: zero-padded `from_height-to_height`, so names sort."""
    from_height: int
    """First block exported in it."""
    to_height: int
    """Last block exported in it: the store's head when it was written."""
    attestations: tuple[int, int]
    """Sequence numbers [first, end) of its attestations."""
    epochs: tuple[int, int]
    """Trust epoch numbers [first, end) of its epochs and scores."""
    rows: dict[str, int] = field(default_factory=dict)
    """Rows written per table."""

    def to_json(self) -> dict[str, Any]:
        value = asdict(self)
        value["attestations"] = list(self.attestations)
        value["epochs"] = list(self.epochs)
        return value

    @classmethod
    def from_json(cls, value: Any, where: str) -> Segment:
        try:
            segment = cls(
                name=str(value["name"]),
                from_height=int(value["from_height"]),
                to_height=int(value["to_height"]),
                attestations=(int(value["attestations"][0]), int(value["attestations"][1])),
                epochs=(int(value["epochs"][0]), int(value["epochs"][1])),
                rows={str(k): int(v) for k, v in value["rows"].items()},
            )
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            raise ExportError(f"{where} is not a valid segment entry ({exc!r})") from None
        return segment


def segment_name(from_height: int, to_height: int) -> str:
    return f"{from_height:012d}-{to_height:012d}"


@dataclass(frozen=True, slots=True)
class Manifest:
    """The summary in DIR/manifest.json."""

    chain: str
    """Hex genesis document hash of the exported chain: an export directory holds one chain."""
    segments: tuple[Segment, ...] = ()

    @property
    def height(self) -> int:
        """The last exported height (-1 before the first export)."""
        return self.segments[-1].to_height if self.segments else -1

    @property
    def attestations(self) -> int:
        """Attestations exported (sequence numbers 0 .. this - 1)."""
        return self.segments[-1].attestations[1] if self.segments else 0

    @property
    def next_epoch(self) -> int:
        """The first trust epoch not exported yet."""
        return self.segments[-1].epochs[1] if self.segments else 1

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "chain": self.chain,
            "height": self.height,
            "attestations": self.attestations,
            "next_epoch": self.next_epoch,
            "segments": [s.to_json() for s in self.segments],
        }


def write_json_atomically(path: Path, value: Any) -> None:
    """Replace `path` by `value` as JSON: a temp file, fsynced, renamed, the directory fsynced."""
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("w") as stream:
        json.dump(value, stream, indent=2, sort_keys=True)
        stream.write("\n")
        stream.flush()
        os.fsync(stream.fileno())
    temporary.replace(path)
    fsync_directory(path.parent)


def fsync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def open_export(out: Path, chain: bytes) -> Manifest:
    """The manifest of export directory `out` for the chain with genesis hash `chain`, after
    tidying what an interrupted export left (see the module docstring). A missing or empty
    directory is a new export. Raises ExportError for a directory of another chain, or one
    that holds other files and no manifest."""
    if out.exists() and not out.is_dir():
        raise ExportError(f"--to {out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    for leftover in out.glob(STAGING_PREFIX + "*"):
        shutil.rmtree(leftover)
    manifest_path = out / MANIFEST
    if not manifest_path.exists():
        others = sorted(p.name for p in out.iterdir())
        if others:
            raise ExportError(
                f"--to {out} is not empty ({', '.join(others[:3])}...) and holds no "
                f"{MANIFEST}: export into a new or empty directory"
            )
        return Manifest(chain.hex())
    try:
        document = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as exc:
        raise ExportError(f"{manifest_path} is unreadable: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ExportError(f"{manifest_path} is not a {FORMAT} manifest")
    if document.get("chain") != chain.hex():
        raise ExportError(
            f"{out} holds an export of chain {str(document.get('chain'))[:16]}..., not of this "
            f"node's chain {chain.hex()[:16]}...: export into another directory"
        )
    segments = _read_segments(out)
    listed = [Segment.from_json(s, f"{manifest_path} segment") for s in document["segments"]]
    if [s.name for s in segments[: len(listed)]] != [s.name for s in listed]:
        raise ExportError(
            f"{out}: the segments on disk are not those {MANIFEST} lists (files were removed "
            "or edited by hand?); start a new export directory"
        )
    manifest = Manifest(chain.hex(), tuple(segments))
    if len(segments) > len(listed):  # the last export stopped after its segment appeared
        write_json_atomically(manifest_path, manifest.to_json())
    return manifest


def _read_segments(out: Path) -> list[Segment]:
    """The segments on disk, checked contiguous (see the module invariant)."""
    root = out / SEGMENTS
    if not root.is_dir():
        return []
    segments = []
    for directory in sorted(p for p in root.iterdir() if p.is_dir()):
        path = directory / SEGMENT_FILE
        try:
            value = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ExportError(f"{path} is unreadable: {exc}") from None
        segments.append(Segment.from_json(value, str(path)))
    if segments and (
        segments[0].from_height,
        segments[0].attestations[0],
        segments[0].epochs[0],
    ) != (0, 0, 1):
        raise ExportError(
            f"{root}: the first segment {segments[0].name} does not start at height 0; "
            "start a new export directory"
        )
    for before, after in itertools.pairwise(segments):
        if (
            after.from_height != before.to_height + 1
            or after.attestations[0] != before.attestations[1]
            or after.epochs[0] != before.epochs[1]
        ):
            raise ExportError(
                f"{root}: segment {after.name} does not continue {before.name}; "
                "start a new export directory"
            )
    return segments
