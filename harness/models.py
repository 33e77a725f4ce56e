"""Whole models: a case's ``model:`` list of layers, applied in order like ``keras.Sequential``.

Four parts, in the order a case meets them: validation of the list (schema time, no Keras),
the NumPy reference of the non-recurrent layers (the recurrent ones go to harness/reference.py),
building and running the real Sequential (the only code here that imports Keras, lazily), and
``run_into``, which adds both sides' checks to the runner's ``CaseResult``.

Masks follow Keras 3's rules (keras/src/layers/layer.py ``__call__``, rnn.py ``compute_mask``):
``Masking`` and ``Embedding(mask_zero=True)`` make one, recurrent layers use it and pass it on
only with ``return_sequences``, ``Dense`` and ``TimeDistributed`` pass it on unchanged, and every
other layer here (no ``supports_masking``) drops it.
"""
from __future__ import annotations

import math
import time
import traceback
import zlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any
from collections.abc import Mapping

import numpy as np

from . import data, flavours
from . import keras_api as api
from . import reference as default_reference
from .case import Case, Expect, InputSpec
from .errors import Unsupported
from .yaml_lines import LineDict

Array = np.ndarray

# Kinds of argument values beyond keras_api's.
PADDING, SHAPE, NUMBER, STRIDE = "valid or same", "list of sizes", "finite number", "positive integer or null"
PADDINGS = ("valid", "same")

# Non-recurrent layers a model may hold: argument -> (Keras's default, kind).  Every name and
# default is checked against the installed Keras signatures by tests/test_models.py.
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
MODEL_CASE_KEYS = ("id", "about", "model", "input", "dtype", "devices", "seed", "sweep", "expect",
                   "tolerance", "requires")
MODEL_EXPECT_KEYS = ("params", "layer_params", "output_shape", "values")
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


def describe_model(model) -> str:
    """``Sequential([LSTM(units=3), Dense(units=10, activation='softmax')])``: the model as Keras code."""
    def one(spec: Mapping) -> str:
        args = (f"{k}={one(v) if isinstance(v, Mapping) else repr(v)}" for k, v in spec.items() if k != "class")
        return f"{spec['class']}({', '.join(args)})"

    return "Sequential([" + ", ".join(one(spec) for spec in model) + "])"


# ---------------------------------------------------------------- shapes and parameter counts

class ShapeProblem(ValueError):
    """A layer cannot take the shape the layer before it returns."""

    def __init__(self, problem: str, expected: str, got: str):
        super().__init__(problem)
        self.problem, self.expected, self.got = problem, expected, got


def _steps_out(steps: int, size: int, stride: int, padding: str) -> int:
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
        return default_reference.output_shapes(cfg, 1, shape[0])["output"][1:]
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
        steps = _steps_out(shape[0], size, cfg["strides"], cfg["padding"])
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


def param_formula(spec: Mapping, shape: tuple[int, ...], ref: ModuleType = default_reference) -> tuple[int, str]:
    """The layer's parameter count for a per-sample input ``shape``, with the formula it came from."""
    cfg = with_defaults(spec)
    cls = cfg["class"]
    if cls in api.LAYER_ARGS:
        return ref.param_formula(flavours.reference_cfg(cfg, flavours.current()), shape[-1])
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
        count, formula = param_formula(cfg["layer"], shape[1:], ref)
        return count, f"inner {formula}"
    return 0, "no weights"


# ---------------------------------------------------------------- the NumPy reference (float64)

def dense(x: Array, kernel: Array, bias: Array | None = None, activation: str | None = None) -> Array:
    """Keras Dense on the last axis: act(x @ kernel + bias), kernel (in, units)."""
    y = np.asarray(x, dtype=np.float64) @ np.asarray(kernel, dtype=np.float64)
    return default_reference.activation(activation)(y if bias is None else y + bias)


