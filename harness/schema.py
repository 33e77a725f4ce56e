"""YAML case files -> validated, expanded ``Case`` objects, or a ``CaseSchemaError``.

Every problem names the file, line, case and field:
``cases/x.yaml:12: case 'lstm-basic': layer.units: must be a positive integer (expected ..., got -4)``.
Nothing here imports TensorFlow or Keras.
"""
from __future__ import annotations

import copy
import difflib
import itertools
import json
import math
import re
import zlib
from collections import Counter
from pathlib import Path
from typing import Any
from collections.abc import Iterable

import numpy as np
import yaml

from . import keras_api as api
from . import kernels, reference
from .case import CallsSpec, Case, ErrorSpec, Expect, InputSpec, MaskSpec, MismatchSpec
from .errors import CaseSchemaError, SchemaProblem
from .yaml_lines import LineDict, error_line, load

CASE_KEYS = ("id", "about", "layer", "model", "input", "mask", "mask_via", "initial_state", "weights",
             "dtype", "devices", "seed", "training", "calls", "sweep", "expect", "tolerance",
             "requires")
INPUT_KEYS = ("batch", "timesteps", "features", "data", "values", "scale")
INPUT_DATA = ("normal", "uniform", "one_hot", "arange", "values")
MASK_KEYS = ("kind", "lengths", "rate", "values")
MASK_KINDS = ("right_padded", "left_padded", "random", "explicit")
MASK_VIA = ("argument", "masking_layer")
EXPECT_KEYS = ("params", "values", "error", "mismatch", "kernel", "golden")
REQUIRES_KEYS = ("keras", "backend", "device")
BACKENDS = ("tensorflow", "jax", "torch")
CALLS_KEYS = ("count", "reset_before", "batches")
TOLERANCE_KEYS = ("atol", "rtol")
ID_PATTERN = re.compile(r"^[a-z0-9_-]+$")
# Sections a sweep may reach into, and the keys each one has.
_SECTION_KEYS = {"input": INPUT_KEYS, "mask": MASK_KEYS, "calls": CALLS_KEYS,
                 "requires": REQUIRES_KEYS, "expect": EXPECT_KEYS}


