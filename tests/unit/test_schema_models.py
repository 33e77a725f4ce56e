"""Model cases (``model:``, a list of layers applied like keras.Sequential): schema errors with their
exact messages, and the Case a valid model case becomes.  No Keras needed.
"""
from __future__ import annotations


import pytest

from harness import schema
from harness.case import OutputKey
from schema_problems import problems

INPUT = "{batch: 2, timesteps: 6, features: 3}"


def model_case(*entries: str, input: str = INPUT, extra: str = "") -> str:
    """A one-case file: the case on line 2, model: on line 3, entries from line 4, then input."""
    body = "".join(f"      - {e}\n" for e in entries)
    return f"cases:\n  - id: c1\n    model:\n{body}    input: {input}\n" + extra




CLASSES = ("LSTM, GRU, SimpleRNN, Bidirectional, Dense, TimeDistributed, RepeatVector, Flatten, Reshape, "
           "Conv1D, MaxPooling1D, Masking, Embedding")
LSTM = "{class: LSTM, units: 4}"
MODEL_KEYS = "id, about, model, input, dtype, devices, seed, sweep, expect, tolerance, requires, limits"

BAD = {
    "unknown_class": (
        model_case("{class: Dence, units: 2}", LSTM),
        [f"c.yaml:4: case 'c1': model[0].class: unknown layer class; did you mean 'Dense'? "
         f"(expected one of {CLASSES}, got 'Dence')"]),
    "unknown_argument": (
        model_case("{class: Conv1D, filters: 2, kernel_size: 2, padd: same}", LSTM),
        ["c.yaml:4: case 'c1': model[0].padd: unknown key; did you mean 'padding'? "
         "(expected an argument of keras.layers.Conv1D, got 'padd')"]),
    "missing_required": (
        model_case(LSTM, "{class: Dense, activation: relu}"),
        ["c.yaml:5: case 'c1': model[1].units: is required (expected a positive integer, got nothing)"]),
    "bad_padding": (
        model_case("{class: MaxPooling1D, padding: causal}", LSTM),
        ["c.yaml:4: case 'c1': model[0].padding: unknown padding (expected one of valid, same, got 'causal')"]),
    "recurrent_argument_checked_by_schema": (
        model_case("{class: LSTM, units: 0}"),
        ["c.yaml:4: case 'c1': model[0].units: must be a positive integer, got 0"]),
    "entry_not_a_mapping": (
        model_case(LSTM, "Dense"),
        ["c.yaml:3: case 'c1': model[1]: must be a mapping "
         "(expected a layer such as {class: LSTM, units: 8}, got 'Dense')"]),
    "empty_model": (
        "cases:\n  - id: c1\n    model: []\n    input: {batch: 1, timesteps: 2, features: 1}\n",
        ["c.yaml:3: case 'c1': model: must be a non-empty list of layers "
         "(expected a list such as [{class: LSTM, units: 8}, {class: Dense, units: 1}], got [])"]),
    "no_recurrent_layer": (
        model_case("{class: Dense, units: 2}"),
        ["c.yaml:3: case 'c1': model: needs a recurrent layer "
         "(expected an LSTM, GRU, SimpleRNN or Bidirectional entry, got none)"]),
    "return_state": (
        model_case("{class: LSTM, units: 4, return_state: true}"),
        ["c.yaml:4: case 'c1': model[0].return_state: is not supported in a model "
         "(a Sequential passes one tensor on) (expected false, got true)"]),
    "merge_mode_none": (
        model_case("{class: Bidirectional, merge_mode: none, layer: {class: GRU, units: 2}}"),
        ["c.yaml:4: case 'c1': model[0].merge_mode: none returns two tensors; a Sequential passes one on "
         "(expected one of concat, sum, mul, ave, got none)"]),
    "layer_and_model": (
        model_case(LSTM, extra=f"    layer: {LSTM}\n"),
        ["c.yaml:6: case 'c1': layer: cannot be combined with model (a model case lists its layers under "
         "model:) (expected layer or model, got both)"]),
    "mask_in_a_model_case": (
        model_case(LSTM, extra="    mask: {kind: random, rate: 0.5}\n"),
        [f"c.yaml:6: case 'c1': mask: does not apply to a model case (expected one of {MODEL_KEYS}, got 'mask')"]),
    "shape_does_not_fit": (
        model_case(LSTM, "{class: Conv1D, filters: 2, kernel_size: 2}"),
        ["c.yaml:5: case 'c1': model[1]: Conv1D needs a (steps, channels) input per sample "
         "(expected 2 axes after the batch, got shape (4,))"]),
    "reshape_size": (
        model_case("{class: Reshape, target_shape: [4, 4]}", LSTM),
        ["c.yaml:4: case 'c1': model[0]: target_shape does not hold the input's elements "
         "(expected 18 elements (input shape (6, 3)), got target_shape [4, 4])"]),
    "kernel_longer_than_sequence": (
        model_case("{class: Conv1D, filters: 2, kernel_size: 7}", LSTM),
        ["c.yaml:4: case 'c1': model[0]: kernel_size 7 is longer than the sequence (padding valid) "
         "(expected kernel_size <= 6 or padding same, got kernel_size 7)"]),
    "time_distributed_inner": (
        model_case("{class: TimeDistributed, layer: {class: LSTM, units: 2}}", LSTM),
        ["c.yaml:4: case 'c1': model[0].layer.class: unknown layer class inside TimeDistributed "
         "(expected one of Dense, Conv1D, MaxPooling1D, Flatten, Reshape, RepeatVector, got 'LSTM')"]),
    "embedding_not_first": (
        model_case(LSTM, "{class: Embedding, input_dim: 5, output_dim: 2}"),
        ["c.yaml:5: case 'c1': model[1].class: Embedding must be the first layer (it reads the integer ids) "
         "(expected Embedding at model[0], got Embedding at model[1])"]),
    "embedding_with_one_hot": (
        model_case("{class: Embedding, input_dim: 5, output_dim: 2}", LSTM,
                   input="{batch: 2, timesteps: 3, data: one_hot}"),
        ["c.yaml:6: case 'c1': input.data: an Embedding model reads integer ids (expected ids or values, "
         "got 'one_hot')"]),
    "embedding_with_features": (
        model_case("{class: Embedding, input_dim: 5, output_dim: 2}", LSTM, input=INPUT),
        ["c.yaml:6: case 'c1': input.features: does not apply: an Embedding model reads (batch, timesteps) "
         "integer ids (expected no features, got features)"]),
    "id_out_of_range": (
        model_case("{class: Embedding, input_dim: 5, output_dim: 2}", LSTM, input="{values: [[1, 5]]}"),
        ["c.yaml:6: case 'c1': input.values: ids must be integers below the Embedding's input_dim "
         "(expected integers in [0, 5), got 5)"]),
    "ids_not_2d": (
        model_case("{class: Embedding, input_dim: 5, output_dim: 2}", LSTM, input="{values: [1, 2]}"),
        ["c.yaml:6: case 'c1': input.values: must be a (batch, timesteps) nested list of ids "
         "(expected a 2-level nested list of integers, got shape (2,))"]),
    "ids_without_embedding": (
        model_case(LSTM, input="{batch: 2, timesteps: 3, data: ids}"),
        ["c.yaml:5: case 'c1': input.data: ids need an Embedding first layer "
         "(expected one of normal, uniform, one_hot, arange, values, got 'ids')"]),
    "layer_params_length": (
        model_case(LSTM, "{class: Dense, units: 1}", extra="    expect: {layer_params: [112]}\n"),
        ["c.yaml:7: case 'c1': expect.layer_params: must give one count per model layer "
         "(expected 2 integers >= 0, got [112])"]),
    "bidirectional_without_its_layer": (
        model_case("{class: Bidirectional, layer: null}"),
        ["c.yaml:4: case 'c1': model[0].layer: is required "
         "(expected the wrapped LSTM, GRU or SimpleRNN, got nothing)"]),
    "unknown_output_name": (
        model_case(LSTM, "{class: Dense, units: 1}", extra="    tolerance: {'model[2]': {atol: 0.1}}\n"),
        ["c.yaml:7: case 'c1': tolerance.model[2]: unknown key; did you mean 'model[1]'? "
         "(expected one of output, model[0], model[1], got 'model[2]')"]),
    "model_dtype": (
        model_case(LSTM, extra="    dtype: float16\n"),
        ["c.yaml:6: case 'c1': dtype: unknown dtype for a model case; did you mean 'float64'? "
         "(expected one of float32, float64, "
         "got 'float16')"]),
}


