"""NumPy references of the non-recurrent layers a ``model:`` case may hold, and the chain.

float64, Keras's layouts and padding rules; the recurrent layers of the chain go to the
recurrent reference (``ref``: reference/recurrent.py, or a planted-bug copy of it).
"""
from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType

import numpy as np

from .. import flavours, layers
from .. import keras_api as api
from ..model_layers import PASS_MASK, steps_out, with_defaults
from . import recurrent

Array = np.ndarray


def dense(x: Array, kernel: Array, bias: Array | None = None, activation: str | None = None) -> Array:
    """Keras Dense on the last axis: act(x @ kernel + bias), kernel (in, units)."""
    y = np.asarray(x, dtype=np.float64) @ np.asarray(kernel, dtype=np.float64)
    return recurrent.activation(activation)(y if bias is None else y + bias)


def conv1d(x: Array, kernel: Array, bias: Array | None = None, strides: int = 1, padding: str = "valid",
           activation: str | None = None) -> Array:
    """Channels-last cross-correlation (no kernel flip), Keras's kernel layout (kernel_size, in, filters).

    SAME pads like TF: total = max((out-1)*s + k - T, 0) zeros, the smaller half in front.
    """
    x = np.asarray(x, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    k = kernel.shape[0]
    steps = steps_out(x.shape[1], k, strides, padding)
    if padding == "same":
        total = max((steps - 1) * strides + k - x.shape[1], 0)
        x = np.pad(x, ((0, 0), (total // 2, total - total // 2), (0, 0)))
    windows = np.stack([x[:, t * strides:t * strides + k] for t in range(steps)], axis=1)  # (B, L, k, C)
    y = np.einsum("blkc,kcf->blf", windows, kernel)
    return recurrent.activation(activation)(y if bias is None else y + bias)


def max_pooling1d(x: Array, pool_size: int = 2, strides: int | None = None, padding: str = "valid") -> Array:
    """Max over windows along the steps; SAME pads with -inf (padding never wins), smaller half in front."""
    x = np.asarray(x, dtype=np.float64)
    strides = strides or pool_size
    steps = steps_out(x.shape[1], pool_size, strides, padding)
    if padding == "same":
        total = max((steps - 1) * strides + pool_size - x.shape[1], 0)
        x = np.pad(x, ((0, 0), (total // 2, total - total // 2), (0, 0)), constant_values=-np.inf)
    return np.stack([x[:, t * strides:t * strides + pool_size].max(axis=1) for t in range(steps)], axis=1)


def repeat_vector(x: Array, n: int) -> Array:
    """(B, F) -> (B, n, F)."""
    return np.repeat(np.asarray(x, dtype=np.float64)[:, None, :], n, axis=1)


def flatten(x: Array) -> Array:
    """(B, ...) -> (B, prod(...)), row-major like Keras."""
    x = np.asarray(x, dtype=np.float64)
    return x.reshape(x.shape[0], -1)


def reshape(x: Array, target_shape) -> Array:
    """(B, ...) -> (B, *target_shape), row-major; one -1 takes what is left."""
    x = np.asarray(x, dtype=np.float64)
    return x.reshape((x.shape[0],) + tuple(target_shape))


def masking(x: Array, mask_value: float = 0.0) -> tuple[Array, Array]:
    """A step is kept unless every feature equals mask_value; masked steps come out as zeros."""
    x = np.asarray(x, dtype=np.float64)
    keep = np.any(x != mask_value, axis=-1)
    return np.where(keep[..., None], x, 0.0), keep


def embedding(ids: Array, embeddings: Array, mask_zero: bool = False) -> tuple[Array, Array | None]:
    """Rows of the table by id; with mask_zero, id 0 marks a padding step."""
    ids = np.asarray(ids, dtype=np.int64)
    return np.asarray(embeddings, dtype=np.float64)[ids], (ids != 0) if mask_zero else None


def apply(spec: Mapping, x: Array, weights: Mapping, mask: Array | None, flavour: str,
          ref: ModuleType = recurrent) -> tuple[Array, Array | None]:
    """One layer of the chain: its output and the mask it passes on (model_layers.py says which)."""
    cfg = with_defaults(spec)
    cls = cfg["class"]
    if cls in api.LAYER_ARGS:
        out = ref.run(flavours.reference_cfg(cfg, flavour), x, weights, mask)["output"]
        return out, mask if layers.returns(cfg, "return_sequences") else None
    if cls == "Masking":
        return masking(x, cfg["mask_value"])
    if cls == "Embedding":
        return embedding(x, weights["embeddings"], cfg["mask_zero"])
    if cls == "Dense":
        y = dense(x, weights["kernel"], weights.get("bias"), cfg["activation"])
    elif cls == "Conv1D":
        y = conv1d(x, weights["kernel"], weights.get("bias"), cfg["strides"], cfg["padding"], cfg["activation"])
    elif cls == "MaxPooling1D":
        y = max_pooling1d(x, cfg["pool_size"], cfg["strides"], cfg["padding"])
    elif cls == "RepeatVector":
        y = repeat_vector(x, cfg["n"])
    elif cls == "Flatten":
        y = flatten(x)
    elif cls == "Reshape":
        y = reshape(x, cfg["target_shape"])
    else:  # TimeDistributed: the inner layer on every step, batch and time merged
        b, t = x.shape[:2]
        inner, _ = apply(cfg["layer"], np.reshape(x, (b * t,) + x.shape[2:]), weights, None, flavour, ref)
        y = inner.reshape((b, t) + inner.shape[1:])
    return y, mask if cls in PASS_MASK else None


def run_model(model, x: Array, weights: list[Mapping], flavour: str, ref: ModuleType = recurrent) -> list[Array]:
    """Every layer's output, chained from the input through the reference alone."""
    outputs, mask = [], None
    for spec, w in zip(model, weights):
        x, mask = apply(spec, x, w, mask, flavour, ref)
        outputs.append(x)
    return outputs
