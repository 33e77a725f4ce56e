"""Error by timestep on hand-made arrays: every expected ratio is worked out in the comment beside it."""
from __future__ import annotations

import math

import numpy as np
import pytest

from harness.case import OutputKey
from harness.diagnosis import timesteps
from harness.diagnosis.timesteps import by_timestep, row_text
from harness.tolerances import Tolerance

# allowed = atol + rtol*|desired| = 0.1 + 0.05*2 = 0.2 where desired is 2.
TOL = Tolerance(0.1, 0.05, "test")


def sequence_with_errors() -> tuple[np.ndarray, np.ndarray]:
    """(2, 4, 2) desired 2 everywhere; actual off by 0.002, 0.004, 0.62 (row 1), 8 (row 0) at t0..t3."""
    desired = np.full((2, 4, 2), 2.0)
    actual = desired.copy()
    actual[0, 0, 1] += 0.002  # 0.002 / 0.2 = 0.01
    actual[1, 1, 0] -= 0.004  # 0.004 / 0.2 = 0.02
    actual[1, 2, 1] += 0.62  # 0.62 / 0.2 = 3.1: the first timestep over, in row 1
    actual[0, 2, 0] += 0.1  # 0.1 / 0.2 = 0.5: same timestep, row 0, within tolerance
    actual[0, 3, 0] += 8.0  # 8 / 0.2 = 40
    return actual, desired


def test_ratios_per_timestep_first_over_and_its_row():
    actual, desired = sequence_with_errors()
    errors = by_timestep(OutputKey("output"), actual, desired, TOL)
    assert errors.by_timestep
    np.testing.assert_allclose(errors.ratios, [0.01, 0.02, 3.1, 40.0], rtol=1e-9)
    assert (errors.first_over, errors.row) == (2, 1)
    assert errors.worst == pytest.approx(40.0) and not errors.passed


def test_the_allowance_scales_with_the_reference_not_the_actual_value():
    # desired 10, actual 11: allowed 0.1 + 0.05*10 = 0.6, so 1/0.6 (against |actual| it would be 1/0.65).
    errors = by_timestep(OutputKey("h"), np.array([[11.0]]), np.array([[10.0]]), TOL)
    assert errors.ratios == pytest.approx((1 / 0.6,))
    assert (errors.by_timestep, errors.first_over, errors.row) == (False, None, 0)


def test_within_tolerance_has_no_first_over():
    desired = np.zeros((3, 5, 2))
    errors = by_timestep(OutputKey("output"), desired + 0.05, desired, TOL)  # 0.05 / 0.1 = 0.5 everywhere
    assert errors.ratios == pytest.approx((0.5,) * 5)
    assert (errors.first_over, errors.row, errors.passed) == (None, None, True)


def test_nan_and_infinity_follow_compare():
    desired = np.array([[1.0, np.nan, np.inf, 1.0]])
    actual = np.array([[1.0, np.nan, np.inf, np.nan]])  # NaN=NaN and inf=inf pass; NaN against 1 does not
    errors = by_timestep(OutputKey("c"), actual, desired, TOL)
    assert errors.ratios == (math.inf,)
    assert by_timestep(OutputKey("c"), actual[:, :3], desired[:, :3], TOL).ratios == (0.0,)


def test_shapes_must_match():
    with pytest.raises(ValueError, match="shapes differ"):
        by_timestep(OutputKey("output"), np.zeros((2, 3, 1)), np.zeros((2, 4, 1)), TOL)


def test_row_text_short_sequence_is_pinned():
    actual, desired = sequence_with_errors()
    assert row_text(by_timestep(OutputKey("output"), actual, desired, TOL)) == (
        "output  err/tol by timestep  t0 0.01  t1 0.02  t2 3.1 <- first over (row 1)  t3 40")


def test_row_text_of_a_state_and_of_a_later_call():
    assert row_text(by_timestep(OutputKey("h", 2), np.array([[11.0]]), np.array([[10.0]]), TOL)) == (
        "call2.h  err/tol 1.7 over (row 0)")


def test_row_text_long_sequence_is_one_strip_framed_by_first_over_and_worst():
    desired = np.zeros((2, 200, 1))
    actual = desired.copy()
    actual[1, 57, 0] = 0.2  # 0.2 / 0.1 = 2: '+'
    actual[0, 199, 0] = 4.1  # 4.1 / 0.1 = 41: '#'
    line = row_text(by_timestep(OutputKey("output"), actual, desired, TOL))
    head = "output  err/tol by timestep (T=200) "  # 36 characters
    tail = "  first over t57 2 (row 1), worst t199 41"  # 41 characters
    # Strip room: 120 - 36 - 41 - 2 brackets = 41, so ceil(200/41) = 5 timesteps a mark, 40 marks;
    # t57 is in mark 57 // 5 = 11, t199 in mark 39, every other mark is 0 ('_').
    strip = ["_"] * 40
    strip[11], strip[39] = "+", "#"
    assert line == f"{head}[{''.join(strip)}]{tail}"
    assert len(line) <= timesteps.LINE_WIDTH


def test_marks_follow_the_scale():
    assert [timesteps.mark(v) for v in (0.0, 0.05, 0.5, 1.0, 1.01, 10.0, 11.0, math.inf)] == (
        ["_", ".", "-", "-", "+", "+", "#", "#"])
