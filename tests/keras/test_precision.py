"""Half precision: a layer that computed in another dtype than its policy's compute dtype fails.

Each planted bug is a real Keras run of the same case under another dtype policy, on the case's
own inputs and weights, with its outputs cast to the dtype the case expects, so only the
numbers inside tell the two apart.  The float64 comparison with the table tolerance passes
most of them (that is the blind spot; a wider dtype always passes it); the precision check must
fail every one.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from harness import data, keras_layer, layers, schema
from harness.result import Verdict
from harness.runner import RunOptions, run_case

pytest.importorskip("keras")
POLICIES = Path(__file__).resolve().parents[2] / "cases" / "dtypes" / "policies.yaml"


@pytest.fixture(scope="module")
def cases():
    return {c.id: c for c in schema.load_file(POLICIES)}


def planted(case, computed_as: str):
    """The case's Keras run, but computed under the ``computed_as`` policy and cast back."""
    real = run_case(case, RunOptions(keep=True))
    assert real.verdict == Verdict.PASS, real.message
    arrays = data.make_arrays(case)
    other = dataclasses.replace(case, dtype=computed_as, base_id=case.base_id + "-planted")
    run = keras_layer.run(other, arrays.inputs, arrays.mask, arrays.initial_state, real.keras_run.weights)
    claimed = layers.numpy_dtype(layers.DTYPES[case.dtype].compute)
    outputs = {k: np.asarray(v).astype(claimed) for k, v in run.outputs.items()}
    return dataclasses.replace(real.keras_run, outputs=outputs), real


@pytest.mark.parametrize("case_id, computed_as, says", [
    ("dtype-cells[class:LSTM+dtype:mixed_float16+cpu]", "mixed_bfloat16", "narrower dtype than float16"),
    ("dtype-cells[class:GRU+dtype:mixed_float16+cpu]", "float32", "wider dtype than float16"),
    ("dtype-cells[class:LSTM+dtype:mixed_bfloat16+cpu]", "mixed_float16", "wider dtype than bfloat16"),
    ("dtype-cells[class:SimpleRNN+dtype:mixed_bfloat16+cpu]", "float32", "wider dtype than bfloat16"),
])
def test_a_layer_computed_in_another_dtype_fails_only_the_precision_check(cases, case_id, computed_as, says):
    case = cases[case_id]
    fake, real = planted(case, computed_as)
    precision = [c for c in real.checks if c.name == "precision"]
    assert precision and precision[0].passed, real.checks  # the real run passes it
    result = run_case(case, keras_cache={case.id: fake})
    assert result.verdict == Verdict.FAIL
    precision = [c for c in result.failures if c.name == "precision"]
    assert precision, result.message
    assert says in precision[0].detail
