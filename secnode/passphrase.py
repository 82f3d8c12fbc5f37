"""Where a key file's passphrase comes from: a file, the environment, or a prompt — never the
command line (other users see it in `ps`) and never a log line or an error message.

Order of precedence, the first that is present wins:
1. `--passphrase-file FILE` (e.g. a systemd credential or a container secret): its first line;
2. `SEC_KEY_PASSPHRASE_FILE`: the path of such a file (the container `*_FILE` convention);
3. `SEC_KEY_PASSPHRASE`: the passphrase itself;
4. an interactive prompt (getpass: not echoed), only when stdin is a terminal — asked twice when
   a new passphrase is chosen.
With none of these, reading an encrypted file is a KeyFileError that names the three ways.
"""

from __future__ import annotations

import getpass
import os
import stat
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from secnode.keyfile import KeyFileError

PASSPHRASE_VARIABLE: Final = "SEC_KEY_PASSPHRASE"
PASSPHRASE_FILE_VARIABLE: Final = "SEC_KEY_PASSPHRASE_FILE"
_WAYS: Final = (
    f"with --passphrase-file FILE, {PASSPHRASE_FILE_VARIABLE}=FILE or {PASSPHRASE_VARIABLE}, "
    "or run on a terminal to be asked"
)
MAX_PASSPHRASE_FILE: Final = 64 * 1024
"""A passphrase file larger than this is refused (not a passphrase: a wrong path)."""


@dataclass(frozen=True, slots=True)
class PassphraseSource:
    """The places one command may take a passphrase from (see the module docstring)."""

    file: Path | None = None
    """`--passphrase-file`, if given."""
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    """Where SEC_KEY_PASSPHRASE(_FILE) are looked up."""
    interactive: bool | None = None
    """Whether a prompt may be shown; None: when stdin is a terminal."""
    prompt: Callable[[str], str] | None = None
    """Reads a line without echo; None: getpass.getpass (looked up when called)."""

    def given(self) -> bool:
        """True if a file or variable supplies the passphrase (no prompt needed)."""
        return self.file is not None or any(
            self.environ.get(name) for name in (PASSPHRASE_FILE_VARIABLE, PASSPHRASE_VARIABLE)
        )

    def can_prompt(self) -> bool:
        return sys.stdin.isatty() if self.interactive is None else self.interactive

    def existing(self, key_path: Path) -> str:
        """The passphrase of the encrypted key file `key_path` (a `PassphraseReader`)."""
        supplied = self._supplied()
        if supplied is not None:
            return supplied
        if not self.can_prompt():
            raise KeyFileError(f"key file {key_path} is encrypted: give its passphrase {_WAYS}")
        return self._ask(f"Passphrase for {key_path}: ")

    def new(self, key_path: Path) -> str:
        """A passphrase to seal `key_path` with: from a file or variable, or typed twice."""
        supplied = self._supplied()
        if supplied is not None:
            return supplied
        if not self.can_prompt():
            raise KeyFileError(f"no passphrase to encrypt {key_path}: give one {_WAYS}")
        first = self._ask(f"New passphrase for {key_path}: ")
        if not first:
            raise KeyFileError("the passphrase is empty; nothing was written")
        if self._ask("Repeat the passphrase: ") != first:
            raise KeyFileError("the two passphrases differ; nothing was written")
        return first

    def _ask(self, text: str) -> str:
        return (self.prompt or getpass.getpass)(text)

    def _supplied(self) -> str | None:
        file = self.file
        if file is None and self.environ.get(PASSPHRASE_FILE_VARIABLE):
            file = Path(self.environ[PASSPHRASE_FILE_VARIABLE])
        if file is not None:
            return read_passphrase_file(file)
        value = self.environ.get(PASSPHRASE_VARIABLE)
        return value or None


def read_passphrase_file(path: Path) -> str:
    """The first line of `path`, without its line ending (the rest is ignored, so a file written
    by `echo` works). A file readable by others is used, with a warning on stderr (container
    secrets are often mounted 0444)."""
    try:
        mode = path.stat().st_mode
        with path.open("rb") as stream:
            raw = stream.read(MAX_PASSPHRASE_FILE + 1)
    except OSError as exc:
        raise KeyFileError(f"cannot read passphrase file {path}: {exc.strerror}") from None
    if len(raw) > MAX_PASSPHRASE_FILE:
        raise KeyFileError(f"passphrase file {path} is over {MAX_PASSPHRASE_FILE} bytes")
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        raise KeyFileError(f"passphrase file {path} is not UTF-8 text") from None
    line = text.split("\n", 1)[0].removesuffix("\r")
    if not line:
        raise KeyFileError(f"passphrase file {path} is empty (its first line is the passphrase)")
    if mode & stat.S_IRWXO:
        print(
            f"sec: warning: passphrase file {path} is readable by others "
            f"(mode {stat.S_IMODE(mode):o}); consider: chmod 400 {path}",
            file=sys.stderr,
        )
    return line