def _show(value: Any) -> str:
    """How a received value is written in a message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        flat = all(v is None or isinstance(v, (bool, int, float, str)) for v in value)
        text = "[" + ", ".join(_show(v) for v in value) + "]"
        return text if flat and len(text) <= 60 else f"a list of {len(value)}"
    if isinstance(value, (int, float)):
        return repr(value)
    return f"{value} (a {type(value).__name__})"


def _format(value: Any) -> str:
    """A sweep value as written in an expanded id."""
    if isinstance(value, bool) or value is None:
        return _show(value)
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(word), [c for c in choices if c], n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _array(value: Any) -> np.ndarray | None:
    """A nested list of numbers as a float array, or None if it is not one."""
    if not isinstance(value, list):
        return None
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return arr if arr.dtype != object else None


class _Checker:
    """Collects problems for one file; each check returns the clean value or None."""

    def __init__(self, path: str):
        self.path = path
        self.case_id: str | None = None
        self.problems: list[SchemaProblem] = []

    def fail(self, node: Any, key: Any, field: str, problem: str,
             expected: str | None = None, got: str | None = None) -> None:
        line = node.line_of(key) if isinstance(node, LineDict) else getattr(node, "line", None)
        self.problems.append(SchemaProblem(self.path, line, self.case_id, field, problem,
                                           expected, got))

    def keys(self, node: LineDict, allowed: Iterable[str], field: str, expected: str | None = None) -> bool:
        ok = True
        allowed = list(allowed)
        for key in node:
            if key not in allowed:
                self.fail(node, key, f"{field}.{key}" if field else str(key),
                          "unknown key" + _suggest(key, allowed),
                          expected or f"one of {', '.join(map(str, allowed))}", _show(key))
                ok = False
        return ok

    def mapping(self, parent: LineDict, key: str, field: str) -> LineDict | None:
        value = parent[key]
        if not isinstance(value, LineDict):
            self.fail(parent, key, field, "must be a mapping", "a mapping", _show(value))
            return None
        return value

    def integer(self, node: LineDict, key: str, field: str, minimum: int) -> int | None:
        value = node[key]
        if not _is_int(value) or value < minimum:
            what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
            self.fail(node, key, field, f"must be {what}", what, _show(value))
            return None
        return value

    def number(self, node: LineDict, key: str, field: str, lo: float | None = None,
               hi: float | None = None) -> float | None:
        value = node[key]
        # NaN compares false with everything, so a NaN tolerance would let any error pass.
        bad = not _is_number(value) or not math.isfinite(value) or (lo is not None and value < lo) \
            or (hi is not None and value > hi)
        if bad:
            if lo is not None and hi is not None:
                what = f"a number in [{lo:g}, {hi:g}]"
            elif lo is not None:
                what = "a finite non-negative number" if lo == 0 else f"a finite number >= {lo:g}"
            else:
                what = "a finite number"
            self.fail(node, key, field, f"must be {what}", what, _show(value))
            return None
        return float(value)

    def boolean(self, node: LineDict, key: str, field: str) -> bool | None:
        value = node[key]
        if not isinstance(value, bool):
            self.fail(node, key, field, "must be true or false", "true or false", _show(value))
            return None
        return value

    def choice(self, node: LineDict, key: str, field: str, choices: Iterable[Any], what: str) -> Any:
        value = node[key]
        choices = list(choices)
        if isinstance(value, bool) or value not in choices:
            shown = ", ".join("none" if c is None else c if isinstance(c, str) else _show(c) for c in choices)
            hint = _suggest(value, map(str, choices)) if isinstance(value, str) else ""
            self.fail(node, key, field, f"unknown {what}" + hint, f"one of {shown}", _show(value))
            return None
        return value

    def string(self, node: LineDict, key: str, field: str) -> str | None:
        value = node[key]
        if not isinstance(value, str):
            self.fail(node, key, field, "must be a string", "a string", _show(value))
            return None
        return value

    def shaped(self, node: LineDict, key: str, field: str, shape: tuple[int, ...],
               what: str) -> np.ndarray | None:
        arr = _array(node[key])
        if arr is None:
            self.fail(node, key, field, f"must be a nested list of numbers ({what})",
                      f"shape {shape}", _show(node[key]))
            return None
        if arr.shape != tuple(shape):
            self.fail(node, key, field, f"shape does not match {what}", f"shape {tuple(shape)}",
                      f"shape {arr.shape}")
            return None
        return arr


# ---------------------------------------------------------------- layer

def _check_activation(ck: _Checker, node: LineDict, key: str, field: str) -> None:
    value = node[key]
    if value is None or (isinstance(value, str) and value in api.ACTIVATIONS):
        return
    hint = _suggest(value, api.ACTIVATIONS) if isinstance(value, str) else ""
    ck.fail(node, key, field, "unknown activation" + hint,
            "an activation name such as tanh, sigmoid, hard_sigmoid, relu, linear", _show(value))


def _check_initializer(ck: _Checker, node: LineDict, key: str, field: str) -> None:
    value = node[key]
    names = list(api.INITIALIZER_NAMES) + list(api.INITIALIZERS)
    if isinstance(value, str):
        if value not in names:
            ck.fail(node, key, field, "unknown initializer" + _suggest(value, names),
                    "an initializer name such as glorot_uniform, orthogonal, zeros", _show(value))
        elif api.INITIALIZER_NAMES.get(value, value) == "Constant":
            # Keras 3's initializers.get("constant") fails (Constant.from_config needs 'value').
            ck.fail(node, key, field, "a constant initializer needs its value",
                    "{class: Constant, value: 0.5}", _show(value))
        return
    if not isinstance(value, LineDict):
        ck.fail(node, key, field, "must be an initializer name or {class: ..., ...}",
                "a string or a mapping", _show(value))
        return
    if "class" not in value:
        ck.fail(value, None, field, "initializer mapping needs 'class'", "class: Constant (or another)", "no class")
        return
    cls = value["class"]
    cls = api.INITIALIZER_NAMES.get(cls, cls) if isinstance(cls, str) else cls
    if not isinstance(cls, str) or cls not in api.INITIALIZERS:
        ck.fail(value, "class", f"{field}.class", "unknown initializer" +
                (_suggest(cls, names) if isinstance(cls, str) else ""),
                "an initializer class such as Constant, RandomUniform", _show(value["class"]))
        return
    if ck.keys(value, ("class",) + api.INITIALIZERS[cls], field):
        for arg in api.INITIALIZERS[cls]:
            if arg in value and arg not in ("mode", "distribution") and value[arg] is not None \
                    and not (_is_number(value[arg]) and math.isfinite(value[arg])):
                ck.fail(value, arg, f"{field}.{arg}", "must be a finite number", "a finite number",
                        _show(value[arg]))


def _check_layer(ck: _Checker, node: LineDict, key: str, field: str, nested: bool = False) -> dict | None:
    layer = ck.mapping(node, key, field)
    if layer is None:
        return None
    if "class" not in layer:
        ck.fail(layer, None, f"{field}.class", "is required", "one of " + ", ".join(api.LAYER_ARGS), "nothing")
        return None
    cls = layer["class"]
    allowed_classes = api.RECURRENT_CLASSES if nested else tuple(api.LAYER_ARGS)
    if cls not in allowed_classes:
        ck.fail(layer, "class", f"{field}.class", "unknown layer class" +
                (_suggest(cls, allowed_classes) if isinstance(cls, str) else ""),
                "one of " + ", ".join(allowed_classes), _show(cls))
        return None
    table = api.LAYER_ARGS[cls]
    ok = ck.keys(layer, ("class",) + tuple(table), field, f"an argument of keras.layers.{cls}")
    for arg, value in layer.items():
        if arg == "class" or arg not in table:
            continue
        kind = table[arg][1]
        f = f"{field}.{arg}"
        if kind == api.UNITS:
            ok &= ck.integer(layer, arg, f, 1) is not None
        elif kind == api.BOOL:
            ok &= ck.boolean(layer, arg, f) is not None
        elif kind == api.RATE:
            ok &= ck.number(layer, arg, f, 0.0, 1.0) is not None
        elif kind == api.ACTIVATION:
            _check_activation(ck, layer, arg, f)
        elif kind == api.INITIALIZER:
            _check_initializer(ck, layer, arg, f)
        elif kind == api.SEED:
            if value is not None and (not _is_int(value) or value < 0):
                ck.fail(layer, arg, f, "must be a non-negative integer or null", "an integer", _show(value))
        elif kind == api.CUDNN:
            if not (value == "auto" or isinstance(value, bool)):
                ck.fail(layer, arg, f, "must be auto, true or false", "auto, true or false", _show(value))
                ok = False
        elif kind == api.MERGE:
            if value == "none":
                layer[arg] = None
            elif ck.choice(layer, arg, f, api.MERGE_MODES, "merge_mode") is None and value is not None:
                ok = False
        elif kind in (api.OPTIONAL_NAME, api.NAME):
            if value is not None and not isinstance(value, str):
                ck.fail(layer, arg, f, "must be a name", "a string", _show(value))
        elif kind == api.LAYER and value is not None:
            ok &= _check_layer(ck, layer, arg, f, nested=True) is not None
    if cls in api.RECURRENT_CLASSES and "units" not in layer:
        ck.fail(layer, None, f"{field}.units", "is required", "a positive integer", "nothing")
        ok = False
    if cls == "Bidirectional" and "layer" not in layer:
        ck.fail(layer, None, f"{field}.layer", "is required", "the wrapped LSTM, GRU or SimpleRNN", "nothing")
        ok = False
    return dict(layer) if ok else None


# ---------------------------------------------------------------- sections

def _check_input(ck: _Checker, case: LineDict) -> InputSpec | None:
    node = ck.mapping(case, "input", "input")
    if node is None or not ck.keys(node, INPUT_KEYS, "input"):
        return None
    values = None
    if "values" in node:
        arr = _array(node["values"])
        if arr is None or arr.ndim != 3:
            ck.fail(node, "values", "input.values", "must be a (batch, timesteps, features) nested list",
                    "a 3-level nested list of numbers",
                    f"shape {arr.shape}" if arr is not None else _show(node["values"]))
            return None
        values = arr
    spec: dict[str, Any] = {}
    for key, minimum in (("batch", 1), ("timesteps", 0), ("features", 1)):
        if key in node:
            got = ck.integer(node, key, f"input.{key}", minimum)
            if got is None:
                return None
            if values is not None and got != values.shape[("batch", "timesteps", "features").index(key)]:
                ck.fail(node, "values", "input.values", f"shape does not match input.{key}",
                        f"{key} {got}", f"shape {values.shape}")
                return None
            spec[key] = got
        elif values is not None:
            spec[key] = values.shape[("batch", "timesteps", "features").index(key)]
        elif key == "batch":
            spec[key] = 2
        else:
            ck.fail(node, None, f"input.{key}", "is required", "an integer", "nothing")
            return None
    data = "values" if values is not None else "normal"
    if "data" in node:
        data = ck.choice(node, "data", "input.data", INPUT_DATA, "input data kind")
        if data is None:
            return None
        if (data == "values") != (values is not None):
            ck.fail(node, "data", "input.data", "'values' goes with an explicit input.values list",
                    "data: values together with values: [...]", _show(data))
            return None
    scale = 1.0
    if "scale" in node:
        scale = ck.number(node, "scale", "input.scale")
        if scale is None:
            return None
    return InputSpec(spec["batch"], spec["timesteps"], spec["features"], data,
                     values.tolist() if values is not None else None, scale)


def _check_mask(ck: _Checker, case: LineDict, inp: InputSpec, via: str) -> MaskSpec | None:
    value = case["mask"]
    shape = (inp.batch, inp.timesteps)
    if isinstance(value, list):
        arr = ck.shaped(case, "mask", "mask", shape, "(batch, timesteps)")
        if arr is None:
            return None
        if not np.isin(arr, (0, 1)).all():
            ck.fail(case, "mask", "mask", "must hold only 0 and 1", "0/1 values",
                    _show(arr[~np.isin(arr, (0, 1))][0].item()))
            return None
        return MaskSpec("explicit", values=arr.astype(int).tolist(), via=via)
    node = ck.mapping(case, "mask", "mask")
    if node is None or not ck.keys(node, MASK_KEYS, "mask"):
        return None
    if "kind" not in node:
        ck.fail(node, None, "mask.kind", "is required", "one of " + ", ".join(MASK_KINDS), "nothing")
        return None
    kind = ck.choice(node, "kind", "mask.kind", MASK_KINDS, "mask kind")
    if kind is None:
        return None
    needs = {"right_padded": "lengths", "left_padded": "lengths", "random": "rate", "explicit": "values"}[kind]
    extra = [k for k in node if k not in ("kind", needs)]
    if extra:
        ck.fail(node, extra[0], f"mask.{extra[0]}", f"does not apply to a {kind} mask",
                f"kind and {needs}", _show(extra[0]))
        return None
    if needs not in node:
        ck.fail(node, None, f"mask.{needs}", f"is required for a {kind} mask", needs, "nothing")
        return None
    if kind == "random":
        rate = ck.number(node, "rate", "mask.rate", 0.0, 1.0)
        return None if rate is None else MaskSpec(kind, rate=rate, via=via)
    if kind == "explicit":
        arr = ck.shaped(node, "values", "mask.values", shape, "(batch, timesteps)")
        return None if arr is None else MaskSpec(kind, values=arr.astype(int).tolist(), via=via)
    lengths = node["lengths"]
    if not isinstance(lengths, list) or len(lengths) != inp.batch or \
            not all(_is_int(n) and 0 <= n <= inp.timesteps for n in lengths):
        ck.fail(node, "lengths", "mask.lengths", "must give one length per batch row, each in [0, timesteps]",
                f"{inp.batch} integers in [0, {inp.timesteps}]", _show(lengths))
        return None
    return MaskSpec(kind, lengths=tuple(lengths), via=via)


def _expects_error(case: LineDict) -> bool:
    """Whether the case expects Keras to raise (then inputs Keras must reject are allowed)."""
    return isinstance(case.get("expect"), dict) and "error" in case["expect"]


def _check_initial_state(ck: _Checker, case: LineDict, layer: dict, inp: InputSpec) -> Any:
    value = case["initial_state"]
    if value in ("zeros", "random") or value is None:
        return value
    units = reference.state_units(api.with_defaults(layer))
    n = len(units)
    # An expect.error case may give counts and shapes Keras must reject; they need only be arrays.
    expects_error = _expects_error(case)
    if not isinstance(value, list) or (len(value) != n and not expects_error):
        names = reference.state_output_names(api.with_defaults(layer))
        ck.fail(case, "initial_state", "initial_state",
                "must be zeros, random, or one (batch, units) list per state",
                f"zeros, random, or {n} arrays ({', '.join(names)})", _show(value))
        return None
    states = []
    for i, state in enumerate(value):
        arr = _array(state)
        if expects_error and arr is not None:
            states.append(arr.tolist())
            continue
        shape = (inp.batch, units[min(i, n - 1)])
        if arr is None or arr.shape != shape:
            ck.fail(case, "initial_state", f"initial_state[{i}]", "shape does not match (batch, units)",
                    f"shape {shape}", f"shape {arr.shape}" if arr is not None else _show(state))
            return None
        states.append(arr.tolist())
    return states


def _check_weights(ck: _Checker, case: LineDict, layer: dict, features: int) -> Any:
    value = case["weights"]
    if value in ("keras", "random"):
        return value
    if not isinstance(value, LineDict):
        ck.fail(case, "weights", "weights", "must be keras, random, or a mapping of weight name to values",
                "keras, random or a mapping", _show(value))
        return None
    shapes = reference.weight_shapes(api.with_defaults(layer), features)
    return _check_weight_map(ck, value, shapes, "weights")


def _check_weight_map(ck: _Checker, node: LineDict, shapes: dict, field: str) -> dict | None:
    if not ck.keys(node, shapes, field):
        return None
    out = {}
    for name, value in node.items():
        f = f"{field}.{name}"
        if isinstance(shapes[name], dict):
            sub = ck.mapping(node, name, f)
            got = None if sub is None else _check_weight_map(ck, sub, shapes[name], f)
            if got is None:
                return None
            out[name] = got
        elif _is_number(value):
            out[name] = float(value)
        else:
            arr = ck.shaped(node, name, f, shapes[name], f"the layer's {name}")
            if arr is None:
                return None
            out[name] = arr.tolist()
    return out


def _check_tolerance(ck: _Checker, case: LineDict, names: list[str]) -> dict | None:
    node = ck.mapping(case, "tolerance", "tolerance")
    if node is None:
        return None
    if set(node) <= set(TOLERANCE_KEYS):
        per_output = {"*": node}
    else:
        if not ck.keys(node, names, "tolerance"):
            return None
        per_output = {}
        for name in node:
            sub = ck.mapping(node, name, f"tolerance.{name}")
            if sub is None or not ck.keys(sub, TOLERANCE_KEYS, f"tolerance.{name}"):
                return None
            per_output[name] = sub
    out = {}
    for name, sub in per_output.items():
        prefix = "tolerance" if name == "*" else f"tolerance.{name}"
        clean = {}
        for key in sub:
            got = ck.number(sub, key, f"{prefix}.{key}", lo=0.0)
            if got is None:
                return None
            clean[key] = got
        out[name] = clean
    return out


def check_expected_values(ck: _Checker, node: LineDict, shapes: dict) -> dict | None:
    """expect.values: output name -> nested list of that output's shape (from an outside source)."""
    vals = ck.mapping(node, "values", "expect.values")
    if vals is None or not ck.keys(vals, shapes, "expect.values"):
        return None
    values = {}
    for name in vals:
        arr = ck.shaped(vals, name, f"expect.values.{name}", shapes[name], f"output '{name}'")
        if arr is None:
            return None
        values[name] = arr.tolist()
    return values


