"""The comparator: structure before values, NaN/Inf by position, the np.isclose rule, numbers by hand.

Values are chosen exact in binary (halves, quarters, eighths) so every expected error and
allowance below is computed by hand with no rounding.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from harness.compare import MAX_ROWS, Comparison, Issue, WorstElement, compare
from harness.report import problem
from harness.tolerances import Tolerance

NAN, INF = float("nan"), float("inf")


def tol(atol: float, rtol: float) -> Tolerance:
    return Tolerance(atol, rtol, "test")


def test_shape_mismatch_is_reported_before_values():
    c = compare("output", np.zeros((2, 3)), np.ones((3, 2)), tol(1e-5, 1e-5))
    assert not c.passed
    assert (c.issue, c.shape, c.desired_shape) == (Issue.SHAPE, (2, 3), (3, 2))
    assert problem(c) == "shape (2, 3) != (3, 2) (reference)"
    assert (c.shape, c.n_total, c.n_bad, c.worst) == ((2, 3), 6, 0, [])


def test_dtype_mismatch():
    values = np.array([0.5, 0.25])
    c = compare("h", values, values, tol(1e-5, 1e-5), expected_dtype="float32")
    assert (c.passed, problem(c), c.dtype) == (False, "dtype float64, expected float32", "float64")
    ok = compare("h", values.astype(np.float32), values, tol(1e-5, 1e-5), expected_dtype="float32")
    assert ok.passed and ok.dtype == "float32"
    assert compare("h", values.astype(np.float16), values, tol(1e-3, 1e-3)).dtype == "float16"


def test_nan_at_the_same_positions_passes():
    c = compare("o", [1.0, NAN, 3.0], [1.0, NAN, 3.0], tol(0.0, 0.0))
    assert (c.passed, c.n_bad, c.max_abs, problem(c)) == (True, 0, 0.0, "")


def test_nan_against_a_number_fails():
    c = compare("o", [[1.0, NAN]], [[1.0, 2.0]], tol(1e-5, 1e-5))
    assert not c.passed
    assert (c.issue, c.special, c.worst_index, c.first[1]) == (Issue.POSITIONS, "NaN", (0, 1), 2.0)
    assert problem(c) == "NaN positions differ at 1 elements, first at [0, 1] (actual nan, reference 2)"
    assert (c.n_bad, c.worst_index) == (1, (0, 1))
    # and the other way round
    assert not compare("o", [1.0, 2.0], [1.0, NAN], tol(1e-5, 1e-5)).passed


def test_nan_never_passes_by_accident():
    huge = tol(1e300, 1e300)
    assert not compare("o", [NAN], [0.0], huge).passed  # no tolerance covers a NaN
    assert not compare("o", [0.0], [NAN], huge).passed
    assert not compare("o", [NAN, 1.0], [1.0, NAN], huge).passed  # same count, other places
    assert not compare("o", [NAN], [INF], huge).passed
    # a NaN tolerance would make every `err > allowed` false
    c = compare("o", [1.0], [2.0], tol(NAN, 0.0))
    assert (c.passed, problem(c)) == (False, "invalid tolerance atol=nan rtol=0.0")
    assert not compare("o", [1.0], [1.0], tol(0.0, -1.0)).passed
    # None as an array is NaN to numpy; it must not match a NaN
    assert not compare("o", None, NAN, huge).passed


def test_inf_by_position_and_sign():
    same = compare("o", [INF, -INF, 1.0], [INF, -INF, 1.0], tol(0.0, 0.0))
    assert same.passed and same.max_abs == 0.0  # inf - inf is never computed
    flipped = compare("o", [1.0, INF], [1.0, -INF], tol(1e300, 1e300))
    assert not flipped.passed
    assert problem(flipped) == "+Inf positions differ at 1 elements, first at [1] (actual inf, reference -inf)"
    neg = compare("o", [-INF], [-1e308], tol(1e300, 1e300))
    assert problem(neg) == "-Inf positions differ at 1 elements, first at [0] (actual -inf, reference -1e+308)"
    assert not compare("o", [1e308], [INF], tol(1e300, 1e300)).passed
    # finite but the difference overflows to inf: still a plain value failure
    big = compare("o", [1e308], [-1e308], tol(0.0, 0.0))
    assert not big.passed and big.max_abs == INF


@pytest.mark.parametrize("desired, edge", [
    (2.0, 2.5),     # allowed = 0.25 + 0.125 * 2 = 0.5, so 2.5 is just inside
    (2.0, 1.5),
    (-4.0, -3.25),  # allowed = 0.25 + 0.125 * 4 = 0.75 (|desired|)
    (0.0, 0.25),    # allowed = atol alone
])
def test_atol_rtol_boundary(desired, edge):
    t = tol(0.25, 0.125)
    at = compare("o", [edge], [desired], t)
    assert at.passed and at.worst[0].error == at.worst[0].allowed  # err == allowed passes (np.isclose's <=)
    beyond = np.nextafter(edge, edge + (edge - desired))  # one float further out
    out = compare("o", [beyond], [desired], t)
    assert not out.passed and out.n_bad == 1


def test_rtol_scales_with_desired_not_actual():
    # allowed = 0 + 0.375 * |2| = 0.75 < err 1; scaling by |actual| = 3 would allow 1.125.
    c = compare("o", [3.0], [2.0], tol(0.0, 0.375))
    assert not c.passed and c.worst == [WorstElement((0,), 3.0, 2.0, 1.0, 0.75)]


def test_worst_elements_and_max_errors_by_hand():
    actual = [[1.0, 2.5], [9.0, -0.875]]
    desired = [[1.0, 2.0], [8.0, -0.5]]
    # atol 0.125, rtol 0.0625:
    #   index   err    allowed = 0.125 + 0.0625*|d|   err/allowed   rel = err/|d|
    #   [0,0]   0      0.1875                         0             0
    #   [0,1]   0.5    0.25                           2.0           0.25
    #   [1,0]   1.0    0.625                          1.6           0.125
    #   [1,1]   0.375  0.15625                        2.4           0.75
    c = compare("output", actual, desired, tol(0.125, 0.0625))
    assert not c.passed
    assert (c.n_bad, c.n_total, c.shape) == (3, 4, (2, 2))
    assert (c.max_abs, c.max_abs_index, c.max_rel) == (1.0, (1, 0), 0.75)
    assert c.worst_index == (1, 1)
    assert c.worst == [((1, 1), -0.875, -0.5, 0.375, 0.15625),
                       ((0, 1), 2.5, 2.0, 0.5, 0.25),
                       ((1, 0), 9.0, 8.0, 1.0, 0.625)]
    assert c.ratio == 2.4
    assert (c.issue, c.n_bad, c.n_total, c.max_abs) == (Issue.VALUES, 3, 4, 1.0)
    assert problem(c) == "3 / 4 elements differ (75.0%); max abs err 1 (reference)"


def test_passing_comparison_shows_the_nearest_elements():
    # allowed = 0.5 + 0.5*|d|: [0] d=1 -> 1.0, err 0.5, ratio 0.5; [1] d=4 -> 2.5, err 2, ratio 0.8.
    c = compare("o", [1.5, 6.0], [1.0, 4.0], tol(0.5, 0.5))
    assert c.passed and c.n_bad == 0
    assert c.worst[0] == ((1,), 6.0, 4.0, 2.0, 2.5) and c.worst_index == (1,)
    assert c.ratio == 0.8


def test_failing_table_is_capped_and_lists_only_failures():
    desired = np.zeros(10)
    actual = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 0.0, 0.0, 0.0])
    c = compare("o", actual, desired, tol(0.5, 0.0))
    assert c.n_bad == 7 and len(c.worst) == MAX_ROWS
    assert [row[0] for row in c.worst] == [(6,), (5,), (4,), (3,), (2,)]


def test_max_rel_skips_zero_desired_and_is_zero_when_all_are():
    c = compare("o", [0.5, 3.0], [0.0, 2.0], tol(0.0, 0.0))
    assert (c.max_abs, c.max_rel) == (1.0, 0.5)  # rel of [0] is undefined and left out
    assert compare("o", [0.5], [0.0], tol(0.0, 0.0)).max_rel == 0.0


def test_scalars_and_empty_arrays():
    assert compare("o", np.float32(0.5), 0.5, tol(0.0, 0.0)).passed
    assert not compare("o", 0.75, 0.5, tol(0.125, 0.0)).passed
    empty = compare("o", np.zeros((2, 0)), np.zeros((2, 0)), tol(0.0, 0.0))
    assert (empty.passed, empty.n_total, empty.worst) == (True, 0, [])


@pytest.mark.parametrize("actual, desired", [
    (None, [1.0]), (["a"], [1.0]), ([[1.0], [1.0, 2.0]], [1.0]), ([1j], [1.0]),
    ({"x": 1}, [1.0]), ([1.0], object()), ([1.0], "1.0"),
])
def test_returns_data_and_never_raises(actual, desired):
    c = compare("o", actual, desired, tol(1.0, 1.0))
    assert isinstance(c, Comparison) and not c.passed
    assert "is not an array of real numbers" in problem(c)


def test_comparison_is_frozen_data():
    c = compare("o", [1.0], [1.0], tol(0.0, 0.0), against="expected values")
    assert (c.name, c.against, c.tolerance.source) == ("o", "expected values", "test")
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.passed = False  # type: ignore[misc]
