"""Model cases (harness/models.py): the non-recurrent references against numbers computed by hand,
shapes and counts against the seed notebook's printed summary, model-schema errors with their exact
messages, and (with Keras) planted bugs in those references that bundled model cases must catch.

Every expected number comes from the arithmetic in the comment beside it or from the seed notebook
named there, never from running the reference or Keras.
"""
from __future__ import annotations

import dataclasses
import inspect
import math
from pathlib import Path

import numpy as np
import pytest

from harness import models, schema
from harness.case import Expect
from harness.errors import CaseSchemaError

CASES = Path(__file__).resolve().parent.parent / "cases" / "models"
LN2, LN3 = math.log(2.0), math.log(3.0)


def arr(*rows) -> np.ndarray:
    return np.array(rows, dtype=np.float64)


# ---------------------------------------------------------------- Dense

def test_dense_on_the_last_axis():
    # x @ kernel = [1*1 + 2*2, 1*0 + 2*1, 1*-1 + 2*0] = [5, 2, -1]; + bias [0.5, -0.5, 0] = [5.5, 1.5, -1]
    kernel = arr([1, 0, -1], [2, 1, 0])
    got = models.dense(arr([1, 2]), kernel, np.array([0.5, -0.5, 0.0]))
    np.testing.assert_allclose(got, [[5.5, 1.5, -1.0]], rtol=0, atol=1e-15)
    # relu clips the -1; no bias leaves [5, 2, -1] -> [5, 2, 0]
    np.testing.assert_allclose(models.dense(arr([1, 2]), kernel, None, "relu"), [[5, 2, 0]], atol=0)
    # 3-D input: the same kernel on every step, (1, 2, 2) -> (1, 2, 3); step 2 = [3, 4] -> [3+8, 4, -3]
    got = models.dense(np.array([[[1.0, 2.0], [3.0, 4.0]]]), kernel)
    np.testing.assert_allclose(got, [[[5, 2, -1], [11, 4, -3]]], atol=0)


def test_dense_softmax():
    # logits [0, ln 2, ln 3] -> exp [1, 2, 3] / 6
    got = models.dense(arr([1.0]), arr([0.0, LN2, LN3]), None, "softmax")
    np.testing.assert_allclose(got, [[1 / 6, 1 / 3, 1 / 2]], rtol=1e-14)


# ---------------------------------------------------------------- Conv1D

X4 = np.array([[[1.0], [2.0], [3.0], [4.0]]])  # (1, 4, 1): steps 1, 2, 3, 4


def kernel(*taps) -> np.ndarray:
    """(kernel_size, 1, 1) with one tap per position."""
    return np.array(taps, dtype=np.float64).reshape(len(taps), 1, 1)


def test_conv1d_is_cross_correlation_valid():
    # y_t = x_t*1 + x_{t+1}*10 + 0.5 (not flipped: a true convolution would give x_t*10 + x_{t+1})
    got = models.conv1d(X4, kernel(1, 10), np.array([0.5]))
    np.testing.assert_allclose(got[0, :, 0], [21.5, 32.5, 43.5], atol=0)


def test_conv1d_strides():
    # windows start at 0 and 2: [1, 2] -> 21, [3, 4] -> 43 (the last window [4] is dropped by valid)
    np.testing.assert_allclose(models.conv1d(X4, kernel(1, 10), strides=2)[0, :, 0], [21, 43], atol=0)
    # same, stride 2: ceil(4/2) = 2 outputs, pad total (2-1)*2 + 2 - 4 = 0 -> the same two windows
    np.testing.assert_allclose(models.conv1d(X4, kernel(1, 10), strides=2, padding="same")[0, :, 0], [21, 43])


