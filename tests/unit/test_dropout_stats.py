"""harness/dropout_stats.py on hand-made mask recoveries: the intervals by hand, each check's
verdict and the probability it states."""
from __future__ import annotations

import math

import numpy as np

from harness.dropout_stats import FALSE_ALARM, checks, kept_interval
from harness.keras_api import with_defaults
from harness.reference.dropout import RowFit
from harness.reference.recurrent import DropoutMasks

CFG = with_defaults({"class": "SimpleRNN", "units": 2, "dropout": 0.5, "recurrent_dropout": 0.5})


def fits(rows: list[tuple[list[float], list[float]]]) -> list[RowFit]:
    return [RowFit(b, 0.0, True, 0.5, DropoutMasks((np.array(i),), (np.array(r),))) for b, (i, r) in enumerate(rows)]


def test_kept_interval_by_hand():
    # n = 2, q = 1/2: P(0) = P(2) = 1/4; with alpha = 0.6 each tail may hold 0.3, so 0 and 2 go
    assert kept_interval(2, 0.5, alpha=0.6) == (1, 1)
    assert kept_interval(2, 0.5, alpha=0.4) == (0, 2)  # 1/4 > 0.2: nothing can go
    # n = 10, q = 0.9: P(10) = 0.9^10 = 0.3487 > 0.05, so the top stays at 10
    assert kept_interval(10, 0.9, alpha=0.1)[1] == 10
    # n = 40, q = 1/2, alpha 1e-6: the lower tail sum_{k<=lo-1} C(40,k)/2^40 stays under 5e-7
    lo, hi = kept_interval(40, 0.5)
    tail = sum(math.comb(40, k) for k in range(lo)) / 2 ** 40
    assert tail <= FALSE_ALARM / 2 < tail + math.comb(40, lo) / 2 ** 40 and hi == 40 - lo


def test_too_few_entries_make_no_check():
    assert checks(fits([([2.0, 0.0], [0.0, 2.0])]), CFG) == []  # 2 + 2 entries, one row


def test_every_row_the_same_masks_fails_independence():
    same = fits([([2.0, 0.0], [0.0, 2.0])] * 30)
    by_name = {c.name: c for c in checks(same, CFG)}
    shared = by_name["dropout rows independent"]
    # all 30 rows equal: (0.5^30 + 0.5^30)^4 = 2^-116 per the four entries
    assert not shared.passed and f"{2.0 ** -116:.1g}" in shared.detail


def test_recurrent_masks_copying_the_input_masks_fail():
    gen = np.random.default_rng(0)
    rows = []
    for _ in range(30):
        m = list(gen.choice([0.0, 2.0], 2))
        rows.append((m, m))
    by_name = {c.name: c for c in checks(fits(rows), CFG)}
    assert not by_name["dropout masks independent"].passed
    assert by_name["dropout rows independent"].passed


def test_a_row_that_did_not_fit_makes_no_statistics():
    bad = [RowFit(0, 1.0, False, 0.5, DropoutMasks((np.ones(2),), (np.ones(2),)))] * 40
    assert checks(bad, CFG) == []