def _check_expect(ck: _Checker, case: LineDict, layer: dict, inp: InputSpec,
                  names: list[str], shapes: dict) -> Expect | None:
    node = ck.mapping(case, "expect", "expect")
    if node is None or not ck.keys(node, EXPECT_KEYS, "expect"):
        return None
    params = None
    if "params" in node:
        params = ck.integer(node, "params", "expect.params", 0)
        if params is None:
            return None
    values = check_expected_values(ck, node, shapes) if "values" in node else {}
    if values is None:
        return None
    error = None
    if "error" in node:
        err = ck.mapping(node, "error", "expect.error")
        if err is None or not ck.keys(err, ("type", "match"), "expect.error"):
            return None
        if "type" not in err:
            ck.fail(err, None, "expect.error.type", "is required", "an exception class name such as ValueError",
                    "nothing")
            return None
        etype = ck.string(err, "type", "expect.error.type")
        match = ck.string(err, "match", "expect.error.match") if "match" in err else ""
        if etype is None or match is None:
            return None
        try:
            re.compile(match)
        except re.error as exc:
            ck.fail(err, "match", "expect.error.match", f"is not a valid regular expression: {exc}",
                    "a regular expression", _show(match))
            return None
        error = ErrorSpec(etype, match)
    mismatch = None
    if "mismatch" in node:
        mm = ck.mapping(node, "mismatch", "expect.mismatch")
        if mm is None or not ck.keys(mm, ("outputs", "reason"), "expect.mismatch"):
            return None
        outs, reason = mm.get("outputs"), mm.get("reason")
        if not isinstance(outs, list) or not outs or not all(o in names for o in outs):
            ck.fail(mm, "outputs", "expect.mismatch.outputs", "must list the outputs that differ",
                    "a list from " + ", ".join(names), _show(outs))
            return None
        if not isinstance(reason, str) or not reason.strip():
            ck.fail(mm, "reason", "expect.mismatch.reason", "must say why Keras differs",
                    "a non-empty string", _show(reason))
            return None
        mismatch = MismatchSpec(tuple(outs), reason)
    if error is not None and (values or mismatch):
        ck.fail(node, "error", "expect.error", "cannot be combined with values or mismatch",
                "error alone", "error with other expectations")
        return None
    kernel = None
    if "kernel" in node:
        kernel = ck.choice(node, "kernel", "expect.kernel", kernels.KERNELS, "kernel")
        if kernel is None:
            return None
        if error is not None:  # a layer that raised ran no kernel
            ck.fail(node, "kernel", "expect.kernel", "cannot be combined with error",
                    "kernel or error", "both")
            return None
    golden = None
    if "golden" in node:
        name = ck.string(node, "golden", "expect.golden")
        if name is None:
            return None
        name, sep, recorded_id = name.partition("::")  # FILE.h5 or FILE.h5::recorded-case-id
        golden = Path(ck.path).parent / name if not Path(name).is_absolute() else Path(name)
        if not golden.is_file():
            ck.fail(node, "golden", "expect.golden", "no such golden file (paths are relative to the case file)",
                    "an HDF5 file written by keras-equiv record", _show(name))
            return None
        if error is not None:
            ck.fail(node, "golden", "expect.golden", "cannot be combined with error", "golden or error", "both")
            return None
        golden = str(golden) + sep + recorded_id
    return Expect(params, values, error, mismatch, kernel, golden=golden)


