"""harness/kernels.py: the kernel decision table, one test per rule of docs/semantics.md §11.

Pure: no Keras import.  Each expectation is a fact read from the Keras source named in the test
(keras 3.15.1 and tf_keras 2.21 as installed), not something printed by the code under test.
The CPU rows are also checked against the backend functions that really ran, by every case of
cases/flavours/kernels.yaml and the "kernel" check of every case run.
"""
from __future__ import annotations

import numpy as np
import pytest

from harness import kernels
from harness.keras_api import with_defaults
from harness.kernels import CUDNN, FUSED, GENERIC, MaskInfo, decide, mask_info

RIGHT = MaskInfo(right_padded=True, empty_row=False)
LEFT = MaskInfo(right_padded=False, empty_row=False)
EMPTY = MaskInfo(right_padded=True, empty_row=True)


def layer(cls: str = "LSTM", **kw) -> dict:
    return with_defaults({"class": cls, "units": 4, **kw})


def bidi(inner: dict, backward: dict | None = None) -> dict:
    spec = {"class": "Bidirectional", "layer": inner}
    if backward is not None:
        spec["backward_layer"] = backward
    return with_defaults(spec)


def on(cfg: dict, flavour: str = "tensorflow", device: str = "gpu", gpu: bool = True, mask=None):
    return decide(cfg, flavour=flavour, device=device, gpu_visible=gpu, mask=mask)


# ---------------------------------------------------------------- masks as cuDNN sees them

def test_mask_info_right_padded_left_padded_hole_and_empty_row():
    assert mask_info(None) is None
    assert mask_info(np.array([[1, 1, 0], [1, 0, 0]])) == RIGHT
    assert mask_info(np.array([[0, 1, 1], [1, 1, 1]])) == LEFT
    assert mask_info(np.array([[1, 0, 1], [1, 1, 1]])).right_padded is False  # a hole in the middle
    assert mask_info(np.array([[1, 1, 1], [0, 0, 0]])) == EMPTY


# ---------------------------------------------------------------- Keras 3 on TensorFlow

@pytest.mark.parametrize("cls", ["LSTM", "GRU"])
def test_tf_default_layer_on_a_gpu_runs_cudnn(cls):
    assert on(layer(cls)).kernel == CUDNN  # tensorflow/rnn.py cudnn_ok: every condition holds


def test_tf_without_a_gpu_runs_the_generic_loop():
    d = on(layer(), device="cpu", gpu=False)
    assert (d.kernel, d.error) == (GENERIC, None)


def test_tf_decides_on_a_visible_gpu_not_on_the_device_scope():
    # tensorflow/rnn.py L675: _is_gpu_available() lists logical GPUs; the call's device is not read.
    assert on(layer(), device="cpu", gpu=True).kernel == CUDNN


def test_tf_use_cudnn_true_without_a_gpu_raises_value_error():
    d = on(layer(use_cudnn=True), device="cpu", gpu=False)
    assert (d.kernel, d.error) == (GENERIC, "ValueError")  # lstm.py L571-577


def test_use_cudnn_false_keeps_the_generic_loop_on_a_gpu():
    assert on(layer(use_cudnn=False)).kernel == GENERIC  # lstm.py L533: the backend is never called


def test_recurrent_dropout_blocks_cudnn_and_use_cudnn_true_then_raises():
    assert on(layer(recurrent_dropout=0.2)).kernel == GENERIC  # lstm.py L534
    assert on(layer(recurrent_dropout=0.2, use_cudnn=True)).error == "ValueError"


@pytest.mark.parametrize("arg", [{"activation": "relu"}, {"activation": None},
                                 {"recurrent_activation": "hard_sigmoid"}])
def test_activations_other_than_tanh_and_sigmoid_block_cudnn(arg):
    # tensorflow/rnn.py L523-538: `activation in (activations.tanh, tf.tanh, ops.tanh)`, by identity.
    assert on(layer(**arg)).kernel == GENERIC


def test_unroll_blocks_cudnn():
    assert on(layer(unroll=True)).kernel == GENERIC


def test_no_bias_blocks_cudnn():
    assert on(layer(use_bias=False)).kernel == GENERIC


