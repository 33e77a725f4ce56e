"""Which recurrent kernel Keras runs for a case: cuDNN, a backend's fused loop, or the generic loop.

Pure functions of the layer config, the mask, the flavour and the device; no Keras import.  The
rules are Keras's own eligibility checks, read from the installed sources (docs/semantics.md §11,
masks §6); each rule below names the Keras function it comes from (Keras 3.15.1 under
``keras/src/``, tf_keras 2.21 under ``tf_keras/src/``).  kernel_watch.py also watches which
backend function really returned, so a wrong rule here shows as a failing "kernel" check.

Kernels:
- ``cudnn``: the fused cuDNN op (GPU only).
- ``fused``: a backend's own non-cuDNN fast path (torch ``_fallback_lstm``/``_fallback_gru``,
  JAX's ``lax.scan`` GRU); same equations, different summation order.
- ``generic``: Keras's step-by-step ``backend.rnn`` loop (the only one that reads a mask).

No dtype rule: TF 2.21 registers CudnnRNN/CudnnRNNV3 GPU kernels for float, double, half and
bfloat16 (tensorflow.python.framework.kernels.get_registered_kernels_for_op, read here), and no
CPU kernel at all.  Keras 3 TF and JAX decide on "a GPU exists", not on the device scope of the
call, so a cpu case on a GPU machine is predicted cuDNN there; the runner's device check then
says where its tensors really went.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from . import layers

CUDNN, FUSED, GENERIC = "cudnn", "fused", "generic"
KERNELS = (CUDNN, FUSED, GENERIC)

# The error Keras 3 raises when use_cudnn=True cannot be honoured (Keras 3.15
# keras/src/layers/rnn/lstm.py LSTM.inner_loop, gru.py GRU.inner_loop).
USE_CUDNN_ERROR = "ValueError"


@dataclass(frozen=True)
class MaskInfo:
    """What the cuDNN mask check looks at.

    Keras 3.15 keras/src/backend/tensorflow/rnn.py ``_assert_valid_mask`` (via
    ``_has_fully_masked_sequence`` and ``_is_sequence_right_padded``); tf_keras 2.21
    tf_keras/src/layers/rnn/gru_lstm_utils.py ``is_cudnn_supported_inputs``.
    """

    right_padded: bool  # every row is some ones followed by zeros
    empty_row: bool  # some row is masked at every step


def mask_info(mask: np.ndarray | None) -> MaskInfo | None:
    """MaskInfo for a (batch, timesteps) 0/1 mask, or None without a mask."""
    if mask is None:
        return None
    m = np.asarray(mask, dtype=bool)
    lengths = m.sum(axis=1)
    padded = np.arange(m.shape[1])[None, :] < lengths[:, None]
    return MaskInfo(right_padded=bool((m == padded).all()), empty_row=bool((lengths == 0).any()))


@dataclass(frozen=True)
class Decision:
    """The kernel Keras will run, the rule that decided it, and an error Keras raises instead."""

    kernel: str
    reason: str
    error: str | None = None  # exception type name, when use_cudnn=True cannot be honoured


def _cudnn_args_ok(cfg: Mapping, flavour: str) -> str | None:
    """Why the layer arguments rule cuDNN out, or None when they allow it.

    Keras 3.15 TF: keras/src/backend/tensorflow/rnn.py ``cudnn_ok`` with
    ``_do_lstm_arguments_support_cudnn`` / ``_do_gru_arguments_support_cudnn`` (activations by
    identity: only the names tanh and sigmoid give those objects); tf_keras 2.21:
    tf_keras/src/layers/rnn/lstm.py ``LSTM.__init__`` and gru.py ``GRU.__init__``
    (``_could_use_gpu_kernel``); Keras 3.15 JAX/torch: ``cudnn_ok`` in
    keras/src/backend/jax/rnn.py and keras/src/backend/torch/rnn.py.
    """
    if cfg.get("activation") != "tanh":
        return f"activation {cfg.get('activation')!r} is not tanh"
    if cfg.get("recurrent_activation") != "sigmoid":
        return f"recurrent_activation {cfg.get('recurrent_activation')!r} is not sigmoid"
    if cfg.get("unroll"):
        return "unroll=True"
    if not cfg.get("use_bias", True):
        return "use_bias=False"
    if cfg["class"] == "GRU" and not cfg.get("reset_after", True) and flavour in ("tensorflow", "tf_keras"):
        return "GRU reset_after=False (cuDNN computes the reset_after formula only)"
    return None


def _mask_blocks_cudnn(mask: MaskInfo | None) -> str | None:
    if mask is None:
        return None
    if not mask.right_padded:
        return "the mask is not right-padded"
    if mask.empty_row:
        return "a row is fully masked"
    return None


def decide(cfg: Mapping, *, flavour: str, device: str, gpu_visible: bool,
           mask: MaskInfo | None = None, compute: str = "float32") -> Decision:
    """The kernel of one layer call; ``cfg`` has every default filled in (keras_api.with_defaults);
    ``compute`` is the layer's compute dtype."""
    kw = {"flavour": flavour, "device": device, "gpu_visible": gpu_visible, "mask": mask, "compute": compute}
    if cfg["class"] == "Bidirectional":
        return _decide_bidirectional(cfg, **kw)
    return _decide_single(cfg, **kw)