def _check_requires(ck: _Checker, case: LineDict) -> dict | None:
    node = ck.mapping(case, "requires", "requires")
    if node is None or not ck.keys(node, REQUIRES_KEYS, "requires"):
        return None
    out = {}
    if "keras" in node:
        if node["keras"] not in (2, 3) or isinstance(node["keras"], bool):
            ck.fail(node, "keras", "requires.keras", "unknown Keras major version", "2 or 3", _show(node["keras"]))
            return None
        out["keras"] = node["keras"]
    if "backend" in node:
        backends = node["backend"] if isinstance(node["backend"], list) else [node["backend"]]
        for b in backends:
            if b not in BACKENDS:
                ck.fail(node, "backend", "requires.backend", "unknown backend" + _suggest(str(b), BACKENDS),
                        "tensorflow, jax or torch", _show(b))
                return None
        out["backend"] = tuple(backends)
    if "device" in node:
        dev = ck.choice(node, "device", "requires.device", api.DEVICES, "device")
        if dev is None:
            return None
        out["device"] = dev
    return out


def _check_calls(ck: _Checker, case: LineDict, layer: dict) -> CallsSpec | None:
    node = ck.mapping(case, "calls", "calls")
    if node is None or not ck.keys(node, CALLS_KEYS, "calls"):
        return None
    if "count" not in node:
        ck.fail(node, None, "calls.count", "is required", "a positive integer", "nothing")
        return None
    count = ck.integer(node, "count", "calls.count", 1)
    if count is None:
        return None
    resets = node.get("reset_before", [])
    if not isinstance(resets, list) or not all(_is_int(r) and 2 <= r <= count for r in resets):
        ck.fail(node, "reset_before", "calls.reset_before", "must list call numbers in [2, count]",
                f"integers from 2 to {count}", _show(resets))
        return None
    stateful = layer.get("stateful", False) or layer.get("layer", {}).get("stateful", False)
    if not stateful:
        ck.fail(node, None, "calls", "needs a stateful layer", "layer.stateful: true", "stateful: false")
        return None
    batches = node.get("batches")
    if batches is not None:
        if not isinstance(batches, list) or len(batches) != count or not all(_is_int(b) and b >= 1 for b in batches):
            ck.fail(node, "batches", "calls.batches", "must give one positive batch size per call",
                    f"{count} positive integers", _show(batches))
            return None
        expects_error = _expects_error(case)
        if len(set(batches)) > 1 and not expects_error:
            ck.fail(node, "batches", "calls.batches", "a stateful layer keeps one batch size; "
                    "changing it is only for an expect.error case", "one batch size, or expect.error",
                    _show(batches))
            return None
        batches = tuple(batches)
    return CallsSpec(count, tuple(resets), batches)