def conv1d(x: Array, kernel: Array, bias: Array | None = None, strides: int = 1, padding: str = "valid",
           activation: str | None = None) -> Array:
    """Channels-last cross-correlation (no kernel flip), Keras's kernel layout (kernel_size, in, filters).

    SAME pads like TF: total = max((out-1)*s + k - T, 0) zeros, the smaller half in front.
    """
    x = np.asarray(x, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    k = kernel.shape[0]
    steps = _steps_out(x.shape[1], k, strides, padding)
    if padding == "same":
        total = max((steps - 1) * strides + k - x.shape[1], 0)
        x = np.pad(x, ((0, 0), (total // 2, total - total // 2), (0, 0)))
    windows = np.stack([x[:, t * strides:t * strides + k] for t in range(steps)], axis=1)  # (B, L, k, C)
    y = np.einsum("blkc,kcf->blf", windows, kernel)
    return default_reference.activation(activation)(y if bias is None else y + bias)


def max_pooling1d(x: Array, pool_size: int = 2, strides: int | None = None, padding: str = "valid") -> Array:
    """Max over windows along the steps; SAME pads with -inf (padding never wins), smaller half in front."""
    x = np.asarray(x, dtype=np.float64)
    strides = strides or pool_size
    steps = _steps_out(x.shape[1], pool_size, strides, padding)
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


def apply(spec: Mapping, x: Array, weights: Mapping, mask: Array | None,
          ref: ModuleType = default_reference) -> tuple[Array, Array | None]:
    """One layer of the chain: its output and the mask it passes on (module docstring)."""
    cfg = with_defaults(spec)
    cls = cfg["class"]
    if cls in api.LAYER_ARGS:
        out = ref.run(flavours.reference_cfg(cfg, flavours.current()), x, weights, mask)["output"]
        sequences = cfg["layer"]["return_sequences"] if cls == "Bidirectional" else cfg["return_sequences"]
        return out, mask if sequences else None
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
        inner, _ = apply(cfg["layer"], np.reshape(x, (b * t,) + x.shape[2:]), weights, None, ref)
        y = inner.reshape((b, t) + inner.shape[1:])
    return y, mask if cls in PASS_MASK else None


def run_reference(model, x: Array, weights: list[Mapping], ref: ModuleType = default_reference) -> list[Array]:
    """Every layer's output, chained from the input through the reference alone."""
    outputs, mask = [], None
    for spec, w in zip(model, weights):
        x, mask = apply(spec, x, w, mask, ref)
        outputs.append(x)
    return outputs


# ---------------------------------------------------------------- validation (schema time)

def _check_plain(ck, item: LineDict, field: str) -> dict | None:
    """A non-recurrent entry: class arguments, required ones, TimeDistributed's inner layer."""
    from . import schema  # noqa: PLC0415 - schema imports this module lazily

    before = len(ck.problems)
    cls = item["class"]
    table = MODEL_LAYERS[cls]
    ck.keys(item, ("class",) + tuple(table), field, f"an argument of keras.layers.{cls}")
    out = {"class": cls}
    for arg, value in item.items():
        if arg == "class" or arg not in table:
            continue
        kind, f = table[arg][1], f"{field}.{arg}"
        if kind == api.UNITS:
            ck.integer(item, arg, f, 1)
        elif kind == api.BOOL:
            ck.boolean(item, arg, f)
        elif kind == api.ACTIVATION:
            schema._check_activation(ck, item, arg, f)
        elif kind == PADDING:
            ck.choice(item, arg, f, PADDINGS, "padding")
        elif kind == STRIDE and value is not None:
            ck.integer(item, arg, f, 1)
        elif kind == NUMBER:
            ck.number(item, arg, f)
        elif kind == SHAPE:
            ok = isinstance(value, list) and value and all(schema._is_int(v) and (v > 0 or v == -1) for v in value)
            if not ok or value.count(-1) > 1:
                ck.fail(item, arg, f, "must be a list of positive sizes (one may be -1)", "a list such as [3, 3, 3]",
                        schema._show(value))
        elif kind == api.LAYER:
            inner = ck.mapping(item, arg, f)
            value = None if inner is None else _check_entry(ck, item, inner, f, TD_INNER)
        out[arg] = value
    for arg in REQUIRED.get(cls, ()):
        if arg not in item:
            what = {api.UNITS: "a positive integer", SHAPE: "a list such as [3, 3, 3]",
                    api.LAYER: "a layer such as {class: Dense, units: 1}"}[table[arg][1]]
            ck.fail(item, None, f"{field}.{arg}", "is required", what, "nothing")
    return out if len(ck.problems) == before else None


def _check_entry(ck, parent, item: Any, field: str, classes: tuple[str, ...] = ALL_CLASSES) -> dict | None:
    """One layer of the list (or TimeDistributed's inner layer), as a plain validated dict."""
    from . import schema  # noqa: PLC0415

    if not isinstance(item, LineDict):
        ck.fail(parent, "model", field, "must be a mapping", "a layer such as {class: LSTM, units: 8}",
                schema._show(item))
        return None
    if "class" not in item:
        ck.fail(item, None, f"{field}.class", "is required", "one of " + ", ".join(classes), "nothing")
        return None
    cls = item["class"]
    if not isinstance(cls, str) or cls not in classes:
        where = "" if classes is ALL_CLASSES else " inside TimeDistributed"
        ck.fail(item, "class", f"{field}.class", f"unknown layer class{where}" +
                (schema._suggest(cls, classes) if isinstance(cls, str) else ""),
                "one of " + ", ".join(classes), schema._show(cls))
        return None
    if cls in api.LAYER_ARGS:  # recurrent: schema's own checks, through a one-key holder for the line
        holder = LineDict(layer=item)
        holder.line, holder.key_lines["layer"] = item.line, item.line
        return schema._check_layer(ck, holder, "layer", field)
    return _check_plain(ck, item, field)


def _check_model(ck, raw: LineDict) -> list[dict] | None:
    """The ``model:`` list: each entry, then the rules of a Sequential that carries one tensor."""
    from . import schema  # noqa: PLC0415

    value = raw["model"]
    if not isinstance(value, list) or not value:
        ck.fail(raw, "model", "model", "must be a non-empty list of layers",
                "a list such as [{class: LSTM, units: 8}, {class: Dense, units: 1}]", schema._show(value))
        return None
    before = len(ck.problems)
    layers = [_check_entry(ck, raw, item, f"model[{i}]") for i, item in enumerate(value)]
    if len(ck.problems) > before:
        return None
    for i, (item, spec) in enumerate(zip(value, layers)):
        field = f"model[{i}]"
        inner = spec.get("layer") if spec["class"] == "Bidirectional" else spec
        if spec["class"] == "Embedding" and i:
            ck.fail(item, "class", f"{field}.class", "Embedding must be the first layer (it reads the integer ids)",
                    "Embedding at model[0]", f"Embedding at {field}")
        if spec["class"] in api.LAYER_ARGS:
            node = item["layer"] if spec["class"] == "Bidirectional" else item
            where = f"{field}.layer" if spec["class"] == "Bidirectional" else field
            if inner.get("return_state"):
                ck.fail(node, "return_state", f"{where}.return_state",
                        "is not supported in a model (a Sequential passes one tensor on)", "false", "true")
            if inner.get("stateful"):
                ck.fail(node, "stateful", f"{where}.stateful", "is not supported in a model case", "false", "true")
        if spec["class"] == "Bidirectional" and "merge_mode" in spec and spec["merge_mode"] is None:
            ck.fail(item, "merge_mode", f"{field}.merge_mode",
                    "none returns two tensors; a Sequential passes one on", "one of concat, sum, mul, ave", "none")
    if not any(spec["class"] in api.LAYER_ARGS for spec in layers):
        ck.fail(raw, "model", "model", "needs a recurrent layer", "an LSTM, GRU, SimpleRNN or Bidirectional entry",
                "none")
    return layers if len(ck.problems) == before else None


def _check_model_input(ck, raw: LineDict, first: dict) -> InputSpec | None:
    """``input:`` as for a layer case, or (batch, timesteps) integer ids when Embedding comes first."""
    from . import schema  # noqa: PLC0415

    node = raw["input"]
    if first["class"] != "Embedding":
        if isinstance(node, LineDict) and node.get("data") == "ids":
            ck.fail(node, "data", "input.data", "ids need an Embedding first layer",
                    "one of " + ", ".join(schema.INPUT_DATA), "'ids'")
            return None
        return schema._check_input(ck, raw)
    node = ck.mapping(raw, "input", "input")
    if node is None:
        return None
    if "features" in node:
        ck.fail(node, "features", "input.features",
                "does not apply: an Embedding model reads (batch, timesteps) integer ids", "no features", "features")
        return None
    if not ck.keys(node, ("batch", "timesteps", "data", "values"), "input"):
        return None
    kind = node.get("data", "values" if "values" in node else "ids")
    if kind not in ("ids", "values"):
        ck.fail(node, "data", "input.data", "an Embedding model reads integer ids", "ids or values",
                schema._show(kind))
        return None
    values = None
    if kind == "values" or "values" in node:
        arr = schema._array(node.get("values"))
        dim = first["input_dim"]
        if arr is None or arr.ndim != 2:
            ck.fail(node, "values" if "values" in node else "data", "input.values",
                    "must be a (batch, timesteps) nested list of ids", "a 2-level nested list of integers",
                    f"shape {arr.shape}" if arr is not None else schema._show(node.get("values")))
            return None
        bad = arr[(arr != np.round(arr)) | (arr < 0) | (arr >= dim)]
        if bad.size:
            ck.fail(node, "values", "input.values", "ids must be integers below the Embedding's input_dim",
                    f"integers in [0, {dim})", schema._show(int(bad[0]) if bad[0] == int(bad[0]) else bad[0].item()))
            return None
        values = arr.astype(int).tolist()
    spec = {"batch": len(values) if values else 2, "timesteps": len(values[0]) if values else None}
    for key, minimum in (("batch", 1), ("timesteps", 1)):
        if key in node:
            got = ck.integer(node, key, f"input.{key}", minimum)
            if got is None:
                return None
            if values is not None and got != spec[key]:
                ck.fail(node, "values", "input.values", f"shape does not match input.{key}", f"{key} {got}",
                        f"shape {np.shape(values)}")
                return None
            spec[key] = got
    if spec["timesteps"] is None:
        ck.fail(node, None, "input.timesteps", "is required", "an integer", "nothing")
        return None
    return InputSpec(spec["batch"], spec["timesteps"], 1, "values" if values else "ids", values)


def _check_model_expect(ck, raw: LineDict, n_layers: int, shapes: dict) -> Expect | None:
    from . import schema  # noqa: PLC0415

    node = ck.mapping(raw, "expect", "expect")
    if node is None or not ck.keys(node, MODEL_EXPECT_KEYS, "expect"):
        return None
    params = ck.integer(node, "params", "expect.params", 0) if "params" in node else None
    layer_params = output = None
    values = {}
    if "layer_params" in node:
        got = node["layer_params"]
        if not isinstance(got, list) or len(got) != n_layers or not all(schema._is_int(v) and v >= 0 for v in got):
            ck.fail(node, "layer_params", "expect.layer_params", "must give one count per model layer",
                    f"{n_layers} integers >= 0", schema._show(got))
            return None
        layer_params = tuple(got)
    if "output_shape" in node:
        got = node["output_shape"]
        if not isinstance(got, list) or not got or not all(schema._is_int(v) and v >= 0 for v in got):
            ck.fail(node, "output_shape", "expect.output_shape", "must be a list of sizes, batch first",
                    "a list such as [2, 256]", schema._show(got))
            return None
        output = tuple(got)
    if "values" in node:
        values = schema.check_expected_values(ck, node, shapes)
        if values is None:
            return None
    if "params" in node and params is None:
        return None
    return Expect(params=params, values=values, layer_params=layer_params, output_shape=output)


def case_from_point(ck, raw: LineDict, base_id: str, point: tuple, path: str) -> list[Case]:
    """A case with ``model:`` at one sweep point: validated, one Case per device (schema.py delegates here)."""
    from . import schema  # noqa: PLC0415

    before = len(ck.problems)
    for key in raw:
        if key == "layer":
            ck.fail(raw, key, "layer", "cannot be combined with model (a model case lists its layers under model:)",
                    "layer or model", "both")
        elif key not in MODEL_CASE_KEYS:
            ck.fail(raw, key, str(key), "does not apply to a model case",
                    "one of " + ", ".join(MODEL_CASE_KEYS), schema._show(key))
    if "input" not in raw:
        ck.fail(raw, None, "input", "is required", "a mapping", "nothing")
    layers = _check_model(ck, raw)
    if layers is None or len(ck.problems) > before:
        return []
    inp = _check_model_input(ck, raw, layers[0])
    if inp is None:
        return []
    shape = (inp.timesteps,) if layers[0]["class"] == "Embedding" else (inp.timesteps, inp.features)
    shapes = {}
    for i, (item, spec) in enumerate(zip(raw["model"], layers)):
        try:
            shape = output_shape(spec, shape)
        except ShapeProblem as p:
            ck.fail(item, None, f"model[{i}]", p.problem, p.expected, p.got)
            return []
        shapes[f"model[{i}]"] = (inp.batch,) + shape
    shapes = {"output": (inp.batch,) + shape, **shapes}
    dtype = ck.choice(raw, "dtype", "dtype", MODEL_DTYPES, "dtype for a model case") if "dtype" in raw else "float32"
    devices = raw.get("devices", ["cpu"])
    devices = [devices] if isinstance(devices, str) else devices
    if not isinstance(devices, list) or not devices or any(d not in api.DEVICES for d in devices):
        bad = next((d for d in devices if d not in api.DEVICES), devices) if isinstance(devices, list) else devices
        hint = schema._suggest(bad, api.DEVICES) if isinstance(bad, str) else ""
        ck.fail(raw, "devices", "devices", "unknown device" + hint, "a list from cpu, gpu", schema._show(bad))
    bid = schema.base_id_with_point(base_id, point)
    seed = ck.integer(raw, "seed", "seed", 0) if "seed" in raw else zlib.crc32(bid.encode()) & 0x7FFFFFFF
    expect = _check_model_expect(ck, raw, len(layers), shapes) if "expect" in raw else Expect()
    tolerance = schema._check_tolerance(ck, raw, list(shapes)) if "tolerance" in raw else {}
    requires = schema._check_requires(ck, raw) if "requires" in raw else {}
    about = raw.get("about", "")
    if not isinstance(about, str):
        ck.fail(raw, "about", "about", "must be a string", "a string", schema._show(about))
    if len(ck.problems) > before:
        return []
    # ``layer`` keeps the first recurrent layer, so tools that read one layer (show, the
    # sensitivity hunt) still find one; ``model`` is what runs.
    first_rnn = next(spec for spec in layers if spec["class"] in api.LAYER_ARGS)
    return [Case(id=f"{bid}@{device}", base_id=base_id, path=path, line=raw.line, about=about, layer=first_rnn,
                 input=inp, dtype=dtype, device=device, seed=seed, expect=expect, tolerance=tolerance,
                 requires=requires, sweep_point=point, model=tuple(layers))
            for device in dict.fromkeys(devices)]


# ---------------------------------------------------------------- Keras: build and run the Sequential

@dataclass
class ModelRun:
    """What the real model did: the final output, every layer's output, weights and counts."""

    output: Array
    layer_outputs: list[Array]
    weights: list[dict]
    layer_params: list[int]
    params: int
    device: str = "cpu"
    versions: dict = field(default_factory=dict)


def make_input(case: Case) -> Array:
    """The model input: float data as for a layer case, or integer ids drawn below input_dim."""
    if case.model[0]["class"] != "Embedding":
        return data.make_input(case)
    if case.input.values is not None:
        return np.array(case.input.values, dtype=np.int64)
    return data.rng(case, "input").integers(0, case.model[0]["input_dim"], (case.input.batch, case.input.timesteps))


def _build(keras, spec: Mapping, dtype: str, seed: int):
    """One Keras layer; Dense/Conv1D biases random (as keras_build does for cells) so none can hide."""
    from . import keras_build  # noqa: PLC0415

    cls = spec["class"]
    if cls in api.LAYER_ARGS:
        return keras_build.build_layer(dict(spec), dtype, seed)
    if cls == "TimeDistributed":
        return keras.layers.TimeDistributed(_build(keras, spec["layer"], dtype, seed), dtype=dtype)
    kwargs = {k: v for k, v in spec.items() if k != "class"}
    if cls in ("Dense", "Conv1D") and kwargs.get("use_bias", True):
        kwargs["bias_initializer"] = keras.initializers.RandomUniform(*keras_build.BIAS_RANGE, seed=seed)
    if cls == "Reshape":
        kwargs["target_shape"] = tuple(kwargs["target_shape"])
    return getattr(keras.layers, cls)(dtype=dtype, **kwargs)


def run_keras(case: Case, x: Array) -> ModelRun:
    """Build the Sequential under the case seed, call it eagerly, read every layer back."""
    from . import keras_build as kb  # noqa: PLC0415 - TensorFlow only when a case runs
    from .kernels import NoGPU  # noqa: PLC0415

    keras = kb._keras()
    keras.backend.clear_session()
    if case.device == "gpu" and not kb.gpu_available():
        raise NoGPU(f"gpu case: no GPU visible to Keras ({kb.flavour()})")
    kb.set_tf32(bool(case.tf32))
    keras.utils.set_random_seed(case.seed)
    ids = case.model[0]["class"] == "Embedding"
    feed = "int32" if ids else kb.feed_dtype(case)
    with kb.device_scope(keras, case.device):
        inp = keras.Input(shape=x.shape[1:], dtype="int32" if ids else case.dtype)
        model = keras.Sequential([inp] + [_build(keras, spec, case.dtype, case.seed + i)
                                          for i, spec in enumerate(case.model)])
        # The same layers, every output exposed: per-layer checks without a second set of weights.
        probe = keras.Model(model.inputs[0], [layer.output for layer in model.layers])
        tensor = kb._to_tensor(keras, x, feed)
        final = model(tensor)
        per_layer = probe(tensor)
    per_layer = per_layer if isinstance(per_layer, (list, tuple)) else [per_layer]
    return ModelRun(output=kb._to_numpy(keras, final), layer_outputs=[kb._to_numpy(keras, t) for t in per_layer],
                    weights=[kb.read_weights(layer) for layer in model.layers],
                    layer_params=[layer.count_params() for layer in model.layers], params=model.count_params(),
                    device=kb.tensor_device(final), versions=kb.versions())


# ---------------------------------------------------------------- one model case -> CaseResult

def run_into(case: Case, ref: ModuleType, result, keras_cache: dict | None) -> None:
    """Run a model case and add its checks to ``result`` (runner.run_case turns skips into verdicts)."""
    from . import runner  # noqa: PLC0415
    from .compare import compare  # noqa: PLC0415
    from .runner import Check  # noqa: PLC0415
    from .tolerances import resolve  # noqa: PLC0415

    reason = runner._requirement_unmet(case)
    if reason:
        raise Unsupported(reason)
    x = make_input(case)
    t0 = time.perf_counter()
    run = keras_cache.get(case.id) if keras_cache is not None else None
    if run is None:
        try:
            run = run_keras(case, x)
        except Unsupported:
            raise
        except Exception as exc:  # noqa: BLE001 - a Keras exception is the case's verdict
            run = exc
        if keras_cache is not None:
            keras_cache[case.id] = run
    result.keras_seconds = time.perf_counter() - t0
    if isinstance(run, Unsupported):
        raise run
    if isinstance(run, BaseException):
        result.verdict, result.message = "error", (f"Keras raised {type(run).__name__}: {run}".strip()
                                                   + f"\n  model: {describe_model(case.model)}")
        result.checks.append(Check("error", False, result.message))
        return
    result.device, result.versions = run.device, run.versions
    if run.device != case.device:
        result.checks.append(Check("device", False, f"{case.device} case, but the output tensors are on {run.device}"))

    t0 = time.perf_counter()
    try:
        fed = x if case.model[0]["class"] == "Embedding" else runner.round_to(x, case.dtype)
        expected = run_reference(case.model, fed, run.weights, ref)
    except Exception:  # noqa: BLE001 - a harness bug, reported with its traceback
        result.verdict, result.message = "error", "the reference raised:\n" + traceback.format_exc()
        return
    result.reference_seconds = time.perf_counter() - t0

    actual = {"output": run.output, **{f"model[{i}]": y for i, y in enumerate(run.layer_outputs)}}
    desired = {"output": expected[-1], **{f"model[{i}]": y for i, y in enumerate(expected)}}
    for name, got in actual.items():
        comp = compare(name, got, desired[name], resolve(case, name), "reference", case.dtype)
        result.checks.append(Check(name, comp.passed, comp.problem, comp))
    _check_params(case, run, ref, result)
    exp = case.expect
    if exp.output_shape is not None:
        ok = tuple(exp.output_shape) == run.output.shape == expected[-1].shape
        result.checks.append(Check("expect.output_shape", ok, f"expect.output_shape {list(exp.output_shape)}, "
                                   f"Keras {list(run.output.shape)}, reference {list(expected[-1].shape)}"))
    for name, values in exp.values.items():
        for side, got in (("keras", actual[name]), ("reference", desired[name])):
            comp = compare(name, got, values, resolve(case, name), against="expected values")
            result.checks.append(Check(f"{side} {name} vs expect.values", comp.passed, comp.problem, comp))
    if result.failures:
        result.verdict, result.message = "fail", result.failures[0].detail


def _check_params(case: Case, run: ModelRun, ref: ModuleType, result) -> None:
    """Each layer's count_params() against its formula, the total against model.count_params()."""
    from .runner import Check  # noqa: PLC0415

    shape = (case.input.timesteps,) if case.model[0]["class"] == "Embedding" else (case.input.timesteps,
                                                                                   case.input.features)
    formulas = []
    for i, (spec, got) in enumerate(zip(case.model, run.layer_params)):
        count, formula = param_formula(spec, shape, ref)
        formulas.append(count)
        result.checks.append(Check(f"model[{i}] params", got == count,
                                   f"model[{i}] {spec['class']}: count_params() {got} vs formula {formula} = {count}"))
        shape = output_shape(spec, shape)
    total = sum(formulas)
    ok = run.params == total == sum(run.layer_params)
    result.checks.append(Check("params", ok, f"model.count_params() {run.params} vs the layers' formulas "
                                             f"{' + '.join(map(str, formulas))} = {total}"))
    exp = case.expect
    if exp.params is not None:
        result.checks.append(Check("expect.params", exp.params == run.params == total,
                                   f"expect.params {exp.params}, model.count_params() {run.params}, formula {total}"))
    if exp.layer_params is not None:
        ok = list(exp.layer_params) == list(run.layer_params) == formulas
        result.checks.append(Check("expect.layer_params", ok, f"expect.layer_params {list(exp.layer_params)}, "
                                   f"count_params() {list(run.layer_params)}, formulas {formulas}"))
