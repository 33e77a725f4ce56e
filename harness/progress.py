"""How far a run is: a progress bar with the time left on a terminal (rich), plain lines on
stderr when ``-q`` output goes to a file or pipe, nothing otherwise (the rows show progress).

The bar is drawn on the stream the rows go to, below them, and removed when the run ends, so a
terminal ends up with the rows and the summary alone; with ``-q`` it is the only sign of life.
``KERAS_EQUIV_PROGRESS=0`` turns both off, ``TERM=dumb`` the bar.
"""
from __future__ import annotations

import enum
import time
from collections.abc import Mapping
from typing import TextIO


class Mode(enum.Enum):
    BAR = "bar"
    LINES = "lines"
    OFF = "off"


# -q on a file or pipe: a line each time this share of the cases more has run.
LINE_STEP = 0.1


def mode(out: TextIO, quiet: bool, environ: Mapping[str, str], total: int) -> Mode:
    """What ``out`` gets: a bar on a terminal, lines under -q elsewhere, nothing for one case."""
    if total < 2 or environ.get("KERAS_EQUIV_PROGRESS", "1") == "0":
        return Mode.OFF
    tty = getattr(out, "isatty", lambda: False)()
    if tty and environ.get("TERM") != "dumb":
        return Mode.BAR
    return Mode.LINES if quiet else Mode.OFF


def eta_text(seconds: float) -> str:
    seconds = max(int(round(seconds)), 0)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class Progress:
    """``with Progress(out, total, mode) as p: ... p.row(text) ... p.advance(case_id)``: rows are
    printed through it (above the bar), and each finished case moves it on."""

    def __init__(self, out: TextIO, total: int, how: Mode, lines_to: TextIO | None = None, first: str = "",
                 clock=time.perf_counter):
        self.out, self.total, self.how, self.clock, self.first = out, total, how, clock, first
        self.lines_to = out if lines_to is None else lines_to
        self.done = 0
        self._bar = self._task = None
        self._start = clock()
        self._next_line = LINE_STEP

    def __enter__(self) -> Progress:
        if self.how is Mode.BAR:
            # rich loads only when a terminal shows a bar (keras-equiv list and pipes never need it)
            from rich.console import Console  # noqa: PLC0415
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress as Bar,  # noqa: PLC0415
                                       TextColumn, TimeElapsedColumn, TimeRemainingColumn)
            console = Console(file=self.out, force_terminal=True, highlight=False)
            self._bar = Bar(BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("ETA"),
                            TimeRemainingColumn(), TextColumn("{task.description}"),
                            console=console, transient=True, redirect_stdout=False, redirect_stderr=False)
            self._bar.start()
            self._task = self._bar.add_task(self.first, total=self.total)
        return self

    def row(self, text: str) -> None:
        """One case's row: above the bar, or straight to the stream."""
        if self._bar is not None:
            from rich.text import Text  # noqa: PLC0415 - loaded with the bar (above)
            self._bar.console.print(Text.from_ansi(text), soft_wrap=True)
        else:
            print(text, file=self.out, flush=True)

    def advance(self, next_id: str = "") -> None:
        """One more case has run; ``next_id`` is the one running now."""
        self.done += 1
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, description=next_id)
        elif self.how is Mode.LINES and self.done / self.total >= self._next_line - 1e-9:
            while self._next_line <= self.done / self.total + 1e-9:
                self._next_line += LINE_STEP
            elapsed = self.clock() - self._start
            left = elapsed / self.done * (self.total - self.done)
            print(f"progress: {self.done}/{self.total} cases ({100 * self.done // self.total}%), "
                  f"{eta_text(elapsed)} elapsed, about {eta_text(left)} left", file=self.lines_to, flush=True)

    def __exit__(self, *exc_info) -> bool:
        if self._bar is not None:
            self._bar.stop()
        return False