def test_gru_reset_after_false_is_not_cudnn_eligible():
    assert on(layer("GRU", reset_after=False)).kernel == GENERIC  # tensorflow/rnn.py L503-520
    assert on(layer("GRU", reset_after=True)).kernel == CUDNN


def test_dropout_and_stateful_do_not_block_cudnn():
    assert on(layer(dropout=0.5, stateful=True)).kernel == CUDNN  # §11: only recurrent_dropout does


def test_simple_rnn_always_runs_the_generic_loop():
    for flavour in ("tensorflow", "jax", "torch", "tf_keras"):
        assert on(layer("SimpleRNN"), flavour=flavour).kernel == GENERIC


def test_tf_right_padded_mask_goes_to_cudnn():
    assert on(layer(), mask=RIGHT).kernel == CUDNN


@pytest.mark.parametrize("mask", [LEFT, EMPTY])
def test_tf_other_masks_fall_back_silently_or_raise_with_use_cudnn_true(mask):
    # §6: eager tf.Assert -> InvalidArgumentError -> NotImplementedError -> generic loop.
    d = on(layer(), mask=mask)
    assert (d.kernel, d.error) == (GENERIC, None)
    assert on(layer(use_cudnn=True), mask=mask).error == "ValueError"


# ---------------------------------------------------------------- Keras 3 on JAX

def test_jax_cudnn_lstm_takes_float32_and_float64_only():
    for compute in ("float32", "float64"):
        assert decide(layer(), flavour="jax", device="gpu", gpu_visible=True, compute=compute).kernel == CUDNN
    for compute in ("float16", "bfloat16"):  # jax.experimental.rnn: other dtypes are still to do
        got = decide(layer(), flavour="jax", device="gpu", gpu_visible=True, compute=compute)
        assert got.kernel == GENERIC and "JAX's cuDNN LSTM takes float32 and float64 only" in got.reason
    # TensorFlow registers its cuDNN kernels for half precision too: no dtype rule there
    assert decide(layer(), flavour="tensorflow", device="gpu", gpu_visible=True, compute="float16").kernel == CUDNN
    bi = decide(bidi(layer()), flavour="jax", device="gpu", gpu_visible=True, compute="float16")
    assert bi.kernel == GENERIC


def test_jax_lstm_runs_cudnn_only_with_a_gpu_backend():
    assert on(layer(), flavour="jax").kernel == CUDNN  # jax/rnn.py L220-235
    assert on(layer(), flavour="jax", device="cpu", gpu=False).kernel == GENERIC
    assert on(layer(use_cudnn=True), flavour="jax", device="cpu", gpu=False).error == "ValueError"


@pytest.mark.parametrize("gpu", [False, True])
def test_jax_reset_after_gru_is_a_fused_scan_on_any_device_and_activation(gpu):
    # jax/rnn.py L470-533: no cudnn_ok call, a lax.scan; so use_cudnn=True never raises here.
    d = on(layer("GRU", activation="relu", use_cudnn=True), flavour="jax", device="gpu" if gpu else "cpu", gpu=gpu)
    assert (d.kernel, d.error) == (FUSED, None)


@pytest.mark.parametrize("arg", [{"reset_after": False}, {"unroll": True}])
def test_jax_gru_falls_back_for_reset_before_or_unroll(arg):
    assert on(layer("GRU", **arg), flavour="jax").kernel == GENERIC  # jax/rnn.py L484


@pytest.mark.parametrize("flavour", ["jax", "torch"])
def test_jax_and_torch_send_any_mask_to_the_generic_loop(flavour):
    # jax/rnn.py L254, torch/rnn.py L556-559: even a right-padded mask.
    for cls in ("LSTM", "GRU"):
        assert on(layer(cls), flavour=flavour, mask=RIGHT).kernel == GENERIC
    assert on(layer(use_cudnn=True), flavour=flavour, mask=RIGHT).error == "ValueError"


# ---------------------------------------------------------------- Keras 3 on torch

