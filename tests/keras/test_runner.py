"""run_case's trust boundary: only what a Keras call raised can satisfy expect.error; an exception
of the same type from the harness itself is an error verdict that says "harness bug"."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from harness import benchmark, data, keras_layer, schema, session
from harness.result import Pass, Verdict
from harness.runner import run_case

pytest.importorskip("keras")
ROOT = Path(__file__).resolve().parents[2]

CASE = """
cases:
  - id: any-value-error
    about: a stateful layer whose second call changes the batch size raises ValueError
    layer: {class: LSTM, units: 2, stateful: true}
    input: {batch: 2, timesteps: 3, features: 2}
    weights: random
    calls: {count: 2, batches: [2, 3]}
    expect:
      error: {type: ValueError}
"""


@pytest.fixture
def case(tmp_path):
    (tmp_path / "c.yaml").write_text(CASE)
    return schema.load_file(tmp_path / "c.yaml")[0]


def test_the_keras_value_error_passes(case):
    result = run_case(case)
    assert result.verdict == Verdict.PASS, result.message
    assert result.checks[0].detail.startswith("Keras raised as expected: ValueError")


def test_a_harness_value_error_is_a_harness_bug_not_the_expected_error(case):
    arrays = data.make_arrays(case)
    # A weight the harness cannot convert: np.asarray("not a number", float32) raises ValueError
    # in keras_layer.set_weights, before any Keras call sees it.
    planted = dataclasses.replace(arrays, weights={**arrays.weights, "kernel": "not a number"})
    result = run_case(case, arrays=planted)
    assert result.verdict == Verdict.ERROR
    assert result.message.startswith("harness bug: ValueError: could not convert string to float")
    assert "Traceback" in result.message and "set_weights" in result.message


def test_a_case_for_other_keras_releases_is_skipped_with_the_reason(tmp_path):
    (tmp_path / "c.yaml").write_text(
        "cases:\n  - id: future\n    layer: {class: SimpleRNN, units: 2}\n"
        "    input: {batch: 1, timesteps: 2, features: 1}\n    requires: {keras: '>=99'}\n"
        "  - id: present\n    layer: {class: SimpleRNN, units: 2}\n"
        "    input: {batch: 1, timesteps: 2, features: 1}\n    requires: {keras: '>=3.0'}\n")
    future, present = schema.load_file(tmp_path / "c.yaml")
    result = run_case(future)
    assert result.verdict == Verdict.SKIP
    assert result.message.startswith("requires Keras >=99, this is Keras ")
    assert run_case(present).verdict == Verdict.PASS


def test_an_expected_unrecognized_argument_error_is_that_cases_pass_not_a_skip():
    """Keras 3 refuses time_major: the case expecting that ValueError passes on it (where a
    missing argument otherwise skips a case, harness/keras_layer.py MISSING_FEATURE)."""
    [case] = [c for c in schema.load_file(ROOT / "cases" / "seeds" / "input_output_lstm.yaml")
              if c.base_id == "seed-input-output-lstm-time-major-keras3"]
    result = run_case(case)
    assert result.verdict == Verdict.PASS and result.checks[0].how == Pass.EXPECTED_ERROR, result.message


def test_the_benchmark_split_sees_keras_the_reference_and_the_forward_call():
    """benchmark.split wraps what it times and puts it all back: a clock that observed nothing (a
    wrapper on the wrong object) would make the harness's share look like the whole case."""
    keras = session.keras()
    call = keras.layers.Layer.__call__
    cases = [c for c in schema.load_files(schema.find_case_files([ROOT / "cases" / "seeds"]))
             if c.device == "cpu" and not c.expect.error][:3]
    got = benchmark.split(cases)
    assert 0 < got.forward < got.keras < got.total and 0 < got.reference < got.total
    assert got.harness < got.keras
    assert keras.layers.Layer.__call__ is call and keras_layer.keras_call.__module__ == "harness.keras_layer"