def _check_training(ck: _Checker, raw: LineDict, full: dict, inp: InputSpec, mask, calls) -> None:
    """training: true with dropout is checked by recovering the masks (harness/dropout.py): it
    needs one plain layer, no sequence mask, one call, and few enough mask entries to try all."""
    from . import dropout  # noqa: PLC0415

    if full["class"] == "Bidirectional":
        active = dropout.mask_bits(full["layer"], inp.features) or dropout.mask_bits(
            full.get("backward_layer") or full["layer"], inp.features)
    else:
        active = dropout.mask_bits(full, inp.features)
    if not active:
        return  # no dropout to apply: training mode computes what inference does
    if full["class"] == "Bidirectional" or mask is not None or calls is not None:
        what = "Bidirectional" if full["class"] == "Bidirectional" else "a mask" if mask is not None else "calls"
        ck.fail(raw, "training", "training", "training with dropout is checked on a single unmasked "
                "layer call", "no Bidirectional, mask or calls", what)
        return
    if active > dropout.MAX_BITS:
        ck.fail(raw, "training", "training", "too many dropout mask entries per row to try every mask set",
                f"at most {dropout.MAX_BITS} (features or units times masks per gate)", str(active))


# ---------------------------------------------------------------- one case

def _case_from_point(ck: _Checker, raw: LineDict, base_id: str, point: tuple, path: str) -> list[Case]:
    if "model" in raw:  # a whole Sequential: harness/models.py validates the list and builds the Case
        from . import models  # noqa: PLC0415 - models imports this module

        return models.case_from_point(ck, raw, base_id, point, path)
    for key in ("layer", "input"):
        if key not in raw:
            ck.fail(raw, None, key, "is required", "a mapping", "nothing")
            return []
    layer = _check_layer(ck, raw, "layer", "layer")
    inp = _check_input(ck, raw)
    if layer is None or inp is None:
        return []
    full = api.with_defaults(layer)
    n_problems = len(ck.problems)
    names = reference.output_names(full, calls=None)
    shapes = reference.output_shapes(full, inp.batch, inp.timesteps)
    via = raw.get("mask_via", "argument")
    if "mask_via" in raw:
        via = ck.choice(raw, "mask_via", "mask_via", MASK_VIA, "mask_via value")
    mask = _check_mask(ck, raw, inp, via) if "mask" in raw else None
    if "mask_via" in raw and "mask" not in raw:
        ck.fail(raw, "mask_via", "mask_via", "needs a mask", "a mask: entry", "no mask")
    initial_state = _check_initial_state(ck, raw, layer, inp) if "initial_state" in raw else None
    weights = _check_weights(ck, raw, layer, inp.features) if "weights" in raw else "keras"
    dtype = ck.choice(raw, "dtype", "dtype", api.DTYPES, "dtype") if "dtype" in raw else "float32"
    devices = raw.get("devices", ["cpu"])
    if isinstance(devices, str):
        devices = [devices]
    if not isinstance(devices, list) or not devices or any(d not in api.DEVICES for d in devices):
        bad = devices
        if isinstance(devices, list) and devices:
            bad = next((d for d in devices if d not in api.DEVICES), devices)
        hint = _suggest(bad, api.DEVICES) if isinstance(bad, str) else ""
        ck.fail(raw, "devices", "devices", "unknown device" + hint, "a list from cpu, gpu", _show(bad))
        devices = []
    seed = zlib.crc32(base_id_with_point(base_id, point).encode()) & 0x7FFFFFFF
    if "seed" in raw:
        seed = ck.integer(raw, "seed", "seed", 0)
    training = ck.boolean(raw, "training", "training") if "training" in raw else False
    calls = _check_calls(ck, raw, layer) if "calls" in raw else None
    if calls is not None:
        names = reference.output_names(full, calls=calls.count)
        shapes = {n: shapes[n.split(".", 1)[1]] for n in names}
    if training:
        _check_training(ck, raw, full, inp, mask, calls)
    expect = _check_expect(ck, raw, layer, inp, names, shapes) if "expect" in raw else Expect()
    tolerance = _check_tolerance(ck, raw, names) if "tolerance" in raw else {}
    requires = _check_requires(ck, raw) if "requires" in raw else {}
    about = raw.get("about", "")
    if not isinstance(about, str):
        ck.fail(raw, "about", "about", "must be a string", "a string", _show(about))
    if len(ck.problems) > n_problems:
        return []
    bid = base_id_with_point(base_id, point)
    return [Case(id=f"{bid}@{device}", base_id=base_id, path=path, line=raw.line, about=about,
                 layer=layer, input=inp, mask=mask, initial_state=initial_state, weights=weights,
                 dtype=dtype, device=device, seed=seed, training=training, calls=calls,
                 expect=expect, tolerance=tolerance, requires=requires, sweep_point=point)
            for device in dict.fromkeys(devices)]


