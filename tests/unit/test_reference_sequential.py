"""The references of a model case's other layers (harness/reference/sequential.py) against numbers
computed by hand, and their shapes and counts (harness/model_layers.py) against the seed notebooks'
printed summaries.  Every expected number comes from the arithmetic in the comment beside it or
from the seed notebook named there, never from running the reference or Keras.
"""
from __future__ import annotations

import math

import numpy as np

from harness import model_layers
from harness.reference import sequential

LN2, LN3 = math.log(2.0), math.log(3.0)
TF = "tensorflow"  # the flavour the recurrent layers of a chain are read under


def arr(*rows) -> np.ndarray:
    return np.array(rows, dtype=np.float64)


# ---------------------------------------------------------------- Dense

def test_dense_on_the_last_axis():
    # x @ kernel = [1*1 + 2*2, 1*0 + 2*1, 1*-1 + 2*0] = [5, 2, -1]; + bias [0.5, -0.5, 0] = [5.5, 1.5, -1]
    kernel = arr([1, 0, -1], [2, 1, 0])
    got = sequential.dense(arr([1, 2]), kernel, np.array([0.5, -0.5, 0.0]))
    np.testing.assert_allclose(got, [[5.5, 1.5, -1.0]], rtol=0, atol=1e-15)
    # relu clips the -1; no bias leaves [5, 2, -1] -> [5, 2, 0]
    np.testing.assert_allclose(sequential.dense(arr([1, 2]), kernel, None, "relu"), [[5, 2, 0]], atol=0)
    # 3-D input: the same kernel on every step, (1, 2, 2) -> (1, 2, 3); step 2 = [3, 4] -> [3+8, 4, -3]
    got = sequential.dense(np.array([[[1.0, 2.0], [3.0, 4.0]]]), kernel)
    np.testing.assert_allclose(got, [[[5, 2, -1], [11, 4, -3]]], atol=0)


def test_dense_softmax():
    # logits [0, ln 2, ln 3] -> exp [1, 2, 3] / 6
    got = sequential.dense(arr([1.0]), arr([0.0, LN2, LN3]), None, "softmax")
    np.testing.assert_allclose(got, [[1 / 6, 1 / 3, 1 / 2]], rtol=1e-14)


# ---------------------------------------------------------------- Conv1D

X4 = np.array([[[1.0], [2.0], [3.0], [4.0]]])  # (1, 4, 1): steps 1, 2, 3, 4


def kernel(*taps) -> np.ndarray:
    """(kernel_size, 1, 1) with one tap per position."""
    return np.array(taps, dtype=np.float64).reshape(len(taps), 1, 1)


def test_conv1d_is_cross_correlation_valid():
    # y_t = x_t*1 + x_{t+1}*10 + 0.5 (not flipped: a true convolution would give x_t*10 + x_{t+1})
    got = sequential.conv1d(X4, kernel(1, 10), np.array([0.5]))
    np.testing.assert_allclose(got[0, :, 0], [21.5, 32.5, 43.5], atol=0)


def test_conv1d_strides():
    # windows start at 0 and 2: [1, 2] -> 21, [3, 4] -> 43 (the last window [4] is dropped by valid)
    np.testing.assert_allclose(sequential.conv1d(X4, kernel(1, 10), strides=2)[0, :, 0], [21, 43], atol=0)
    # same, stride 2: ceil(4/2) = 2 outputs, pad total (2-1)*2 + 2 - 4 = 0 -> the same two windows
    np.testing.assert_allclose(sequential.conv1d(X4, kernel(1, 10), strides=2, padding="same")[0, :, 0], [21, 43])


