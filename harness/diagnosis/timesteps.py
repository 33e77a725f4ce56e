"""Error by timestep: how far over its tolerance each timestep of one output is, and one line that shows it.

The measure is the one compare.py judges with: an element passes when ``|a - d| <= atol + rtol*|d|``
(``d`` the reference), so ``err/tol`` = ``|a - d| / (atol + rtol*|d|)`` is over 1 exactly where compare
counts it bad (NaN against NaN and equal infinities are 0, one NaN or infinity alone is inf).  A
(B, T, U) output gets the worst ratio of each timestep (its own axis 1: processing order for a
go_backwards layer), any other output one value.

``row_text`` prints the ratios as one line of at most ``LINE_WIDTH`` characters: every timestep as a
number while they fit, else a strip of one mark per timestep (or per bucket of timesteps, the worst
in it) on the scale ``SCALE``, framed by the first timestep over and the worst one.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..case import OutputKey
from ..tolerances import Tolerance

LINE_WIDTH = 120
# Strip marks, by the worst err/tol they stand for: (upper bound, mark); above the last bound '#'.
SCALE: tuple[tuple[float, str], ...] = ((0.01, "_"), (0.1, "."), (1.0, "-"), (10.0, "+"))
OVER_MARK = "#"
SCALE_TEXT = "err/tol marks: _ <=0.01  . <=0.1  - <=1  + <=10 (over)  # >10 (far over)"
FIRST_OVER = "<- first over"


class TimestepErrors(NamedTuple):
    """One output's worst err/tol per timestep (a (B, T, U) output) or overall (any other shape)."""

    key: OutputKey
    ratios: tuple[float, ...]  # one per timestep when by_timestep, else one value
    by_timestep: bool
    first_over: int | None  # the first timestep whose worst ratio is over 1 (None: none, or not by timestep)
    row: int | None  # the batch row of the worst element there (not by timestep: overall); None: nothing over

    @property
    def worst(self) -> float:
        return max(self.ratios, default=0.0)

    @property
    def passed(self) -> bool:
        return self.worst <= 1.0


def ratios(actual, desired, tolerance: Tolerance) -> np.ndarray:
    """Elementwise err/tol under compare.py's rule (see the module docstring); same shape as the inputs."""
    a, d = np.asarray(actual, dtype=np.float64), np.asarray(desired, dtype=np.float64)
    if a.shape != d.shape:
        raise ValueError(f"shapes differ: actual {a.shape}, desired {d.shape}")
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        err = np.abs(a - d)
        allowed = tolerance.atol + tolerance.rtol * np.abs(d)
        r = np.where(allowed > 0, err / np.where(allowed > 0, allowed, 1.0), np.where(err > 0, np.inf, 0.0))
    same = (a == d) | (np.isnan(a) & np.isnan(d))
    return np.where(same, 0.0, np.where(np.isnan(r), np.inf, r))


def _row_of_worst(r: np.ndarray) -> int:
    """The batch row (axis 0) of the largest ratio in ``r``."""
    return int(np.unravel_index(int(np.argmax(r)), r.shape)[0])


def by_timestep(key: OutputKey, actual, desired, tolerance: Tolerance) -> TimestepErrors:
    """err/tol of ``actual`` against the reference ``desired`` by timestep; ValueError if the shapes differ."""
    r = ratios(actual, desired, tolerance)
    if r.ndim != 3:
        worst = float(r.max()) if r.size else 0.0
        return TimestepErrors(key, (worst,), False, None, _row_of_worst(r) if worst > 1.0 else None)
    per_step = r.max(axis=(0, 2)) if r.size else np.zeros(r.shape[1])
    over = np.flatnonzero(per_step > 1.0)
    first = int(over[0]) if over.size else None
    row = _row_of_worst(r[:, first]) if first is not None else None
    return TimestepErrors(key, tuple(float(v) for v in per_step), True, first, row)


def number(v: float) -> str:
    """A ratio in at most 5 characters: 0, 0.003, 0.41, 3.1, 40, 4200, 3e+05, inf."""
    if v == 0.0:
        return "0"
    if math.isinf(v) or math.isnan(v):
        return "inf"
    if v < 0.001:
        return f"{v:.0e}".replace("e-0", "e-")
    if v < 100:
        return f"{v:.2g}"
    return f"{v:.0f}" if v < 1e5 else f"{v:.0e}".replace("e+0", "e+")


def mark(v: float) -> str:
    """The strip mark of one ratio (SCALE)."""
    return next((m for bound, m in SCALE if v <= bound), OVER_MARK)


def _strip(values: tuple[float, ...], width: int) -> str:
    """One mark per timestep, or per bucket of ceil(T/width) timesteps (the worst in it)."""
    size = max(1, math.ceil(len(values) / max(width, 1)))
    return "".join(mark(max(values[i:i + size])) for i in range(0, len(values), size))


def row_text(errors: TimestepErrors) -> str:
    """One line, at most LINE_WIDTH characters, e.g.
    ``output  err/tol by timestep  t0 0.01  t1 0.02  t2 3.1 <- first over  t3 40``."""
    key = str(errors.key)
    if not errors.by_timestep:
        where = f" over (row {errors.row})" if errors.row is not None else ""
        return f"{key}  err/tol {number(errors.worst)}{where}"
    values = errors.ratios
    if not values:
        return f"{key}  err/tol by timestep: no timesteps"
    cells = [f"t{t} {number(v)}" + (f" {FIRST_OVER} (row {errors.row})" if t == errors.first_over else "")
             for t, v in enumerate(values)]
    line = f"{key}  err/tol by timestep  " + "  ".join(cells)
    if len(line) <= LINE_WIDTH:
        return line
    worst_t = int(np.argmax(values))
    if errors.first_over is None:
        tail = f"  within tolerance, worst t{worst_t} {number(values[worst_t])}"
    else:
        f = errors.first_over
        tail = (f"  first over t{f} {number(values[f])} (row {errors.row}), worst t{worst_t} "
                f"{number(values[worst_t])}")
    head = f"{key}  err/tol by timestep (T={len(values)}) "
    strip = _strip(values, LINE_WIDTH - len(head) - len(tail) - 2)
    return f"{head}[{strip}]{tail}"
