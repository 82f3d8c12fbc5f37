"""Progress of an export on stderr: a bar redrawn in place on a terminal, otherwise one plain
line per finished step (logs and CI keep no carriage returns). No dependency: a bar is a line."""

from __future__ import annotations

from typing import Final, TextIO

BAR_WIDTH: Final = 30


class Progress:
    """Steps of known size, each advanced then finished."""

    def __init__(self, stream: TextIO, *, terminal: bool | None = None) -> None:
        self.stream = stream
        self.terminal = stream.isatty() if terminal is None else terminal
        self._step = ""
        self._total = 0
        self._drawn = -1

    def start(self, step: str, total: int) -> None:
        self._step, self._total, self._drawn = step, max(total, 1), -1
        self.advance(0)

    def advance(self, done: int) -> None:
        """`done` of the step's total are done (redrawn on a terminal at each new percent)."""
        if not self.terminal:
            return
        percent = min(100, done * 100 // self._total)
        if percent == self._drawn:
            return
        self._drawn = percent
        filled = BAR_WIDTH * percent // 100
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        self.stream.write(f"\r{self._step:<14} [{bar}] {percent:3d}% ")
        self.stream.flush()

    def finish(self, detail: str) -> None:
        """The step is done: `detail` says what it produced."""
        if self.terminal:
            self.stream.write(f"\r{self._step:<14} [{'#' * BAR_WIDTH}] 100% {detail}\n")
        else:
            self.stream.write(f"{self._step}: {detail}\n")
        self.stream.flush()
