"""Where Keras first parts from the reference, step by step, and whether its cell or its loop is why.

``first_divergence`` re-runs each direction of a layer through the reference's own time loop
(``reference.recurrent.trace``: its mask and go_backwards rules, its cell equations) and compares it
with what Keras returned:

1. where Keras's per-step outputs exist (return_sequences), the first processing step and batch row
   whose err/tol (timesteps.ratios, compare.py's rule) is over 1; else (or when they agree) the final
   output and states;
2. with ``cell_step`` (Keras's own cell on one step, injected: keras_cell.cell_step), Keras's cell is
   fed the reference's states before each step, up to that step (every step when nothing parted).  A
   cell that disagrees on identical inputs is a cell or gate bug, and its first such step is the
   divergence; a cell that agrees while the outputs part is a loop, mask, reversal or state-carry bug;
3. for a cell step that disagrees, ``gate_fits`` solves, from Keras's new states and the reference's
   gate values, for each gate alone: the smallest change of that gate's value that reproduces Keras's
   step within tolerance at every unit and row, inside its activation's range.  LSTM: f, i and the
   candidate c from ``c' = f*c_prev + i*c`` (then ``h' = o*act(c')`` must hold), o from ``h' =
   o*act(c')`` where c' agrees; GRU: z and the candidate h from ``h' = z*h_prev + (1-z)*h``, and r from
   ``h = act(x_part + r*recurrent)`` (reset_after only: before the matmul r cannot be solved unit by
   unit).  The fits are ranked by that change, smallest first: a heuristic, since one step's numbers
   alone rarely pin a gate (f and i trade off through c_prev/c); the runners-up are kept in ``fits``.

A stateful run of several calls is diagnosed one call at a time: pass that call's ``call`` number
(its outputs are ``OutputKey(name, call)``) and the states it started from as ``initial_state``.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from enum import Enum
from typing import NamedTuple

import numpy as np

from .. import layers
from ..case import OutputKey
from ..reference import recurrent
from ..tolerances import Tolerance
from .timesteps import ratios

Array = np.ndarray
# One step of a cell: (x_t (B, F), states in Keras's order) -> (output (B, U), new states).
CellStep = Callable[[Array, list[Array]], tuple[Array, list[Array]]]

# The gate computed with ``activation``; every other gate uses ``recurrent_activation`` (§1, §2).
CANDIDATE = {"LSTM": "c", "GRU": "h"}
# Where an activation is unbounded, solving for a value stops at +-SOLVE_BOUND.
SOLVE_BOUND = 1e6
_BISECTIONS = 200


class Direction(str, Enum):
    """Which direction of a Bidirectional layer (a plain layer has none)."""

    FORWARD = "forward"
    BACKWARD = "backward"


class Finding(str, Enum):
    """What first_divergence found for one direction."""

    NONE = "none"  # Keras agrees with the reference everywhere it was checked
    CELL = "cell"  # Keras's cell disagrees with the reference on identical inputs
    SEQUENCE = "sequence"  # the cell agrees at every step checked, the outputs part
    OUTPUTS = "outputs"  # the outputs part; no cell was given to tell which of the two


class GateFit(NamedTuple):
    """One gate that alone explains a cell step: its name (layers.GATES) and the largest change of its value."""

    gate: str
    change: float


class Divergence(NamedTuple):
    """The first place one direction of one call parts from the reference, and what the cell said there."""

    direction: Direction | None  # None: not Bidirectional
    call: int | None  # the call of a stateful run (None: a single call)
    timestep: int | None  # input time (None: only a final value differs, or nothing does)
    step: int | None  # processing step (go_backwards: timestep T-1-step)
    row: int | None  # batch row (the worst at that step)
    output: str | None  # the output (or, for a cell finding, the cell's state) that parts; None: nothing does
    cell_agrees: bool | None  # None: no cell given
    gate: str | None  # the best GateFit's gate (None: none fits, or not a cell finding)
    gate_change: float | None
    ratio: float = 0.0  # err/tol there
    fits: tuple[GateFit, ...] = ()  # every gate that alone explains the cell's step, smallest change first

    @property
    def finding(self) -> Finding:
        if self.output is None:
            return Finding.NONE
        if self.cell_agrees is None:
            return Finding.OUTPUTS
        return Finding.SEQUENCE if self.cell_agrees else Finding.CELL

    def text(self) -> str:
        """One line, or two where the gate does not fit on the first."""
        where = ", ".join(([f"{self.direction.value} direction"] if self.direction else [])
                          + ([f"call {self.call}"] if self.call is not None else []))
        prefix = f"[{where}] " if where else ""
        finding = self.finding
        if finding == Finding.NONE:
            cell = ", and Keras's cell agrees on identical inputs" if self.cell_agrees else ""
            return f"{prefix}no divergence: Keras agrees with the reference at every step checked{cell}"
        size = f"err/tol {_num(self.ratio)}"
        if self.step is not None:
            position = f"timestep {self.timestep} (processing step {self.step}), batch row {self.row}"
        else:
            position = f"the final {self.output}, batch row {self.row}"
        if finding == Finding.CELL:
            why = f"Keras's cell disagrees with the reference on identical inputs ({self.output}, {size})"
            detail = (f"the {layers.GATE_NAMES[self.gate]} would have to change by {_num(self.gate_change)} "
                      "to explain it" if self.gate else "no single gate explains it")
        elif finding == Finding.SEQUENCE:
            agrees = "on identical inputs" if self.step is not None else "at every step"
            why = f"Keras's cell agrees with the reference {agrees}, yet {self.output} differs ({size})"
            detail = "a loop, mask, reversal or state-carry bug"
        else:
            why = f"{self.output} differs ({size})"
            detail = "no cell was driven (a port gives outputs only), so a cell bug and a sequence bug look alike"
        line = f"{prefix}first divergence: {position}: {why}; {detail}"
        return line if len(line) <= 120 else f"{prefix}first divergence: {position}: {why};\n  {detail}"


def _num(v: float | None) -> str:
    return "inf" if v is None or math.isinf(v) else f"{v:.2g}"


# ---------------------------------------------------------------- solving for one gate

@functools.cache
def activation_range(name: str | None) -> tuple[float, float]:
    """[min, max] of an activation, read off the reference's own function on a wide grid (no table)."""
    grid = np.concatenate([-np.logspace(-8, 8, 1601), np.linspace(-20.0, 20.0, 40001), np.logspace(-8, 8, 1601)])
    with np.errstate(all="ignore"):
        # Two columns: softmax and sparsemax act along the last axis.
        values = recurrent.activation(name)(np.stack([grid, np.zeros_like(grid)], axis=-1))
    values = values[~np.isnan(values)]
    return float(values.min()), float(values.max())


