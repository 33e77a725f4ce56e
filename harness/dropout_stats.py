"""Statistics of the dropout masks recovered from Keras (reference/dropout.py), as checks.

The mask-set fit proves each row used one mask set of entries 0 or 1/(1-p), reused at every
step.  These checks test what that structure cannot see, each failing a correct Keras with at
most ``FALSE_ALARM`` probability (computed from the binomial law, stated in its message):

- the fraction of entries kept is consistent with 1-p, for the input and the recurrent masks
  separately (a rate used as keep-probability, a recurrent mask drawn at the input rate);
- the rows do not all share one mask set (one mask drawn for the whole batch);
- the recurrent masks are not copies of the input masks (one draw used twice).

A check whose false-alarm probability cannot get below FALSE_ALARM with the case's entries
(too few rows or entries) is not made.  No Keras here.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .reference.dropout import RowFit
from .result import Check

FALSE_ALARM = 1e-6


def _log_pmf(n: int, k: int, q: float) -> float:
    if q in (0.0, 1.0):
        return 0.0 if k == (n if q == 1.0 else 0) else -math.inf
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * math.log(q) + (n - k) * math.log1p(-q)


def kept_interval(n: int, q: float, alpha: float = FALSE_ALARM) -> tuple[int, int]:
    """The counts of kept entries a correct Keras (keep probability q, n entries) gives except
    with probability at most alpha: each tail outside holds at most alpha/2."""
    pmf = [math.exp(_log_pmf(n, k, q)) for k in range(n + 1)]
    lo, tail = 0, 0.0
    while lo < n and tail + pmf[lo] <= alpha / 2:
        tail += pmf[lo]
        lo += 1
    hi, tail = n, 0.0
    while hi > 0 and tail + pmf[hi] <= alpha / 2:
        tail += pmf[hi]
        hi -= 1
    return lo, hi


def _rate_check(name: str, masks: list[np.ndarray], rate: float) -> list[Check]:
    entries = np.concatenate([m.ravel() for m in masks]) if masks else np.zeros(0)
    n, kept = entries.size, int(np.count_nonzero(entries))
    lo, hi = kept_interval(n, 1.0 - rate)
    if lo == 0 and hi == n:
        return []  # too few entries for any count to be improbable
    ok = lo <= kept <= hi
    detail = (f"{kept} of {n} {name} mask entries kept ({kept / n:.1%}); rate {rate:g} keeps {lo} to {hi} "
              f"of them except with probability {FALSE_ALARM:g}")
    return [Check(f"dropout {name} rate", ok, detail)]


def _shared_rows_check(fits: Sequence[RowFit], rates: list[tuple[int, float]]) -> list[Check]:
    """All rows' mask sets identical, with the probability that independent draws are."""
    if len(fits) < 2:
        return []
    # Independent rows all equal: each entry the same in every row, q^B + (1-q)^B per entry.
    log_p = sum(n * math.log((1 - r) ** len(fits) + r ** len(fits)) for n, r in rates)
    if log_p > math.log(FALSE_ALARM):
        return []
    first = fits[0].masks.inputs + fits[0].masks.recurrent
    shared = all(all(np.array_equal(a, b) for a, b in zip(first, f.masks.inputs + f.masks.recurrent))
                 for f in fits[1:])
    detail = (f"the {len(fits)} rows drew {'one and the same' if shared else 'different'} mask sets "
              f"(independent rows all agree with probability {math.exp(log_p):.1g})")
    return [Check("dropout rows independent", not shared, detail)]


def _copied_masks_check(fits: Sequence[RowFit], rate_in: float, rate_rec: float) -> list[Check]:
    """Every recurrent mask equal to the input mask of its gate (possible only when F == U)."""
    pairs = [(i, r) for f in fits for i, r in zip(f.masks.inputs, f.masks.recurrent) if i.shape == r.shape]
    if not pairs or any(len(f.masks.inputs) != len(f.masks.recurrent) for f in fits):
        return []
    # Two independent entries agree (both kept or both dropped) with probability a.
    a = (1 - rate_in) * (1 - rate_rec) + rate_in * rate_rec
    log_p = sum(i.size for i, _ in pairs) * math.log(a)
    if log_p > math.log(FALSE_ALARM):
        return []
    copied = all(np.array_equal(i > 0, r > 0) for i, r in pairs)
    detail = (f"the recurrent masks {'copy' if copied else 'differ from'} the input masks in every row and gate "
              f"(independent draws agree everywhere with probability {math.exp(log_p):.1g})")
    return [Check("dropout masks independent", not copied, detail)]


def checks(fits: Sequence[RowFit], cfg) -> list[Check]:
    """The statistical checks of one training-mode run's recovered masks (none if a row did not fit)."""
    if not fits or not all(f.passed for f in fits):
        return []
    rate_in, rate_rec = cfg["dropout"], cfg["recurrent_dropout"]
    inputs = [m for f in fits for m in f.masks.inputs]
    recurrent = [m for f in fits for m in f.masks.recurrent]
    out = []
    if inputs:
        out += _rate_check("input", inputs, rate_in)
    if recurrent:
        out += _rate_check("recurrent", recurrent, rate_rec)
    per_row = [(sum(m.size for m in fits[0].masks.inputs), rate_in),
               (sum(m.size for m in fits[0].masks.recurrent), rate_rec)]
    out += _shared_rows_check(fits, [(n, r) for n, r in per_row if n])
    if inputs and recurrent:
        out += _copied_masks_check(fits, rate_in, rate_rec)
    return out
