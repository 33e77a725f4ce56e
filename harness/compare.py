"""Compare one array with another; returns numbers and never raises (report.py words them).

Checks run in a fixed order, each stopping at its own ``Issue``: real numbers, a valid
tolerance, shape, dtype, NaN/Inf positions, then values with the ``np.isclose`` rule
``|actual - desired| <= atol + rtol * |desired|``.  A NaN passes only where the other side
has a NaN in the same place.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import NamedTuple

import numpy as np

from .tolerances import Tolerance

MAX_ROWS = 5


class Issue(str, Enum):
    """The first thing a comparison found wrong (NONE: it passed)."""

    NONE = "none"
    NOT_NUMBERS = "not numbers"  # one side is not an array of real numbers
    TOLERANCE = "tolerance"  # atol or rtol negative or NaN
    SHAPE = "shape"
    DTYPE = "dtype"
    POSITIONS = "positions"  # NaN / +Inf / -Inf at different places
    VALUES = "values"  # elements further apart than the tolerance allows


class WorstElement(NamedTuple):
    """One element of a comparison, with its error and what the tolerance allowed there."""

    index: tuple[int, ...]
    actual: float
    desired: float
    error: float
    allowed: float


@dataclass(frozen=True)
class Comparison:
    """The outcome of comparing one named output: numbers only."""

    name: str
    against: str  # what the actual values were compared with: "reference", "expected values"
    passed: bool
    issue: Issue = Issue.NONE
    shape: tuple[int, ...] = ()
    desired_shape: tuple[int, ...] = ()
    dtype: str = ""
    expected_dtype: str | None = None
    n_bad: int = 0
    n_total: int = 0
    max_abs: float = 0.0
    max_rel: float = 0.0
    worst_index: tuple[int, ...] | None = None  # the element furthest over (or nearest) its allowance
    tolerance: Tolerance | None = None
    worst: list[WorstElement] = field(default_factory=list)
    max_abs_index: tuple[int, ...] | None = None  # where max_abs is (may differ from worst_index)
    special: str = ""  # POSITIONS: which of NaN, +Inf, -Inf
    first: tuple[float, float] | None = None  # POSITIONS: (actual, desired) at worst_index
    rejected_side: str = ""  # NOT_NUMBERS: "actual" or what it was compared with
    rejected_value: str = ""  # NOT_NUMBERS: the value's repr, cut to 80 characters

    @property
    def ratio(self) -> float:
        """Worst error as a fraction of what was allowed there (>1 means failed)."""
        if not self.worst:
            return 0.0 if self.passed else float("inf")
        return max(w.error / w.allowed if w.allowed > 0 else (float("inf") if w.error > 0 else 0.0)
                   for w in self.worst)


def _numbers(a) -> np.ndarray | None:
    """``a`` as a float64 array, or None when it is not an array of real numbers."""
    try:
        arr = np.asarray(a)
        # Objects (None would become NaN), strings, dates and complex numbers are not compared.
        if arr.dtype.kind in "OSUMmc":
            return None
        return arr.astype(np.float64)
    except (TypeError, ValueError):
        return None


def _index(flat_or_tuple, shape) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(flat_or_tuple, shape))


def compare(name: str, actual, desired, tol: Tolerance, against: str = "reference",
            expected_dtype: str | None = None) -> Comparison:
    """Compare ``actual`` with ``desired`` under ``tol``; see the module docstring for the order."""
    act, des = _numbers(actual), _numbers(desired)
    dtype = str(np.asarray(actual).dtype) if act is not None else type(actual).__name__
    base = dict(name=name, against=against, dtype=dtype, tolerance=tol, expected_dtype=expected_dtype,
                n_total=int(des.size) if des is not None else 0)
    if act is None or des is None:
        side, value = ("actual", actual) if act is None else (against, desired)
        return Comparison(passed=False, issue=Issue.NOT_NUMBERS, rejected_side=side, rejected_value=f"{value!r:.80}",
                          **base)
    base.update(shape=act.shape, desired_shape=des.shape)
    if not (tol.atol >= 0 and tol.rtol >= 0):  # a NaN tolerance would let every error through
        return Comparison(passed=False, issue=Issue.TOLERANCE, **base)
    if act.shape != des.shape:
        return Comparison(passed=False, issue=Issue.SHAPE, **base)
    if expected_dtype is not None and dtype != expected_dtype:
        return Comparison(passed=False, issue=Issue.DTYPE, **base)
    for label, test in (("NaN", np.isnan), ("+Inf", np.isposinf), ("-Inf", np.isneginf)):
        differs = test(act) != test(des)
        if differs.any():
            idx = tuple(int(i) for i in np.argwhere(differs)[0])
            return Comparison(passed=False, issue=Issue.POSITIONS, special=label, n_bad=int(differs.sum()),
                              worst_index=idx, first=(float(act[idx]), float(des[idx])), **base)
    finite = np.isfinite(act) & np.isfinite(des)
    # inf - inf (equal infinities, already matched by position) must not warn; huge - -huge is inf.
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        err = np.where(finite, np.abs(act - des), 0.0)
        allowed = tol.atol + tol.rtol * np.abs(np.where(finite, des, 0.0))
        rel = np.where(finite & (des != 0), err / np.abs(des), 0.0)
    bad = err > allowed
    max_abs = float(err.max()) if err.size else 0.0
    max_abs_index = _index(int(np.argmax(err)), err.shape) if err.size else None
    max_rel = float(rel.max()) if rel.size else 0.0
    # Worst first by how far over (or how close to) the allowance each element is.
    score = np.where(allowed > 0, err / np.where(allowed > 0, allowed, 1.0), np.where(err > 0, np.inf, 0.0))
    order = np.argsort(score, axis=None)[::-1][:MAX_ROWS] if score.size else []
    rows = []
    for flat in order:
        idx = _index(flat, act.shape)
        if bad.any() and not bad[idx]:
            break
        rows.append(WorstElement(idx, float(act[idx]), float(des[idx]), float(err[idx]), float(allowed[idx])))
    n_bad = int(bad.sum())
    return Comparison(passed=n_bad == 0, issue=Issue.VALUES if n_bad else Issue.NONE, n_bad=n_bad,
                      max_abs=max_abs, max_rel=max_rel, worst_index=rows[0].index if rows else None, worst=rows,
                      max_abs_index=max_abs_index, **base)
