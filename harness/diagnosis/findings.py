"""Why one case's numbers disagree: the three diagnoses of this package put together, as data.

A failing layer case (runner.py) and a user's port (``keras-equiv diagnose``) get the same
``Findings``: the error by timestep of every output compared (timesteps.py), the first divergence of
each direction and call (divergence.py; with Keras's own cell driven where there is one), and the
weight-layout hypotheses ranked (layouts.py).  Findings hold plain numbers and strings only (no
callables), so they cross worker processes and go into the JSON report as they are.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import numpy as np

from .. import layers
from ..case import OutputKey
from ..reference import recurrent
from ..tolerances import Tolerance
from . import layouts
from .divergence import CellStep, Direction, Divergence, first_divergence
from .timesteps import TimestepErrors, by_timestep, row_text


class LayoutFit(NamedTuple):
    """One layout hypothesis as judged on the outputs (layouts.Explanation without its callables)."""

    name: str
    family: str
    describe: str
    max_abs: float
    ratio: float
    reproduces: bool


class Findings(NamedTuple):
    """What the diagnosis found for one case (or one port)."""

    timesteps: tuple[TimestepErrors, ...]
    divergences: tuple[Divergence, ...]
    layouts: tuple[LayoutFit, ...]  # every hypothesis tried, best first
    layout_verdict: str
    layout_call: int | None = None  # the call the layouts were judged on (stateful runs: the first)
    # The first divergence's index on the outputs' time axis (a go_backwards layer returns its sequence
    # in processing order), what a plot marks; None: no divergence at a timestep.
    first_on_axis: int | None = None

    @property
    def first_divergence(self) -> Divergence | None:
        """The earliest divergence found (by call, then timestep), or None."""
        found = [d for d in self.divergences if d.output is not None]
        return min(found, key=lambda d: (d.call or 0, -1 if d.timestep is None else d.timestep), default=None)


def layout_fits(explanations: Sequence[layouts.Explanation]) -> tuple[LayoutFit, ...]:
    return tuple(LayoutFit(e.hypothesis.name, e.hypothesis.family.value, e.hypothesis.describe, e.max_abs,
                           e.ratio, e.reproduces) for e in explanations)


def diagnose(cfg: Mapping, inputs: Sequence[np.ndarray], weights: Mapping, actual: Mapping[OutputKey, np.ndarray],
             expected: Mapping[OutputKey, np.ndarray], tolerance: Callable[[OutputKey], Tolerance], *,
             mask: np.ndarray | None = None, initial_state: list | None = None, reset_before: Sequence[int] = (),
             cell_step: CellStep | Mapping[Direction, CellStep] | None = None) -> Findings:
    """Findings for outputs ``actual`` (Keras's, or a port's) against the reference's ``expected``.

    ``inputs``: one array per call (a stateful run has several; ``reset_before`` the calls that start
    from zero states, and each call's outputs are keyed ``OutputKey(name, call)``).  ``actual`` may hold
    only some of the outputs; one of another shape than the reference's is left out (its comparison
    already says so).  ``cell_step``: Keras's own cell (keras_cell.cell_step), where there is one.
    """
    actual = {k: v for k, v in actual.items() if k in expected and np.shape(v) == np.shape(expected[k])}
    rows = [by_timestep(key, value, expected[key], tolerance(key)) for key, value in actual.items()]
    stateful = any(k.call is not None for k in actual)
    tol = tolerance(OutputKey("output", 1 if stateful else None))
    divergences: list[Divergence] = []
    states = initial_state
    for call, x in enumerate(inputs, start=1):
        if call in reset_before:
            states = None
        wanted = call if stateful else None
        if any(k.call == wanted for k in actual):
            divergences += first_divergence(cfg, x, weights, actual, tol, mask, states, cell_step, call=wanted)
        if stateful:
            states = recurrent.forward(cfg, x, weights, mask, states)[1]
    first = 1 if stateful else None
    mine = {k.name: v for k, v in actual.items() if k.call == first}
    explained = layouts.explain(cfg, inputs[0], weights, mine, tol, mask, initial_state) if mine else ()
    fits = layout_fits(explained)
    found = Findings(tuple(rows), tuple(divergences), fits, layouts.verdict(explained) if explained else "", first)
    d = found.first_divergence
    on_axis = None
    if d is not None and d.timestep is not None:
        on_axis = d.step if cfg.get("go_backwards") and not layers.is_bidirectional(cfg) else d.timestep
    return found._replace(first_on_axis=on_axis)


def lines(findings: Findings) -> list[str]:
    """The findings as report lines (unindented): timestep rows, first divergences, the layout verdict."""
    out = []
    if findings.timesteps:
        out.append("error by timestep (worst |err| / allowed; over 1 fails):")
        out += ["  " + row_text(r) for r in findings.timesteps]
    for d in findings.divergences:
        out += d.text().splitlines()
    if findings.layout_verdict:
        call = f" (call {findings.layout_call})" if findings.layout_call else ""
        out.append(f"layout{call}: {findings.layout_verdict}")
    return out


def to_json(findings: Findings) -> dict:
    """The findings as plain JSON values (report.strict turns NaN and infinities into strings)."""
    return {
        "timesteps": [{"output": str(r.key), "by_timestep": r.by_timestep, "ratios": list(r.ratios),
                       "first_over": r.first_over, "row": r.row} for r in findings.timesteps],
        "divergences": [{"direction": d.direction.value if d.direction else None, "call": d.call,
                         "timestep": d.timestep, "step": d.step, "row": d.row, "output": d.output,
                         "finding": d.finding.value, "cell_agrees": d.cell_agrees, "gate": d.gate,
                         "gate_change": d.gate_change, "ratio": d.ratio,
                         "fits": [{"gate": g.gate, "change": g.change} for g in d.fits]}
                        for d in findings.divergences],
        "layouts": [fit._asdict() for fit in findings.layouts if fit.reproduces],
        "closest_layout": findings.layouts[0]._asdict() if findings.layouts else None,
        "layout_verdict": findings.layout_verdict,
        "layout_call": findings.layout_call,
    }