def _interval(target: Array, known: Array, coef: Array, tolerance: Tolerance) -> tuple[Array, Array]:
    """Per element, the values v with ``known + coef*v`` within tolerance of ``target`` (empty: lo > hi)."""
    allowed = tolerance.atol + tolerance.rtol * np.abs(target)
    resid = target - known
    with np.errstate(divide="ignore", invalid="ignore"):
        center, half = resid / coef, allowed / np.abs(coef)
    free = np.abs(resid) <= allowed  # where coef is 0: any v, or none
    lo = np.where(coef == 0, np.where(free, -np.inf, np.inf), center - half)
    hi = np.where(coef == 0, np.where(free, np.inf, -np.inf), center + half)
    return lo, hi


def _change(ref: Array, lo: Array, hi: Array, bounds: tuple[float, float]) -> float | None:
    """The largest distance from ``ref`` to the admissible values [lo, hi] within ``bounds``; None: none."""
    lo, hi = np.maximum(lo, bounds[0]), np.minimum(hi, bounds[1])
    if not np.all(lo <= hi):
        return None
    return float(np.max(np.maximum(np.maximum(lo - ref, ref - hi), 0.0), initial=0.0))


def _invert(fn: Callable[[Array], Array], target: Array, lo: float, hi: float) -> Array:
    """Per element, the v in [lo, hi] where the monotone ``fn(v)`` is nearest ``target`` (bisection)."""
    a = np.full(target.shape, max(lo, -SOLVE_BOUND))
    b = np.full(target.shape, min(hi, SOLVE_BOUND))
    rising = fn(b) >= fn(a)
    for _ in range(_BISECTIONS):
        mid = 0.5 * (a + b)
        below = (fn(mid) < target) == rising
        a, b = np.where(below, mid, a), np.where(below, b, mid)
    return 0.5 * (a + b)