def base_id_with_point(base_id: str, point: tuple) -> str:
    """``lstm-basic[units=5,return_state=true]``: the id of a sweep point, device left off."""
    if not point:
        return base_id
    lasts = [p.rsplit(".", 1)[-1] for p, _ in point]
    labels = [last if lasts.count(last) == 1 else p for (p, _), last in zip(point, lasts)]
    return base_id + "[" + ",".join(f"{label}={_format(v)}" for label, (_, v) in zip(labels, point)) + "]"


def _sweep_path_ok(raw: LineDict, path: str) -> bool:
    """A sweep path names a field that exists for this case (present or a valid key)."""
    parts = path.split(".")
    if parts[0] not in CASE_KEYS or parts[0] in ("id", "sweep", "about"):
        return False
    node: Any = raw
    for part in parts[:-1]:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    last = parts[-1]
    if len(parts) == 1:
        return True
    if not isinstance(node, dict):
        return False
    if last in node:
        return True
    section = parts[-2]
    if isinstance(node.get("class"), str) and node["class"] in api.LAYER_ARGS:
        return last in api.LAYER_ARGS[node["class"]]
    return last in _SECTION_KEYS.get(section, ())


def _expand(ck: _Checker, raw: LineDict, base_id: str, path: str) -> list[Case]:
    sweep = raw.get("sweep")
    if sweep is None:
        return _case_from_point(ck, raw, base_id, (), path)
    if not isinstance(sweep, LineDict) or not sweep:
        ck.fail(raw, "sweep", "sweep", "must map dotted paths to lists of values",
                "a mapping such as layer.units: [1, 8]", _show(sweep))
        return []
    ok = True
    for key, values in sweep.items():
        if not isinstance(key, str) or not _sweep_path_ok(raw, key):
            ck.fail(sweep, key, f"sweep.{key}", "path does not exist in this case",
                    "a dotted path to a case field, such as layer.units", _show(key))
            ok = False
        elif not isinstance(values, list) or not values:
            ck.fail(sweep, key, f"sweep.{key}", "must be a non-empty list", "a list of values", _show(values))
            ok = False
    if not ok:
        return []
    cases: list[Case] = []
    seen: set[str] = set()
    for combo in itertools.product(*sweep.values()):
        point_raw = copy.deepcopy(raw)
        for key, value in zip(sweep, combo):
            node = point_raw
            parts = key.split(".")
            for part in parts[:-1]:
                node = node[part]
            node[parts[-1]] = copy.deepcopy(value)
            if isinstance(node, LineDict):
                node.key_lines[parts[-1]] = sweep.line_of(key)
        before = len(ck.problems)
        cases += _case_from_point(ck, point_raw, base_id, tuple(zip(sweep, combo)), path)
        # The same problem at every sweep point is reported once.
        fresh = []
        for p in ck.problems[before:]:
            if str(p) not in seen:
                seen.add(str(p))
                fresh.append(p)
        ck.problems[before:] = fresh
    # Values that print alike (4 and 4, 'true' and true) would give two cases one id.
    twice = [cid for cid, n in Counter(c.id for c in cases).items() if n > 1]
    if twice:
        ck.fail(raw, "sweep", "sweep", "two sweep points get the same id",
                "values that differ as written", repr(twice[0]))
        return []
    return cases