@pytest.mark.parametrize("cls", ["LSTM", "GRU"])
def test_torch_on_the_cpu_runs_its_fallback_loop_and_use_cudnn_true_does_not_raise(cls):
    d = on(layer(cls, use_cudnn=True), flavour="torch", device="cpu", gpu=False)
    assert (d.kernel, d.error) == (FUSED, None)  # torch/rnn.py _fallback_lstm/_fallback_gru


def test_torch_on_cuda_runs_cudnn_when_eligible_and_its_fallback_otherwise():
    assert on(layer(), flavour="torch").kernel == CUDNN
    assert on(layer(activation="relu"), flavour="torch").kernel == FUSED
    assert on(layer(unroll=True), flavour="torch").kernel == FUSED


def test_torch_decides_on_where_the_inputs_are():
    # torch/rnn.py L579-585: cuDNN needs inputs on CUDA; a cpu case on a GPU machine has them on the CPU.
    assert on(layer(), flavour="torch", device="cpu", gpu=True).kernel == FUSED


def test_torch_gru_reset_after_false_uses_the_generic_loop():
    assert on(layer("GRU", reset_after=False), flavour="torch", device="cpu", gpu=False).kernel == GENERIC


# ---------------------------------------------------------------- tf_keras (Keras 2)

def test_tf_keras_runs_cudnn_on_the_gpu_and_respects_the_device_scope():
    # tfk lstm.py L713-733: device_type GPU, or unset with a GPU available.
    assert on(layer(), flavour="tf_keras").kernel == CUDNN
    assert on(layer(), flavour="tf_keras", device="cpu", gpu=True).kernel == GENERIC


@pytest.mark.parametrize("mask", [LEFT, EMPTY])
def test_tf_keras_falls_back_silently_for_unsupported_masks(mask):
    d = on(layer(), flavour="tf_keras", mask=mask)
    assert (d.kernel, d.error) == (GENERIC, None)


def test_tf_keras_argument_rules_match_keras_3():
    # tfk lstm.py L578-585, gru.py L604-611.
    for cfg in (layer(recurrent_dropout=0.1), layer(activation="relu"), layer(unroll=True),
                layer(use_bias=False), layer("GRU", reset_after=False)):
        assert on(cfg, flavour="tf_keras").kernel == GENERIC


# ---------------------------------------------------------------- Bidirectional

def test_tf_bidirectional_runs_two_cudnn_calls():
    d = on(bidi({"class": "LSTM", "units": 4}))
    assert d.kernel == CUDNN and "fused bidirectional" not in d.reason


@pytest.mark.parametrize("flavour", ["jax", "torch"])
def test_jax_and_torch_fuse_a_bidirectional_lstm_on_the_gpu(flavour):
    d = on(bidi({"class": "LSTM", "units": 4}), flavour=flavour)
    assert d.kernel == CUDNN and "fused bidirectional" in d.reason  # bidirectional.py L274-305


def test_fused_bidirectional_needs_no_mask_no_dropout_and_equal_layers():
    def fused(cfg, **kw):
        return "fused bidirectional" in on(cfg, flavour="torch", **kw).reason

    assert not fused(bidi({"class": "LSTM", "units": 4}), mask=RIGHT)
    assert not fused(bidi({"class": "LSTM", "units": 4, "dropout": 0.1}))
    assert not fused(bidi({"class": "LSTM", "units": 4}, {"class": "LSTM", "units": 5, "go_backwards": True}))


def test_jax_bidirectional_gru_is_two_fused_scans():
    # jax/rnn.py L536-541: bidirectional_gru always raises NotImplementedError.
    d = on(bidi({"class": "GRU", "units": 4}), flavour="jax")
    assert d.kernel == FUSED and "fused bidirectional" not in d.reason


def test_directions_on_different_kernels_are_both_named():
    backward = {"class": "LSTM", "units": 4, "activation": "relu", "go_backwards": True}
    cfg = bidi({"class": "LSTM", "units": 4}, backward)
    d = on(cfg)
    assert d.kernel == "cudnn+generic" and "forward" in d.reason and "backward" in d.reason


def test_combine():
    assert kernels.combine([CUDNN, CUDNN]) == CUDNN
    assert kernels.combine([GENERIC, CUDNN, GENERIC]) == "cudnn+generic"