def _within(actual: Array, desired: Array, tolerance: Tolerance) -> bool:
    return bool(np.all(ratios(actual, desired, tolerance) <= 1.0))


def _lstm_fits(cfg: Mapping, g: recurrent.LstmGates, new_states: Sequence[Array], tol: Tolerance) -> list[GateFit]:
    act = recurrent.activation(cfg["activation"])
    gate_range, cand_range = activation_range(cfg["recurrent_activation"]), activation_range(cfg["activation"])
    h_k, c_k = (np.asarray(s, dtype=np.float64) for s in new_states)
    fits: list[GateFit] = []
    h_follows = _within(h_k, g.o * act(c_k), tol)  # c' alone explains h': only f, i or c can be the gate
    for gate, known, coef, ref, bounds in (("f", g.i * g.c, g.c_prev, g.f, gate_range),
                                           ("i", g.f * g.c_prev, g.c, g.i, gate_range),
                                           ("c", g.f * g.c_prev, g.i, g.c, cand_range)):
        change = _change(ref, *_interval(c_k, known, coef, tol), bounds) if h_follows else None
        if change is not None:
            fits.append(GateFit(gate, change))
    if _within(c_k, g.f * g.c_prev + g.i * g.c, tol):  # c' agrees: only o can explain h'
        change = _change(g.o, *_interval(h_k, np.zeros_like(h_k), act(c_k), tol), gate_range)
        if change is not None:
            fits.append(GateFit("o", change))
    return fits


def _gru_fits(cfg: Mapping, g: recurrent.GruGates, new_states: Sequence[Array], tol: Tolerance) -> list[GateFit]:
    act = recurrent.activation(cfg["activation"])
    gate_range, cand_range = activation_range(cfg["recurrent_activation"]), activation_range(cfg["activation"])
    h_k = np.asarray(new_states[0], dtype=np.float64)
    fits: list[GateFit] = []
    change = _change(g.z, *_interval(h_k, g.h, g.h_prev - g.h, tol), gate_range)
    if change is not None:
        fits.append(GateFit("z", change))
    lo, hi = _interval(h_k, g.z * g.h_prev, 1.0 - g.z, tol)
    change = _change(g.h, lo, hi, cand_range)
    if change is not None:
        fits.append(GateFit("h", change))
        if cfg["reset_after"]:  # h = act(x_part + r*recurrent): r alone, unit by unit
            def candidate(r: Array) -> Array:
                return act(g.x_part + r * g.recurrent)
            lo, hi = np.maximum(lo, cand_range[0]), np.minimum(hi, cand_range[1])
            r = _invert(candidate, 0.5 * (np.maximum(lo, -SOLVE_BOUND) + np.minimum(hi, SOLVE_BOUND)), *gate_range)
            fits_r = (candidate(r) >= lo) & (candidate(r) <= hi)
            ref_fits = (candidate(g.r) >= lo) & (candidate(g.r) <= hi)
            if np.all(fits_r | ref_fits):
                fits.append(GateFit("r", float(np.max(np.where(ref_fits, 0.0, np.abs(r - g.r)), initial=0.0))))
    return fits