def test_conv1d_same_pads_the_smaller_half_in_front():
    # k=2: pad total 1 -> 0 in front, 1 behind: [1,2,3,4,0] -> 21, 32, 43, 4
    np.testing.assert_allclose(models.conv1d(X4, kernel(1, 10), padding="same")[0, :, 0], [21, 32, 43, 4])
    # k=3: pad 1 and 1: [0,1,2,3,4,0], taps 1, 10, 100 -> 0+10+200, 1+20+300, 2+30+400, 3+40+0
    np.testing.assert_allclose(models.conv1d(X4, kernel(1, 10, 100), padding="same")[0, :, 0],
                               [210, 321, 432, 43])
    # k=4: pad total 3 -> 1 in front, 2 behind: [0,1,2,3,4,0,0], taps 1, 10, 100, 1000
    # -> 0+10+200+3000, 1+20+300+4000, 2+30+400+0, 3+40+0+0 (2 in front would give 2100 first)
    np.testing.assert_allclose(models.conv1d(X4, kernel(1, 10, 100, 1000), padding="same")[0, :, 0],
                               [3210, 4321, 432, 43])


def test_conv1d_kernel_layout_is_size_in_filters():
    # kernel (1, 2, 2) = [[[1, 2], [3, 4]]]: filter f = sum_c x_c * K[0, c, f]
    # step [1, 2] -> [1*1 + 2*3, 1*2 + 2*4] = [7, 10]; step [3, 4] -> [3 + 12, 6 + 16] = [15, 22]
    # ((k, filters, in) would give [1*1 + 2*2, 1*3 + 2*4] = [5, 11])
    x = np.array([[[1.0, 2.0], [3.0, 4.0]]])
    got = models.conv1d(x, np.array([[[1.0, 2.0], [3.0, 4.0]]]), activation="relu")
    np.testing.assert_allclose(got, [[[7, 10], [15, 22]]], atol=0)


# ---------------------------------------------------------------- MaxPooling1D

X5 = np.array([[[1.0], [3.0], [2.0], [5.0], [4.0]]])  # steps 1, 3, 2, 5, 4


def test_max_pooling1d_valid_and_strides():
    # pool 2 (strides default to 2): [1,3] -> 3, [2,5] -> 5; the lone 4 is dropped
    np.testing.assert_allclose(models.max_pooling1d(X5)[0, :, 0], [3, 5], atol=0)
    # pool 2, stride 1: [1,3], [3,2], [2,5], [5,4] -> 3, 3, 5, 5
    np.testing.assert_allclose(models.max_pooling1d(X5, 2, 1)[0, :, 0], [3, 3, 5, 5], atol=0)


def test_max_pooling1d_same_pads_with_minus_infinity():
    # same, pool 2: ceil(5/2) = 3 windows, pad 0 in front and 1 behind: [1,3], [2,5], [4, pad] -> 3, 5, 4
    np.testing.assert_allclose(models.max_pooling1d(X5, padding="same")[0, :, 0], [3, 5, 4], atol=0)
    # negated: the padded window keeps -4 (a zero pad would give 0): [-1,-3] -> -1, [-2,-5] -> -2, [-4] -> -4
    np.testing.assert_allclose(models.max_pooling1d(-X5, padding="same")[0, :, 0], [-1, -2, -4], atol=0)
    # pool 3, stride 1: pad 1 and 1: [p,1,3], [1,3,2], [3,2,5], [2,5,4], [5,4,p] -> 3, 3, 5, 5, 5
    np.testing.assert_allclose(models.max_pooling1d(X5, 3, 1, "same")[0, :, 0], [3, 3, 5, 5, 5], atol=0)


# ---------------------------------------------------------------- shape layers, Masking, Embedding

def test_repeat_vector_flatten_reshape():
    np.testing.assert_array_equal(models.repeat_vector(arr([1, 2]), 3), [[[1, 2], [1, 2], [1, 2]]])
    x = np.arange(6.0).reshape(1, 2, 3)  # [[0, 1, 2], [3, 4, 5]]
    np.testing.assert_array_equal(models.flatten(x), [[0, 1, 2, 3, 4, 5]])  # row-major
    np.testing.assert_array_equal(models.reshape(x, (3, 2)), [[[0, 1], [2, 3], [4, 5]]])
    np.testing.assert_array_equal(models.reshape(x, (-1,)), [[0, 1, 2, 3, 4, 5]])