def test_conv1d_same_pads_the_smaller_half_in_front():
    # k=2: pad total 1 -> 0 in front, 1 behind: [1,2,3,4,0] -> 21, 32, 43, 4
    np.testing.assert_allclose(sequential.conv1d(X4, kernel(1, 10), padding="same")[0, :, 0], [21, 32, 43, 4])
    # k=3: pad 1 and 1: [0,1,2,3,4,0], taps 1, 10, 100 -> 0+10+200, 1+20+300, 2+30+400, 3+40+0
    np.testing.assert_allclose(sequential.conv1d(X4, kernel(1, 10, 100), padding="same")[0, :, 0],
                               [210, 321, 432, 43])
    # k=4: pad total 3 -> 1 in front, 2 behind: [0,1,2,3,4,0,0], taps 1, 10, 100, 1000
    # -> 0+10+200+3000, 1+20+300+4000, 2+30+400+0, 3+40+0+0 (2 in front would give 2100 first)
    np.testing.assert_allclose(sequential.conv1d(X4, kernel(1, 10, 100, 1000), padding="same")[0, :, 0],
                               [3210, 4321, 432, 43])


def test_conv1d_kernel_layout_is_size_in_filters():
    # kernel (1, 2, 2) = [[[1, 2], [3, 4]]]: filter f = sum_c x_c * K[0, c, f]
    # step [1, 2] -> [1*1 + 2*3, 1*2 + 2*4] = [7, 10]; step [3, 4] -> [3 + 12, 6 + 16] = [15, 22]
    # ((k, filters, in) would give [1*1 + 2*2, 1*3 + 2*4] = [5, 11])
    x = np.array([[[1.0, 2.0], [3.0, 4.0]]])
    got = sequential.conv1d(x, np.array([[[1.0, 2.0], [3.0, 4.0]]]), activation="relu")
    np.testing.assert_allclose(got, [[[7, 10], [15, 22]]], atol=0)


# ---------------------------------------------------------------- MaxPooling1D

X5 = np.array([[[1.0], [3.0], [2.0], [5.0], [4.0]]])  # steps 1, 3, 2, 5, 4


def test_max_pooling1d_valid_and_strides():
    # pool 2 (strides default to 2): [1,3] -> 3, [2,5] -> 5; the lone 4 is dropped
    np.testing.assert_allclose(sequential.max_pooling1d(X5)[0, :, 0], [3, 5], atol=0)
    # pool 2, stride 1: [1,3], [3,2], [2,5], [5,4] -> 3, 3, 5, 5
    np.testing.assert_allclose(sequential.max_pooling1d(X5, 2, 1)[0, :, 0], [3, 3, 5, 5], atol=0)


def test_max_pooling1d_same_pads_with_minus_infinity():
    # same, pool 2: ceil(5/2) = 3 windows, pad 0 in front and 1 behind: [1,3], [2,5], [4, pad] -> 3, 5, 4
    np.testing.assert_allclose(sequential.max_pooling1d(X5, padding="same")[0, :, 0], [3, 5, 4], atol=0)
    # negated: the padded window keeps -4 (a zero pad would give 0): [-1,-3] -> -1, [-2,-5] -> -2, [-4] -> -4
    np.testing.assert_allclose(sequential.max_pooling1d(-X5, padding="same")[0, :, 0], [-1, -2, -4], atol=0)
    # pool 3, stride 1: pad 1 and 1: [p,1,3], [1,3,2], [3,2,5], [2,5,4], [5,4,p] -> 3, 3, 5, 5, 5
    np.testing.assert_allclose(sequential.max_pooling1d(X5, 3, 1, "same")[0, :, 0], [3, 3, 5, 5, 5], atol=0)


# ---------------------------------------------------------------- shape layers, Masking, Embedding

def test_repeat_vector_flatten_reshape():
    np.testing.assert_array_equal(sequential.repeat_vector(arr([1, 2]), 3), [[[1, 2], [1, 2], [1, 2]]])
    x = np.arange(6.0).reshape(1, 2, 3)  # [[0, 1, 2], [3, 4, 5]]
    np.testing.assert_array_equal(sequential.flatten(x), [[0, 1, 2, 3, 4, 5]])  # row-major
    np.testing.assert_array_equal(sequential.reshape(x, (3, 2)), [[[0, 1], [2, 3], [4, 5]]])
    np.testing.assert_array_equal(sequential.reshape(x, (-1,)), [[0, 1, 2, 3, 4, 5]])


