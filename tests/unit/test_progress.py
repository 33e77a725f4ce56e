"""Run progress (harness/progress.py): a bar on a terminal, lines under -q elsewhere, with no Keras."""
from __future__ import annotations

import io

import pytest

from harness.progress import Mode, Progress, eta_text, mode


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("tty, quiet, environ, total, want", [
    (True, False, {}, 5, Mode.BAR),
    (True, True, {}, 5, Mode.BAR),
    (False, True, {}, 5, Mode.LINES),
    (False, False, {}, 5, Mode.OFF),  # the rows show progress
    (True, True, {"TERM": "dumb"}, 5, Mode.LINES),
    (True, False, {"KERAS_EQUIV_PROGRESS": "0"}, 5, Mode.OFF),
    (True, False, {}, 1, Mode.OFF),
])
def test_mode(tty, quiet, environ, total, want):
    out = Terminal() if tty else io.StringIO()
    assert mode(out, quiet, environ, total) is want


def test_lines_come_every_tenth_with_the_time_left():
    now = [0.0]
    out, err = io.StringIO(), io.StringIO()
    with Progress(out, 20, Mode.LINES, lines_to=err, clock=lambda: now[0]) as shown:
        for _ in range(20):  # one second a case on the fake clock
            now[0] += 1.0
            shown.advance()
    lines = err.getvalue().splitlines()
    assert len(lines) == 10 and out.getvalue() == ""
    # 2 of 20 done after 2 s: 18 cases at 1 s each are left
    assert lines[0] == "progress: 2/20 cases (10%), 2s elapsed, about 18s left"
    assert lines[-1] == "progress: 20/20 cases (100%), 20s elapsed, about 0s left"


def test_the_bar_keeps_the_rows_in_order_on_the_terminal():
    out = Terminal()
    with Progress(out, 3, Mode.BAR, first="a[cpu]") as shown:
        for name in ("a", "b", "c"):
            shown.row(f"PASS  {name}[cpu]")
            shown.advance(f"{name}-next")
    text = out.getvalue()
    assert text.index("PASS  a[cpu]") < text.index("PASS  b[cpu]") < text.index("PASS  c[cpu]")
    assert "ETA" in text and "3/3" in text


def test_eta_text():
    assert (eta_text(0.4), eta_text(59), eta_text(61), eta_text(3725)) == ("0s", "59s", "1m01s", "62m05s")