# ---------------------------------------------------------------- files

def load_file(path: str | Path, display: str | None = None) -> list[Case]:
    """Validate one case file and expand it; raises CaseSchemaError listing every problem."""
    shown = display or str(path)
    ck = _Checker(shown)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CaseSchemaError([SchemaProblem(shown, None, None, None, f"cannot read file: {exc}")]) from None
    try:
        doc = load(text)
    except yaml.YAMLError as exc:
        problem = _yaml_problem(exc)
        raise CaseSchemaError([SchemaProblem(shown, error_line(exc), None, None,
                                             f"invalid YAML: {problem}")]) from None
    if doc is None:
        raise CaseSchemaError([SchemaProblem(shown, None, None, None, "file is empty",
                                             "a mapping with a 'cases:' list", "nothing")])
    if not isinstance(doc, LineDict):
        raise CaseSchemaError([SchemaProblem(shown, 1, None, None, "top level must be a mapping",
                                             "a mapping with a 'cases:' list", _show(doc))])
    if not ck.keys(doc, ("cases",), "") or "cases" not in doc:
        if "cases" not in doc:
            ck.fail(doc, None, "cases", "is required", "a list of cases", "nothing")
        raise CaseSchemaError(ck.problems)
    raw_cases = doc["cases"]
    if not isinstance(raw_cases, list) or not raw_cases:
        ck.fail(doc, "cases", "cases", "must be a non-empty list", "a list of cases", _show(raw_cases))
        raise CaseSchemaError(ck.problems)
    cases: list[Case] = []
    ids: dict[str, int] = {}
    for index, raw in enumerate(raw_cases):
        ck.case_id = None
        if not isinstance(raw, LineDict):
            ck.fail(doc, "cases", f"cases[{index}]", "must be a mapping", "a mapping", _show(raw))
            continue
        cid = raw.get("id")
        if not isinstance(cid, str) or not ID_PATTERN.match(cid):
            ck.fail(raw, "id" if "id" in raw else None, f"cases[{index}].id",
                    "may hold only a-z, 0-9, '_' and '-'" if "id" in raw else "is required",
                    "an id like lstm-basic", _show(cid) if "id" in raw else "nothing")
            continue
        ck.case_id = cid
        if cid in ids:
            ck.fail(raw, "id", "id", f"duplicate id (first defined at line {ids[cid]})",
                    "an id unique across all case files", _show(cid))
            continue
        ids[cid] = raw.line_of("id")
        if not ck.keys(raw, CASE_KEYS, ""):
            continue
        cases += _expand(ck, raw, cid, shown)
    if ck.problems:
        raise CaseSchemaError(ck.problems)
    return cases


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's complaint, said for a case-file author."""
    problem = str(getattr(exc, "problem", None) or exc).strip()
    tag = re.search(r"constructor for the tag '([^']*)'", problem)
    if tag:
        # Only plain YAML is read; a tag like !!python/object/apply is never executed.
        name = tag.group(1).replace("tag:yaml.org,2002:", "!!", 1)
        return f"tag '{name}' is not allowed (only plain YAML: mappings, lists, strings, numbers)"
    context, cmark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    pmark = getattr(exc, "problem_mark", None)
    if context and cmark is not None and (pmark is None or cmark.line != pmark.line):
        problem += f" ({context} that starts at line {cmark.line + 1})"
    return problem