def test_masking_drops_steps_whose_features_all_equal_mask_value():
    x = np.array([[[0.0, 0.0], [0.0, 1.0], [2.0, 0.0]]])
    out, keep = models.masking(x)
    np.testing.assert_array_equal(keep, [[False, True, True]])  # one zero feature is not enough
    np.testing.assert_array_equal(out, x)
    x = np.array([[[1.0, 1.0], [1.0, 2.0], [3.0, 1.0]]])
    out, keep = models.masking(x, 1.0)
    np.testing.assert_array_equal(keep, [[False, True, True]])
    np.testing.assert_array_equal(out, [[[0, 0], [1, 2], [3, 1]]])  # the masked step comes out as zeros


def test_embedding_rows_and_mask_zero():
    table = arr([0, 0], [1, 10], [2, 20])
    out, mask = models.embedding(np.array([[2, 0, 1]]), table, mask_zero=True)
    np.testing.assert_array_equal(out, [[[2, 20], [0, 0], [1, 10]]])
    np.testing.assert_array_equal(mask, [[True, False, True]])
    assert models.embedding(np.array([[2, 0, 1]]), table)[1] is None


def test_time_distributed_and_mask_passing():
    # TimeDistributed(Dense(1)), kernel [[3]], bias 1: steps 1, 2 -> 4, 7; the mask passes through
    td = {"class": "TimeDistributed", "layer": {"class": "Dense", "units": 1}}
    mask = np.array([[True, False]])
    out, passed = models.apply(td, np.array([[[1.0], [2.0]]]), {"kernel": arr([3.0]), "bias": np.array([1.0])}, mask)
    np.testing.assert_allclose(out, [[[4], [7]]], atol=0)
    assert passed is mask
    # layers without supports_masking drop it
    flat, dropped = models.apply({"class": "Flatten"}, np.ones((1, 2, 1)), {}, mask)
    assert dropped is None and flat.shape == (1, 2)
    # a recurrent layer passes it on only with return_sequences
    w = {"kernel": np.zeros((1, 4)), "recurrent_kernel": np.zeros((1, 4)), "bias": np.zeros(4)}
    for seq, want in ((True, mask), (False, None)):
        _, got = models.apply({"class": "LSTM", "units": 1, "return_sequences": seq}, np.ones((1, 2, 1)), w, mask)
        assert got is want


# ---------------------------------------------------------------- shapes and counts

TD_CNN = [{"class": "Reshape", "target_shape": [3, 3, 3]},
          {"class": "TimeDistributed", "layer": {"class": "Conv1D", "filters": 2, "kernel_size": 2, "padding": "same"}},
          {"class": "TimeDistributed", "layer": {"class": "MaxPooling1D", "padding": "same"}},
          {"class": "TimeDistributed", "layer": {"class": "Flatten"}},
          {"class": "LSTM", "units": 5}]


def test_shapes_and_counts_match_the_seed_summary():
    # Seed 003 (input_output_lstm), TimeDistributed CNN -> LSTM on Input((9, 3)), printed summary:
    # (None,3,3,3) 0, (None,3,3,2) 14, (None,3,2,2) 0, (None,3,4) 0, (None,5) 200
    shape, shapes, counts = (9, 3), [], []
    for spec in TD_CNN:
        counts.append(models.param_formula(spec, shape)[0])
        shape = models.output_shape(spec, shape)
        shapes.append(shape)
    assert shapes == [(3, 3, 3), (3, 3, 2), (3, 2, 2), (3, 4), (5,)]
    assert counts == [0, 14, 0, 0, 200]
    # Seed 003, LSTM -> 1D CNN: (None,9,5) -> (None,8,64) -> (None,4,64) -> (None,256)
    shape = (9, 3)
    for spec, want in (({"class": "LSTM", "units": 5, "return_sequences": True}, (9, 5)),
                       ({"class": "Conv1D", "filters": 64, "kernel_size": 2}, (8, 64)),
                       ({"class": "MaxPooling1D", "pool_size": 2}, (4, 64)),
                       ({"class": "Flatten"}, (256,))):
        shape = models.output_shape(spec, shape)
        assert shape == want
    # Seed 001 (rnn_basic): Dense(20) on the (500, 10) sequence -> (500, 20), 10*20 + 20 = 220 printed
    assert models.output_shape({"class": "Dense", "units": 20}, (500, 10)) == (500, 20)
    assert models.param_formula({"class": "Dense", "units": 20}, (500, 10))[0] == 220
    # Embedding 10x4 = 40; Conv1D without bias 2*4*3 = 24
    assert models.param_formula({"class": "Embedding", "input_dim": 10, "output_dim": 4}, (6,))[0] == 40
    assert models.param_formula({"class": "Conv1D", "filters": 3, "kernel_size": 2, "use_bias": False}, (5, 4))[0] == 24


