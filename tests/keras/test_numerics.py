"""Ill-conditioned computations are refused with the reason, and well-conditioned ones do not
flip between pass and fail with the summation order.

The other summation order is a float32 computation of the same layer (the reference run in
float32, each op rounded) on inputs whose features, and the kernel rows, are permuted: the same
numbers summed in another order, presented as Keras's run.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from harness import schema
from harness.case import OutputKey
from harness.keras_api import with_defaults
from harness.reference import recurrent
from harness.result import Verdict
from harness.runner import RunOptions, run_case

pytest.importorskip("keras")
HEALTH = Path(__file__).resolve().parents[2] / "cases" / "numerics" / "health.yaml"

REFUSED = """
cases:
  - id: blow-up
    about: exponential SimpleRNN whose exact outputs overflow float64
    layer: {class: SimpleRNN, units: 4, activation: exponential, return_sequences: true}
    input: {batch: 4, timesteps: 30, features: 3}
    weights: random
  - id: health-saturating-gates
    about: >-
      an LSTM at input scale 1e4 with unit-variance kernels (the sweep point, and so the seed, that
      cases/numerics/health.yaml leaves out)
    layer: {class: LSTM, units: 4, return_sequences: true, return_state: true,
            kernel_initializer: {class: RandomNormal, stddev: 1.0}}
    input: {batch: 4, timesteps: 20, features: 3}
    sweep:
      layer.class: [LSTM]
      input.scale: [10000.0]
  - id: chaos
    about: a tanh SimpleRNN with large recurrent weights is chaotic over 120 steps
    layer: {class: SimpleRNN, units: 8, return_sequences: true,
            recurrent_initializer: {class: RandomNormal, stddev: 1.5}}
    input: {batch: 2, timesteps: 120, features: 2}
"""


def test_ill_conditioned_cases_are_refused_with_the_reason(tmp_path):
    (tmp_path / "c.yaml").write_text(REFUSED)
    results = {c.base_id: run_case(c) for c in schema.load_file(tmp_path / "c.yaml")}
    # A non-finite reference proves nothing: a failure, whatever Keras returned there.
    blow_up = results.pop("blow-up")
    assert blow_up.verdict == Verdict.FAIL
    assert blow_up.message == ("the float64 reference holds inf or NaN in output: matching "
                               "non-finite values proves nothing (inputs or weights too large?)")
    assert {k: r.verdict for k, r in results.items()} == dict.fromkeys(results, Verdict.SKIP)
    for key in ("health-saturating-gates", "chaos"):
        assert results[key].message.startswith("ill-conditioned: rounding to float32 alone moves the reference's")
        assert "a correct Keras could pass or fail by its summation order" in results[key].message


def _other_order(case, result):
    """The layer computed in float32 with its input features (and kernel rows) permuted."""
    cfg = with_defaults(case.layer)
    x = result.arrays.inputs[0]
    perm = np.arange(x.shape[-1])[::-1]
    weights = dict(result.keras_run.weights)
    weights["kernel"] = np.asarray(weights["kernel"])[perm]
    init = result.arrays.initial_state
    out, _ = recurrent.forward(cfg, x[..., perm], weights, result.arrays.mask, init, dtype="float32")
    return dataclasses.replace(result.keras_run, outputs={OutputKey(k): v for k, v in out.items()})


@pytest.mark.parametrize("case", schema.load_file(HEALTH), ids=lambda c: c.id)
def test_health_cases_pass_in_another_summation_order(case):
    result = run_case(case, RunOptions(keep=True))
    assert result.verdict == Verdict.PASS, result.message
    again = run_case(case, keras_cache={case.id: _other_order(case, result)})
    assert again.verdict == Verdict.PASS, again.message