def find_case_files(paths: Iterable[str | Path]) -> list[Path]:
    """Every .yaml/.yml file under the given files or directories, sorted."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found += sorted(q for q in p.rglob("*") if q.suffix in (".yaml", ".yml") and q.is_file())
        else:
            found.append(p)
    return found


def load_files(files: Iterable[str | Path]) -> list[Case]:
    """Load many files; problems from all of them, duplicate ids across files included."""
    problems: list[SchemaProblem] = []
    cases: list[Case] = []
    first: dict[str, Case] = {}
    # The same file named twice (cases/x.yaml and ./cases/x.yaml) is loaded once.
    unique = {Path(f).resolve(): f for f in reversed(list(files))}
    for f in reversed(list(unique.values())):
        try:
            loaded = load_file(f)
        except CaseSchemaError as exc:
            problems += exc.problems
            continue
        for case in loaded:
            other = first.get(case.base_id)
            if other is not None and other.path != case.path:
                problems.append(SchemaProblem(case.path, case.line, case.base_id, "id",
                                              f"duplicate id (first defined at {other.path}:{other.line})",
                                              "an id unique across all case files", _show(case.base_id)))
                continue
            first.setdefault(case.base_id, case)
            cases.append(case)
    if problems:
        raise CaseSchemaError(list(dict.fromkeys(problems)))
    return cases