# The dtypes jax.experimental.rnn (the cuDNN LSTM Keras 3 calls on JAX) takes: its module docstring
# lists "support for input and weight dtypes other than float32" as still to do; Keras then falls
# back to the generic loop for half precision.
JAX_CUDNN_DTYPES = ("float32", "float64")


def _decide_single(cfg: Mapping, *, flavour: str, device: str, gpu_visible: bool,
                   mask: MaskInfo | None, compute: str = "float32") -> Decision:
    cls = cfg["class"]
    if cls == "SimpleRNN":
        return Decision(GENERIC, "SimpleRNN has no fused kernel (simple_rnn.py has no inner_loop)")
    if flavour == "tf_keras":
        return _decide_tf_keras(cfg, device=device, gpu_visible=gpu_visible, mask=mask)
    use_cudnn = cfg.get("use_cudnn", "auto")
    if use_cudnn is False:
        return Decision(GENERIC, "use_cudnn=False")

    def refused(kernel: str, why: str) -> Decision:
        # The layer falls back on NotImplementedError; use_cudnn=True turns that into ValueError.
        if use_cudnn is True:
            return Decision(kernel, f"use_cudnn=True but {why}", USE_CUDNN_ERROR)
        return Decision(kernel, why)

    if cfg.get("recurrent_dropout"):
        # Keras 3.15 LSTM.inner_loop / GRU.inner_loop (keras/src/layers/rnn/lstm.py, gru.py)
        # call the backend only when recurrent_dropout == 0.
        return refused(GENERIC, "recurrent_dropout > 0")
    args = _cudnn_args_ok(cfg, flavour)
    if flavour == "tensorflow":
        # Keras 3.15 keras/src/backend/tensorflow/rnn.py _is_gpu_available: a GPU visible to TF
        # at all (tf.config.list_logical_devices), not the device scope of the call.
        if args:
            return refused(GENERIC, args)
        if not gpu_visible:
            return refused(GENERIC, "no GPU visible to TensorFlow")
        blocked = _mask_blocks_cudnn(mask)
        if blocked:
            # Eager: tf.Assert -> InvalidArgumentError -> NotImplementedError -> generic (§6).
            return refused(GENERIC, f"{blocked} (cuDNN refuses it; eager Keras falls back)")
        return Decision(CUDNN, "cuDNN-eligible arguments, GPU visible"
                        + (", right-padded mask" if mask is not None else ""))
    if mask is not None:
        # Keras 3.15 keras/src/backend/jax/rnn.py lstm / gru and keras/src/backend/torch/rnn.py
        # lstm / gru raise NotImplementedError on any mask: it goes to the generic loop.
        return refused(GENERIC, f"a mask ({flavour} sends every masked call to the generic loop)")
    if flavour == "jax":
        if cls == "GRU":
            # Keras 3.15 keras/src/backend/jax/rnn.py gru: a reset_after GRU is a lax.scan on
            # every device, any activation.
            if not cfg.get("reset_after", True):
                return refused(GENERIC, "GRU reset_after=False")
            if cfg.get("unroll"):
                return refused(GENERIC, "unroll=True")
            return Decision(FUSED, "JAX runs a reset_after GRU as one lax.scan (no cuDNN GRU in JAX)")
        if args:
            return refused(GENERIC, args)
        # Keras 3.15 keras/src/backend/jax/rnn.py _is_gpu_available: the default JAX backend,
        # not the device scope of the call.
        if not gpu_visible:
            return refused(GENERIC, "JAX's default backend is not a GPU")
        if compute not in JAX_CUDNN_DTYPES:
            return refused(GENERIC, f"compute dtype {compute} (JAX's cuDNN LSTM takes float32 and float64 only)")
        return Decision(CUDNN, "cuDNN-eligible arguments, JAX default backend is a GPU")
    if flavour == "torch":
        if cls == "GRU" and not cfg.get("reset_after", True):
            return refused(GENERIC, "GRU reset_after=False")
        # Keras 3.15 keras/src/backend/torch/rnn.py lstm / gru: cuDNN needs CUDA inputs (and no
        # tracing) and cudnn_ok, else _fallback_lstm / _fallback_gru runs (it never raises, so
        # use_cudnn=True passes on CPU).
        if device != "gpu" or not gpu_visible:
            return Decision(FUSED, "inputs not on CUDA: torch's fallback loop")
        if args:
            return Decision(FUSED, f"{args}: torch's fallback loop")
        return Decision(CUDNN, "cuDNN-eligible arguments, inputs on CUDA")
    raise ValueError(f"unknown flavour {flavour!r}")