def gate_fits(cfg: Mapping, gates, new_states: Sequence[Array], tolerance: Tolerance) -> tuple[GateFit, ...]:
    """The gates that alone explain a cell step whose new states (Keras order) are ``new_states``, given
    the reference's ``gates`` for that step (reference.recurrent.LstmGates / GruGates), smallest change
    first; () for SimpleRNN."""
    solve = {"LSTM": _lstm_fits, "GRU": _gru_fits}.get(cfg["class"])
    if solve is None:
        return ()
    return tuple(sorted(solve(cfg, gates, new_states, tolerance), key=lambda fit: fit.change))


# ---------------------------------------------------------------- what Keras returned, per direction

class _Observed(NamedTuple):
    """What Keras returned that belongs to one direction."""

    sequence: tuple[str, Array] | None  # (output name, (B, steps, U) in that direction's processing order)
    finals: tuple[tuple[str, Array, int | None], ...]  # (name, value, state index; None: the last output)


def _observed(cfg: Mapping, outputs: Mapping[OutputKey, Array], call: int | None, index: int) -> _Observed:
    def get(name: str) -> Array | None:
        value = outputs.get(OutputKey(name, call))
        return None if value is None else np.asarray(value, dtype=np.float64)

    sequences = layers.returns(cfg, "return_sequences")
    if not layers.is_bidirectional(cfg):
        name, part = "output", get("output")
        states = layers.state_names(cfg["class"])
    else:
        n_fw = len(layers.state_names(cfg["layer"]["class"]))
        names = layers.state_output_names(cfg)
        states = tuple(names[:n_fw] if index == 0 else names[n_fw:])
        if cfg["merge_mode"] is None:
            name = "output_fw" if index == 0 else "output_bw"
            part = get(name)
        elif cfg["merge_mode"] == "concat":
            name, merged, units = "output", get("output"), cfg["layer"]["units"]
            part = None if merged is None else (merged[..., :units] if index == 0 else merged[..., units:])
        else:  # sum, ave, mul: the directions cannot be told apart in the output
            name, part = "output", None
        if part is not None and sequences and index == 1:
            part = part[:, ::-1]  # §4: the backward sequence comes back in input time; its own order is reversed
    finals = [] if sequences or part is None else [(name, part, None)]
    if layers.returns(cfg, "return_state"):
        finals += [(s, get(s), j) for j, s in enumerate(states) if get(s) is not None]
    return _Observed((name, part) if sequences and part is not None else None, tuple(finals))


# ---------------------------------------------------------------- one direction

class _Hit(NamedTuple):
    step: int | None
    row: int
    output: str
    ratio: float


def _worst(r: Array) -> tuple[int, float]:
    """(batch row, ratio) of the largest ratio in ``r``."""
    flat = int(np.argmax(r))
    return int(np.unravel_index(flat, r.shape)[0]), float(r.reshape(-1)[flat])


def _sequence_hit(observed: _Observed, steps: list[recurrent.Step], tol: Tolerance) -> _Hit | None:
    if observed.sequence is None or not steps:
        return None
    name, keras_seq = observed.sequence
    r = ratios(keras_seq, np.stack([s.output for s in steps], axis=1), tol)
    over = np.flatnonzero(r.max(axis=(0, 2)) > 1.0)
    if not over.size:
        return None
    row, ratio = _worst(r[:, over[0]])
    return _Hit(int(over[0]), row, name, ratio)


def _final_hit(observed: _Observed, steps: list[recurrent.Step], tol: Tolerance) -> _Hit | None:
    if not steps:
        return None
    last = steps[-1]
    for name, value, j in observed.finals:
        r = ratios(value, last.output if j is None else last.states[j], tol)
        if r.size and r.max() > 1.0:
            row, ratio = _worst(r)
            return _Hit(None, row, name, ratio)
    return None