def test_layer_table_matches_the_keras_signatures():
    keras = pytest.importorskip("keras")
    for cls, table in models.MODEL_LAYERS.items():
        params = inspect.signature(getattr(keras.layers, cls)).parameters
        for arg, (default, _) in table.items():
            assert arg in params, f"{cls}.{arg}"
            if arg not in models.REQUIRED.get(cls, ()):
                assert params[arg].default == default, f"{cls}.{arg}: Keras {params[arg].default!r}, table {default!r}"


# ---------------------------------------------------------------- model schema errors

INPUT = "{batch: 2, timesteps: 6, features: 3}"


def model_case(*entries: str, input: str = INPUT, extra: str = "") -> str:
    """A one-case file: the case on line 2, model: on line 3, entries from line 4, then input."""
    body = "".join(f"      - {e}\n" for e in entries)
    return f"cases:\n  - id: c1\n    model:\n{body}    input: {input}\n" + extra


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CaseSchemaError) as info:
        schema.load_file(path, display="c.yaml")
    return str(info.value).splitlines()


CLASSES = ("LSTM, GRU, SimpleRNN, Bidirectional, Dense, TimeDistributed, RepeatVector, Flatten, Reshape, "
           "Conv1D, MaxPooling1D, Masking, Embedding")
LSTM = "{class: LSTM, units: 4}"
MODEL_KEYS = "id, about, model, input, dtype, devices, seed, sweep, expect, tolerance, requires"

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
        ["c.yaml:4: case 'c1': model[0].units: must be a positive integer (expected a positive integer, got 0)"]),
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
    assert case.id == "c1@cpu" and [s["class"] for s in case.model] == ["Embedding", "GRU", "Dense"]
    assert case.layer == {"class": "GRU", "units": 3, "return_sequences": True}  # the first recurrent layer
    assert (case.input.batch, case.input.timesteps, case.input.data) == (2, 4, "ids")
    assert case.expect.layer_params == (18, 0, 0)