@pytest.mark.parametrize("name", BAD)
def test_model_schema_error(name, tmp_path):
    assert problems(tmp_path, BAD[name][0]) == BAD[name][1]


def test_valid_model_case_builds_a_case(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(model_case("{class: Embedding, input_dim: 9, output_dim: 2, mask_zero: true}",
                               "{class: GRU, units: 3, return_sequences: true}", "{class: Dense, units: 1}",
                               input="{batch: 2, timesteps: 4}",
                               extra="    expect: {params: 18, layer_params: [18, 0, 0]}\n"), encoding="utf-8")
    (case,) = schema.load_file(path)
    assert case.id == "c1[cpu]" and [s["class"] for s in case.model] == ["Embedding", "GRU", "Dense"]
    assert case.layer == {"class": "GRU", "units": 3, "return_sequences": True}  # the first recurrent layer
    assert (case.input.batch, case.input.timesteps, case.input.data) == (2, 4, "ids")
    assert case.expect.layer_params == (18, 0, 0)


def test_model_case_sweeps_and_devices(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(model_case(LSTM, "{class: Dense, units: 1}", extra="    devices: [cpu, gpu]\n"
                               "    sweep: {input.timesteps: [3, 5]}\n"), encoding="utf-8")
    cases = schema.load_file(path)
    assert [c.id for c in cases] == ["c1[timesteps:3+cpu]", "c1[timesteps:3+gpu]",
                                     "c1[timesteps:5+cpu]", "c1[timesteps:5+gpu]"]
    assert {c.seed for c in cases if c.input.timesteps == 3} != {c.seed for c in cases if c.input.timesteps == 5}


def test_model_outputs_are_output_keys(tmp_path):
    """``output`` and each layer's ``model[i]``, as OutputKeys, each with its own shape."""
    path = tmp_path / "m.yaml"
    path.write_text(model_case(LSTM, "{class: Dense, units: 1}", input="{batch: 1, timesteps: 2, features: 1}",
                               extra="    expect: {values: {'model[0]': [[0, 0, 0, 0]], output: [[0.5]]}}\n"
                                     "    tolerance: {'model[1]': {atol: 0.1}}\n"), encoding="utf-8")
    (case,) = schema.load_file(path)
    assert case.expect.values == {OutputKey("model[0]"): [[0, 0, 0, 0]], OutputKey("output"): [[0.5]]}
    assert case.tolerance == {OutputKey("model[1]"): {"atol": 0.1}}
    assert (case.mask, case.initial_state, case.weights, case.training, case.calls) == (None, None, "keras", False,
                                                                                       None)