def _cell_hit(cfg: Mapping, steps: list[recurrent.Step], cell: CellStep, tol: Tolerance):
    """The first step whose cell result disagrees on the reference's states: (hit, Keras's new states)."""
    names = layers.state_names(cfg["class"])
    for s in steps:
        out, new_states = cell(s.x_t, list(s.states_before))
        pairs = [*zip(names, new_states, s.cell_states), ("output", out, s.cell_output)]
        for name, got, want in pairs:
            r = ratios(got, want, tol)
            if r.size and r.max() > 1.0:
                row, ratio = _worst(r)
                return _Hit(s.index, row, name, ratio), [np.asarray(v, dtype=np.float64) for v in new_states]
    return None, None


def _one(run: recurrent.CellRun, direction: Direction | None, call: int | None, x: Array, mask: Array | None,
         observed: _Observed, cell: CellStep | None, tol: Tolerance) -> Divergence:
    steps = list(recurrent.trace(run.cfg, x, run.weights, mask, run.initial_state, run.zero_output_for_mask))
    parted = _sequence_hit(observed, steps, tol) or _final_hit(observed, steps, tol)
    base = dict(direction=direction, call=call, gate=None, gate_change=None)
    cell_agrees = None
    if cell is not None:
        limit = parted.step if parted is not None and parted.step is not None else len(steps) - 1
        hit, new_states = _cell_hit(run.cfg, steps[:limit + 1], cell, tol)
        if hit is not None:
            fits = gate_fits(run.cfg, steps[hit.step].gates, new_states, tol)
            gate, change = fits[0] if fits else (None, None)
            return Divergence(**{**base, "gate": gate, "gate_change": change},
                              timestep=steps[hit.step].timestep, step=hit.step, row=hit.row, output=hit.output,
                              cell_agrees=False, ratio=hit.ratio, fits=fits)
        cell_agrees = True
    if parted is None:
        return Divergence(**base, timestep=None, step=None, row=None, output=None, cell_agrees=cell_agrees)
    timestep = steps[parted.step].timestep if parted.step is not None else None
    return Divergence(**base, timestep=timestep, step=parted.step, row=parted.row, output=parted.output,
                      cell_agrees=cell_agrees, ratio=parted.ratio)


def first_divergence(cfg: Mapping, x: Array, weights: Mapping, keras_outputs: Mapping[OutputKey, Array],
                     tolerance: Tolerance, mask: Array | None = None, initial_state: list[Array] | None = None,
                     cell_step: CellStep | Mapping[Direction, CellStep] | None = None,
                     call: int | None = None) -> tuple[Divergence, ...]:
    """One Divergence per direction (see the module docstring).

    ``cfg`` has every Keras default filled (keras_api.with_defaults); ``weights`` and ``initial_state``
    are what the reference takes (reference.recurrent.forward); ``keras_outputs`` are Keras's by key,
    those of call ``call`` read.  ``cell_step`` is one callable for a plain layer, one per Direction for
    Bidirectional (a direction left out is not driven).  ValueError where an output's shape is not the
    reference's."""
    runs = recurrent.cell_runs(cfg, weights, initial_state)
    bidirectional = len(runs) == 2
    if bidirectional and cell_step is not None and not isinstance(cell_step, Mapping):
        raise ValueError("Bidirectional: give cell_step as a mapping Direction -> callable, one per direction")
    directions = (Direction.FORWARD, Direction.BACKWARD) if bidirectional else (None,)
    result = []
    for index, (run, direction) in enumerate(zip(runs, directions)):
        cell = cell_step.get(direction) if isinstance(cell_step, Mapping) else cell_step
        observed = _observed(cfg, keras_outputs, call, index)
        result.append(_one(run, direction, call, np.asarray(x), mask, observed, cell, tolerance))
    return tuple(result)