def test_model_case_sweeps_and_devices(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(model_case(LSTM, "{class: Dense, units: 1}", extra="    devices: [cpu, gpu]\n"
                               "    sweep: {input.timesteps: [3, 5]}\n"), encoding="utf-8")
    cases = schema.load_file(path)
    assert [c.id for c in cases] == ["c1[timesteps=3]@cpu", "c1[timesteps=3]@gpu",
                                     "c1[timesteps=5]@cpu", "c1[timesteps=5]@gpu"]
    assert {c.seed for c in cases if c.input.timesteps == 3} != {c.seed for c in cases if c.input.timesteps == 5}


# ---------------------------------------------------------------- with Keras: the checks can fail

@pytest.fixture(scope="module")
def bundled():
    pytest.importorskip("keras")
    cases = {c.base_id: c for c in schema.load_files(schema.find_case_files([CASES]))}
    return cases, {}  # cases by id, and one Keras run per case for every test here


def run(bundled, case_id: str, **replace):
    from harness.runner import run_case

    cases, cache = bundled
    case = dataclasses.replace(cases[case_id], **replace) if replace else cases[case_id]
    return run_case(case, keras_cache=cache)


def _flipped_conv(x, kernel, *args, **kwargs):
    return REAL["conv1d"](x, np.asarray(kernel)[::-1], *args, **kwargs)


def _front_heavy_conv(x, kernel, bias=None, strides=1, padding="valid", activation=None):
    if padding != "same":
        return REAL["conv1d"](x, kernel, bias, strides, padding, activation)
    k = np.asarray(kernel).shape[0]
    steps = -(-x.shape[1] // strides)
    total = max((steps - 1) * strides + k - x.shape[1], 0)
    x = np.pad(x, ((0, 0), (total - total // 2, total // 2), (0, 0)))
    return REAL["conv1d"](x, kernel, bias, strides, "valid", activation)[:, :steps]


def _zero_pad_pool(x, pool_size=2, strides=None, padding="valid"):
    strides = strides or pool_size
    if padding == "same":
        steps = -(-x.shape[1] // strides)
        total = max((steps - 1) * strides + pool_size - x.shape[1], 0)
        x = np.pad(x, ((0, 0), (total // 2, total - total // 2), (0, 0)))
    return REAL["max_pooling1d"](x, pool_size, strides, "valid")


REAL = {name: getattr(models, name) for name in ("conv1d", "max_pooling1d", "masking", "embedding", "reshape",
                                                 "flatten", "repeat_vector", "dense")}
# planted bug -> (what it replaces in harness.models, the bundled case that must catch it)
PLANTED = {
    "conv-flipped-kernel": ({"conv1d": _flipped_conv}, "model-io-lstm-cnn-lstm"),
    "conv-same-pad-front-heavy": ({"conv1d": _front_heavy_conv}, "model-io-lstm-cnn-lstm"),
    "pool-same-pads-zeros": ({"max_pooling1d": _zero_pad_pool}, "model-io-lstm-cnn-lstm"),
    "masking-makes-no-mask": ({"masking": lambda x, v=0.0: (REAL["masking"](x, v)[0], None)}, "model-masking-lstm"),
    "masking-keeps-values": ({"masking": lambda x, v=0.0: (np.asarray(x, float), REAL["masking"](x, v)[1])},
                             "model-masking-value"),
    "time-distributed-drops-mask": ({"PASS_MASK": ("Dense",)}, "model-masking-through-timedistributed"),
    "embedding-ignores-mask-zero": ({"embedding": lambda ids, e, m=False: (REAL["embedding"](ids, e)[0], None)},
                                    "model-embedding-mask-zero"),
    "reshape-column-major": ({"reshape": lambda x, t: np.asarray(x).reshape((x.shape[0],) + tuple(t), order="F")},
                             "model-io-lstm-td-cnn-lstm"),
    "flatten-column-major": ({"flatten": lambda x: np.asarray(x).reshape(x.shape[0], -1, order="F")},
                             "model-io-lstm-lstm-cnn"),
    "repeat-vector-interleaved": ({"repeat_vector": lambda x, n: np.repeat(x, n, axis=1).reshape(x.shape[0], n, -1)},
                                  "model-lstm-explained-seq2seq"),
    "dense-drops-bias": ({"dense": lambda x, k, b=None, a=None: REAL["dense"](x, k, None, a)},
                         "model-rnn-basic-many-to-one"),
}


@pytest.mark.parametrize("name", PLANTED)
def test_planted_reference_bug_fails_a_bundled_model_case(name, bundled, monkeypatch):
    patches, case_id = PLANTED[name]
    control = run(bundled, case_id)
    assert control.verdict == "pass", control.message
    for attr, value in patches.items():
        monkeypatch.setattr(models, attr, value)
    result = run(bundled, case_id)
    assert result.verdict == "fail", f"{name} survived {case_id}"
    assert any(c.comparison is not None for c in result.failures)  # an output, not a count, caught it


def test_wrong_counts_and_shapes_fail(bundled):
    # one count off per kind of expectation; the counts themselves are the seed's printed ones
    wrong = {"params": Expect(params=185), "layer_params": Expect(layer_params=(144, 41)),
             "output_shape": Expect(output_shape=(1, 11))}
    for name, expect in wrong.items():
        result = run(bundled, "model-rnn-basic-many-to-one", expect=expect)
        assert result.verdict == "fail", name
        assert [c.name for c in result.failures] == [f"expect.{name}"]
