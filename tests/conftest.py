"""Shared test setup: pytester for the plugin tests, Ctrl-C where the run started without it, and the
sensitivity summary line."""
from __future__ import annotations

import signal

pytest_plugins = ["pytester"]


def pytest_configure(config) -> None:
    """A run started with Ctrl-C ignored (a background job of a script, ``pytest ... &``) hands that on
    to every process it starts, so the tests that press Ctrl-C on a real command would see it do
    nothing: take Python's handler back here, as at a terminal (the processes this one starts then
    get the default, and Python in them its KeyboardInterrupt)."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)

_KILL_TEST = "test_planted_bug_is_killed["


def pytest_terminal_summary(terminalreporter) -> None:
    """pytest_terminal_summary: one line per planted bug (killed by which case, or ALIVE), then a count."""
    rows = []
    for outcome in ("passed", "failed", "error"):
        for rep in terminalreporter.stats.get(outcome, []):
            # A kill test that errored in setup (say, the case library failed to load) killed nothing.
            if getattr(rep, "when", None) not in ("call", "setup") or _KILL_TEST not in rep.nodeid:
                continue
            if rep.when == "setup" and rep.passed:
                continue
            name = rep.nodeid.split(_KILL_TEST, 1)[1].rstrip("]")
            killer = dict(rep.user_properties).get("killed_by", "")
            rows.append((name, rep.passed, killer))
    if not rows:
        return
    width = max(len(name) for name, _, _ in rows)
    terminalreporter.write_sep("-", "planted bugs")
    for name, killed, killer in sorted(rows):
        terminalreporter.write_line(f"killed  {name:<{width}}  by {killer}" if killed else f"ALIVE   {name}")
    n_killed = sum(killed for _, killed, _ in rows)
    terminalreporter.write_line(f"sensitivity: {n_killed}/{len(rows)} planted bugs killed")