def test_masking_drops_steps_whose_features_all_equal_mask_value():
    x = np.array([[[0.0, 0.0], [0.0, 1.0], [2.0, 0.0]]])
    out, keep = sequential.masking(x)
    np.testing.assert_array_equal(keep, [[False, True, True]])  # one zero feature is not enough
    np.testing.assert_array_equal(out, x)
    x = np.array([[[1.0, 1.0], [1.0, 2.0], [3.0, 1.0]]])
    out, keep = sequential.masking(x, 1.0)
    np.testing.assert_array_equal(keep, [[False, True, True]])
    np.testing.assert_array_equal(out, [[[0, 0], [1, 2], [3, 1]]])  # the masked step comes out as zeros


def test_embedding_rows_and_mask_zero():
    table = arr([0, 0], [1, 10], [2, 20])
    out, mask = sequential.embedding(np.array([[2, 0, 1]]), table, mask_zero=True)
    np.testing.assert_array_equal(out, [[[2, 20], [0, 0], [1, 10]]])
    np.testing.assert_array_equal(mask, [[True, False, True]])
    assert sequential.embedding(np.array([[2, 0, 1]]), table)[1] is None


def test_time_distributed_and_mask_passing():
    # TimeDistributed(Dense(1)), kernel [[3]], bias 1: steps 1, 2 -> 4, 7; the mask passes through
    td = {"class": "TimeDistributed", "layer": {"class": "Dense", "units": 1}}
    mask = np.array([[True, False]])
    dense_w = {"kernel": arr([3.0]), "bias": np.array([1.0])}
    out, passed = sequential.apply(td, np.array([[[1.0], [2.0]]]), dense_w, mask, TF)
    np.testing.assert_allclose(out, [[[4], [7]]], atol=0)
    assert passed is mask
    # layers without supports_masking drop it
    flat, dropped = sequential.apply({"class": "Flatten"}, np.ones((1, 2, 1)), {}, mask, TF)
    assert dropped is None and flat.shape == (1, 2)
    # a recurrent layer passes it on only with return_sequences
    w = {"kernel": np.zeros((1, 4)), "recurrent_kernel": np.zeros((1, 4)), "bias": np.zeros(4)}
    for seq, want in ((True, mask), (False, None)):
        _, got = sequential.apply({"class": "LSTM", "units": 1, "return_sequences": seq}, np.ones((1, 2, 1)), w, mask,
                                  TF)
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
        counts.append(model_layers.param_formula(spec, shape)[0])
        shape = model_layers.output_shape(spec, shape)
        shapes.append(shape)
    assert shapes == [(3, 3, 3), (3, 3, 2), (3, 2, 2), (3, 4), (5,)]
    assert counts == [0, 14, 0, 0, 200]
    # Seed 003, LSTM -> 1D CNN: (None,9,5) -> (None,8,64) -> (None,4,64) -> (None,256)
    shape = (9, 3)
    for spec, want in (({"class": "LSTM", "units": 5, "return_sequences": True}, (9, 5)),
                       ({"class": "Conv1D", "filters": 64, "kernel_size": 2}, (8, 64)),
                       ({"class": "MaxPooling1D", "pool_size": 2}, (4, 64)),
                       ({"class": "Flatten"}, (256,))):
        shape = model_layers.output_shape(spec, shape)
        assert shape == want
    # Seed 001 (rnn_basic): Dense(20) on the (500, 10) sequence -> (500, 20), 10*20 + 20 = 220 printed
    assert model_layers.output_shape({"class": "Dense", "units": 20}, (500, 10)) == (500, 20)
    assert model_layers.param_formula({"class": "Dense", "units": 20}, (500, 10))[0] == 220
    # Embedding 10x4 = 40; Conv1D without bias 2*4*3 = 24
    assert model_layers.param_formula({"class": "Embedding", "input_dim": 10, "output_dim": 4}, (6,))[0] == 40
    no_bias = {"class": "Conv1D", "filters": 3, "kernel_size": 2, "use_bias": False}
    assert model_layers.param_formula(no_bias, (5, 4))[0] == 24
