"""The layers a ``model:`` case may list besides the recurrent ones: facts only, no math, no Keras.

Arguments with Keras's defaults, the per-sample output shape each layer returns, and its
parameter formula.  Masks follow Keras 3's rules (keras/src/layers/layer.py ``Layer.__call__``,
keras/src/layers/rnn/rnn.py ``RNN.compute_mask``): ``Masking`` and ``Embedding(mask_zero=True)``
make one, recurrent layers use it and pass it on only with ``return_sequences``, ``Dense`` and
``TimeDistributed`` pass it on unchanged (``PASS_MASK``), and every other layer here drops it.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from . import keras_api as api
from . import layers
from .errors import ShapeProblem

# Kinds of argument values beyond keras_api's.
PADDING, SHAPE, NUMBER, STRIDE = "valid or same", "list of sizes", "finite number", "positive integer or null"
PADDINGS = ("valid", "same")

# Non-recurrent layers a model may hold: argument -> (Keras's default, kind).  Every name and
# default is checked against the installed Keras signatures by tests/keras/test_model_layers.py.
MODEL_LAYERS: dict[str, dict[str, tuple[Any, str]]] = {
    "Dense": {"units": (None, api.UNITS), "activation": (None, api.ACTIVATION), "use_bias": (True, api.BOOL)},
    "TimeDistributed": {"layer": (None, api.LAYER)},
    "RepeatVector": {"n": (None, api.UNITS)},
    "Flatten": {},
    "Reshape": {"target_shape": (None, SHAPE)},
    "Conv1D": {"filters": (None, api.UNITS), "kernel_size": (None, api.UNITS), "strides": (1, api.UNITS),
               "padding": ("valid", PADDING), "activation": (None, api.ACTIVATION),
               "use_bias": (True, api.BOOL)},
    "MaxPooling1D": {"pool_size": (2, api.UNITS), "strides": (None, STRIDE), "padding": ("valid", PADDING)},
    "Masking": {"mask_value": (0.0, NUMBER)},
    "Embedding": {"input_dim": (None, api.UNITS), "output_dim": (None, api.UNITS), "mask_zero": (False, api.BOOL)},
}
REQUIRED = {"Dense": ("units",), "TimeDistributed": ("layer",), "RepeatVector": ("n",),
            "Reshape": ("target_shape",), "Conv1D": ("filters", "kernel_size"),
            "Embedding": ("input_dim", "output_dim")}
ALL_CLASSES = tuple(api.LAYER_ARGS) + tuple(MODEL_LAYERS)
TD_INNER = ("Dense", "Conv1D", "MaxPooling1D", "Flatten", "Reshape", "RepeatVector")
PASS_MASK = ("Dense", "TimeDistributed")  # supports_masking with the default compute_mask
MODEL_DTYPES = ("float32", "float64")


def with_defaults(spec: Mapping) -> dict:
    """One model entry with every Keras default filled in (TimeDistributed's inner layer too)."""
    cls = spec["class"]
    if cls in api.LAYER_ARGS:
        return api.with_defaults(dict(spec))
    full = {"class": cls, **{arg: spec.get(arg, default) for arg, (default, _) in MODEL_LAYERS[cls].items()}}
    if cls == "TimeDistributed":
        full["layer"] = with_defaults(spec["layer"])
    if cls == "MaxPooling1D" and full["strides"] is None:
        full["strides"] = full["pool_size"]  # Keras: strides default to pool_size
    return full


def input_shape(model, timesteps: int, features: int) -> tuple[int, ...]:
    """The per-sample input of a model case: (timesteps,) integer ids when an Embedding comes first,
    else (timesteps, features)."""
    return (timesteps,) if model[0]["class"] == "Embedding" else (timesteps, features)


def steps_out(steps: int, size: int, stride: int, padding: str) -> int:
    """Output length of a 1-D window: TF's SAME is ceil(T/s), VALID floor((T-k)/s)+1."""
    return -(-steps // stride) if padding == "same" else (steps - size) // stride + 1


def output_shape(spec: Mapping, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The per-sample shape (no batch axis) a layer returns for a per-sample input ``shape``."""
    cfg = with_defaults(spec)
    cls = cfg["class"]

    def need(ndim: int, what: str) -> None:
        if len(shape) != ndim:
            raise ShapeProblem(f"{cls} needs a {what} input per sample", f"{ndim} axes after the batch",
                               f"shape {shape}")

    if cls in api.LAYER_ARGS:
        need(2, "(timesteps, features)")
        return layers.output_shapes(cfg, 1, shape[0])["output"][1:]
    if cls == "Dense":
        return shape[:-1] + (cfg["units"],)
    if cls == "RepeatVector":
        need(1, "(features,)")
        return (cfg["n"],) + shape
    if cls == "Flatten":
        return (math.prod(shape),)
    if cls == "Reshape":
        target = tuple(cfg["target_shape"])
        known = math.prod(t for t in target if t != -1)
        size = math.prod(shape)
        if (-1 in target and size % known) or (-1 not in target and known != size):
            raise ShapeProblem("target_shape does not hold the input's elements",
                               f"{size} elements (input shape {shape})", f"target_shape {list(target)}")
        return tuple(size // known if t == -1 else t for t in target)
    if cls in ("Conv1D", "MaxPooling1D"):
        need(2, "(steps, channels)")
        size = cfg["kernel_size"] if cls == "Conv1D" else cfg["pool_size"]
        steps = steps_out(shape[0], size, cfg["strides"], cfg["padding"])
        if steps < 1:
            what = "kernel_size" if cls == "Conv1D" else "pool_size"
            raise ShapeProblem(f"{what} {size} is longer than the sequence (padding valid)",
                               f"{what} <= {shape[0]} or padding same", f"{what} {size}")
        return (steps, cfg["filters"] if cls == "Conv1D" else shape[1])
    if cls == "Masking":
        return shape
    if cls == "Embedding":
        need(1, "(timesteps,) integer ids")
        return shape + (cfg["output_dim"],)
    # TimeDistributed: the inner layer sees one step at a time.
    if len(shape) < 2:
        raise ShapeProblem("TimeDistributed needs a (timesteps, ...) input per sample",
                           "at least 2 axes after the batch", f"shape {shape}")
    try:
        return (shape[0],) + output_shape(cfg["layer"], shape[1:])
    except ShapeProblem as p:
        raise ShapeProblem(f"inside TimeDistributed: {p.problem}", p.expected, p.got) from None


def param_formula(spec: Mapping, shape: tuple[int, ...]) -> tuple[int, str]:
    """The layer's parameter count for a per-sample input ``shape``, with the formula it came from."""
    cfg = with_defaults(spec)
    cls = cfg["class"]
    if cls in api.LAYER_ARGS:
        return layers.param_formula(cfg, shape[-1])
    if cls == "Dense":
        f, u = shape[-1], cfg["units"]
        return (f * u + u, f"F*units + units = {f}*{u} + {u}") if cfg["use_bias"] else (f * u, f"F*units = {f}*{u}")
    if cls == "Conv1D":
        k, c, n = cfg["kernel_size"], shape[-1], cfg["filters"]
        if cfg["use_bias"]:
            return k * c * n + n, f"kernel_size*C*filters + filters = {k}*{c}*{n} + {n}"
        return k * c * n, f"kernel_size*C*filters = {k}*{c}*{n}"
    if cls == "Embedding":
        return cfg["input_dim"] * cfg["output_dim"], f"input_dim*output_dim = {cfg['input_dim']}*{cfg['output_dim']}"
    if cls == "TimeDistributed":
        count, formula = param_formula(cfg["layer"], shape[1:])
        return count, f"inner {formula}"
    return 0, "no weights"
