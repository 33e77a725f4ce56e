"""Pure checks (harness/checks.py) on hand-made outputs: no Keras, no run."""
from __future__ import annotations

import dataclasses

import numpy as np

from harness import checks
from harness.case import Case, Expect, InputSpec, MismatchSpec, OutputKey
from harness.reference.backward import Gradients
from harness.result import Pass

OUT = OutputKey("output")


def case(dtype: str = "float32") -> Case:
    return Case(base_id="c", path="c.yaml", line=1, about="", layer={"class": "GRU", "units": 2},
                input=InputSpec(2, 3, 2), dtype=dtype)


def test_a_reference_beyond_float32_is_refused():
    # 1e39 > float32's largest 3.4e38
    why = checks.ill_conditioned(case(), {OUT: np.array([1e39])}, {OUT: np.array([1e39])}, "float32")
    assert why.startswith("ill-conditioned: the float64 reference reaches 1e+39 in output, "
                          "beyond float32's largest 3.4e+38")


def test_rounding_that_uses_more_than_half_the_allowance_is_refused():
    # allowance at 1.0 is 1e-5 + 1e-5 = 2e-5; a move of 1.2e-5 uses 0.6 of it (> 0.5), 8e-6 uses 0.4
    expected = {OUT: np.array([1.0, 1.0])}
    assert checks.ill_conditioned(case(), expected, {OUT: np.array([1.0 + 1.2e-5, 1.0])}, "float32")
    assert checks.ill_conditioned(case(), expected, {OUT: np.array([1.0 + 8e-6, 1.0])}, "float32") is None


def test_precision_ratio_by_hand():
    # the emulation deviates by 1e-3 everywhere (rms 1e-3); Keras by 2e-3: ratio 2, inside [0.7, 3]
    n = 100
    exp = {OUT: np.zeros(n)}
    (check,) = checks.precision(case("float16"), {OUT: np.full(n, 2e-3)}, exp, {OUT: np.full(n, 1e-3)})
    assert check.passed and "2.00 times that of a float16 computation" in check.detail
    (louder,) = checks.precision(case("float16"), {OUT: np.full(n, 4e-3)}, exp, {OUT: np.full(n, 1e-3)})
    assert not louder.passed and "narrower dtype than float16" in louder.detail
    (quieter,) = checks.precision(case("float16"), {OUT: np.full(n, 5e-4)}, exp, {OUT: np.full(n, 1e-3)})
    assert not quieter.passed and "wider dtype than float16" in quieter.detail
    # fewer than 96 elements: no judgement at all
    few = {OUT: np.full(10, 4e-3)}, {OUT: np.zeros(10)}, {OUT: np.full(10, 1e-3)}
    assert checks.precision(case("float16"), *few) == []


def test_a_non_finite_reference_fails():
    (check,) = checks.non_finite_reference({OUT: np.array([1.0, np.inf]), OutputKey("h"): np.zeros(2)})
    assert not check.passed and "holds inf or NaN in output:" in check.detail
    assert checks.non_finite_reference({OUT: np.zeros(3)}) == []


def test_symbolic_shapes_must_be_the_eager_ones_batch_aside():
    outs = {OutputKey("output"): np.zeros((2, 4, 8)), OutputKey("h_fw"): np.zeros((2, 3)),
            OutputKey("h_bw"): np.zeros((2, 5))}
    [ok] = checks.symbolic(case(), outs, ((None, 4, 8), (None, 3), (None, 5)), "")
    assert ok.passed
    # Keras 3.15 Bidirectional.compute_output_shape with a wider backward layer (known.yaml)
    [bad] = checks.symbolic(case(), outs, ((None, 4, 6), (None, 3), (None, 3)), "")
    assert not bad.passed and bad.detail == ("the symbolic output shapes (batch unknown) are [(None, 4, 6), "
                                             "(None, 3), (None, 3)], the call returned [(2, 4, 8), (2, 3), "
                                             "(2, 5)]")
    [raised] = checks.symbolic(case(), outs, None, "ValueError: no batch")
    assert not raised.passed and raised.detail.endswith("raised ValueError: no batch")
    assert checks.symbolic(case(), outs, None, "") == []  # not computed (tf_keras time_major)


def test_a_documented_symbolic_mismatch_must_still_happen():
    outs = {OutputKey("output"): np.zeros((2, 8))}
    documented = dataclasses.replace(case(), expect=Expect(mismatch=MismatchSpec((checks.SYMBOLIC,), "known bug")))
    [seen] = checks.symbolic(documented, outs, ((None, 6),), "")
    assert seen.passed and seen.how == Pass.DOCUMENTED_MISMATCH
    [gone] = checks.symbolic(documented, outs, ((None, 8),), "")
    assert not gone.passed and "did not happen" in gone.detail


# ---------------------------------------------------------------- gradients

def grads(scale: float = 1.0, **weights):
    """Gradients of the shape both sides return: (inputs, initial_state, weights)."""
    return Gradients(np.ones((2, 3, 1)) * scale, None, weights or {"kernel": np.ones((1, 4)) * scale})


LSTM_CFG = {"class": "LSTM", "units": 1}


def test_every_gradient_is_its_own_check_by_weight_name():
    found = checks.gradients(case(), LSTM_CFG, grads(), grads())
    assert [c.name for c in found] == ["gradient input", "gradient kernel"] and all(c.passed for c in found)
    off = checks.gradients(case(), LSTM_CFG, grads(1.001), grads())
    assert [c.passed for c in off] == [False, False]
    assert off[0].comparison.tolerance.source == "gradient default float32"


def test_weight_gradients_under_other_names_fail_once():
    (check,) = checks.gradients(case(), LSTM_CFG, grads(bias=np.ones(4)), grads())
    assert check.detail == "Keras's weight gradients are ['bias'], the reference's ['kernel']"


def test_documented_gradient_mismatch_passes_only_while_a_gradient_differs():
    documented = dataclasses.replace(case(), expect=Expect(mismatch=MismatchSpec((checks.GRADIENTS,), "float32")))
    (seen,) = checks.gradients(documented, LSTM_CFG, grads(1.001), grads())
    assert seen.passed and seen.how == Pass.DOCUMENTED_MISMATCH
    (gone,) = checks.gradients(documented, LSTM_CFG, grads(), grads())
    assert not gone.passed and gone.detail.startswith("documented mismatch did not happen")