def _decide_tf_keras(cfg: Mapping, *, device: str, gpu_visible: bool, mask: MaskInfo | None) -> Decision:
    """tf_keras (Keras 2): no use_cudnn; eager picks by device scope.

    tf_keras 2.21 tf_keras/src/layers/rnn/lstm.py ``LSTM.call`` and gru.py
    ``GRU._defun_gru_call`` (eager branch: ``gru_lstm_utils.get_context_device_type``).
    """
    if cfg.get("recurrent_dropout"):
        return Decision(GENERIC, "recurrent_dropout > 0")
    args = _cudnn_args_ok(cfg, "tf_keras")
    if args:
        return Decision(GENERIC, args)
    if device != "gpu" or not gpu_visible:
        return Decision(GENERIC, "the call runs on the CPU")
    blocked = _mask_blocks_cudnn(mask)
    if blocked:
        return Decision(GENERIC, f"{blocked} (tf_keras falls back silently)")
    return Decision(CUDNN, "cuDNN-eligible arguments on the GPU")


def _decide_bidirectional(cfg: Mapping, *, flavour: str, device: str, gpu_visible: bool,
                          mask: MaskInfo | None, compute: str = "float32") -> Decision:
    fwd, bwd = layers.cells(cfg)
    fused = _fused_bidirectional(fwd, bwd, flavour=flavour, device=device, gpu_visible=gpu_visible, mask=mask,
                                 compute=compute)
    if fused is not None:
        return fused
    kw = {"flavour": flavour, "device": device, "gpu_visible": gpu_visible, "mask": mask, "compute": compute}
    f, b = _decide_single(fwd, **kw), _decide_single(bwd, **kw)
    error = f.error or b.error
    if f.kernel == b.kernel:
        reason = f.reason if f.reason == b.reason else f"forward: {f.reason}; backward: {b.reason}"
        return Decision(f.kernel, reason, error)
    return Decision(combine([f.kernel, b.kernel]), f"forward: {f.reason}; backward: {b.reason}", error)


def _fused_bidirectional(fwd: Mapping, bwd: Mapping, *, flavour: str, device: str, gpu_visible: bool,
                         mask: MaskInfo | None, compute: str = "float32") -> Decision | None:
    """One fused cuDNN call for both directions.

    Keras 3.15 keras/src/layers/rnn/bidirectional.py ``Bidirectional._can_attempt_fused_lstm`` and
    ``_can_attempt_fused_gru``.  Only JAX (``bidirectional_lstm``) and torch (``bidirectional_lstm``,
    ``bidirectional_gru``) implement it, on the GPU; keras/src/backend/tensorflow/rnn.py
    ``bidirectional_lstm`` / ``bidirectional_gru`` (and JAX ``bidirectional_gru``) raise
    NotImplementedError.
    """
    if flavour not in ("jax", "torch") or mask is not None or fwd.get("stateful"):
        return None
    if flavour == "jax" and compute not in JAX_CUDNN_DTYPES:  # jax.experimental.rnn, as for one direction
        return None
    cls = fwd["class"]
    if cls != bwd["class"] or cls not in ("LSTM", "GRU") or (cls == "GRU" and flavour == "jax"):
        return None
    for layer in (fwd, bwd):
        if layer.get("use_cudnn", "auto") is False or layer.get("dropout") or layer.get("recurrent_dropout"):
            return None
        if not layer.get("use_bias", True) or (cls == "GRU" and not layer.get("reset_after", True)):
            return None
    if fwd["units"] != bwd["units"] or fwd.get("activation") != bwd.get("activation") \
            or fwd.get("recurrent_activation") != bwd.get("recurrent_activation"):
        return None
    if _cudnn_args_ok(fwd, flavour) or not gpu_visible or (flavour == "torch" and device != "gpu"):
        return None
    return Decision(CUDNN, f"one fused bidirectional cuDNN call ({flavour})")


def combine(kernels: list[str]) -> str:
    """One name for several layer calls: the kernel if they agree, else ``a+b`` sorted."""
    unique = sorted(set(kernels))
    return unique[0] if len(unique) == 1 else "+".join(unique)
