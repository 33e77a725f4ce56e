"""What must hold besides Keras == reference (``expect``, for a layer case and a model case),
how close is close (``tolerance``), and where a case can run (``requires``).

Outputs are ``OutputKey``s; a case file writes them as strings (``output``, ``call2.h``), which
are looked up in ``{str(key): key}`` of the outputs the case has."""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from .. import keras_api as api
from .. import kernels
from ..case import ErrorSpec, Expect, GoldenRef, MismatchSpec, OutputKey
from ..yaml_lines import LineDict
from .keys import (BACKENDS, ERROR_KEYS, EXPECT_KEYS, KERAS_MAJORS, MISMATCH_KEYS, MODEL_EXPECT_KEYS, REQUIRES_KEYS,
                   TOLERANCE_KEYS)
from .messages import Checker, is_int, show, suggest

Shapes = Mapping[OutputKey, tuple[int, ...]]
# An atol or rtol above this passes nearly anything: the case must say why (tolerance.reason).
LOOSE_TOLERANCE = 1.0


def by_name(keys: Iterable[OutputKey]) -> dict[str, OutputKey]:
    """Each output as a case file writes it."""
    return {str(k): k for k in keys}


def check_expected_values(ck: Checker, node: LineDict, shapes: Shapes) -> dict[OutputKey, list] | None:
    """expect.values: output name -> nested list of that output's shape (from an outside source)."""
    vals = ck.mapping(node, "values", "expect.values")
    names = by_name(shapes)
    if vals is None or not ck.keys(vals, names, "expect.values"):
        return None
    values = {}
    for name in vals:
        key = names[name]
        arr = ck.shaped(vals, name, f"expect.values.{name}", shapes[key], f"output '{name}'")
        if arr is None:
            return None
        values[key] = arr.tolist()
    return values


def check_expect(ck: Checker, case: LineDict, shapes: Shapes) -> Expect | None:
    """``expect:`` of a layer case; ``shapes`` are its outputs."""
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
        if err is None or not ck.keys(err, ERROR_KEYS, "expect.error"):
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
                    "a regular expression", show(match))
            return None
        error = ErrorSpec(etype, match)
    mismatch = None
    if "mismatch" in node:
        mm = ck.mapping(node, "mismatch", "expect.mismatch")
        if mm is None or not ck.keys(mm, MISMATCH_KEYS, "expect.mismatch"):
            return None
        names = by_name(shapes)
        outs, reason = mm.get("outputs"), mm.get("reason")
        if not isinstance(outs, list) or not outs or not all(isinstance(o, str) and o in names for o in outs):
            ck.fail(mm, "outputs", "expect.mismatch.outputs", "must list the outputs that differ",
                    "a list from " + ", ".join(names), show(outs))
            return None
        if not isinstance(reason, str) or not reason.strip():
            ck.fail(mm, "reason", "expect.mismatch.reason", "must say why Keras differs",
                    "a non-empty string", show(reason))
            return None
        mismatch = MismatchSpec(tuple(names[o] for o in outs), reason)
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
        written = ck.string(node, "golden", "expect.golden")
        if written is None:
            return None
        name, _, recorded_id = written.partition("::")  # FILE.h5 or FILE.h5::recorded-case-id
        path = ck.folder / name  # an absolute name stays itself
        if not path.is_file():
            ck.fail(node, "golden", "expect.golden", "no such golden file (paths are relative to the case file)",
                    "an HDF5 file written by keras-equiv record", show(name))
            return None
        if error is not None:
            ck.fail(node, "golden", "expect.golden", "cannot be combined with error", "golden or error", "both")
            return None
        golden = GoldenRef(str(path), recorded_id or None)
    gradients = False
    if "gradients" in node:
        gradients = ck.boolean(node, "gradients", "expect.gradients")
        if gradients is None:
            return None
        problem = gradients and _no_gradients(case, error)
        if problem:
            ck.fail(node, "gradients", "expect.gradients", f"{GRADIENTS_NEED}, got {problem}")
            return None
    return Expect(params, values, error, mismatch, kernel, golden=golden, gradients=gradients)


# What a gradient case needs: the NumPy backward pass is float64 and deterministic (no dropout masks).
GRADIENT_DTYPES = ("float32", "float64")
GRADIENTS_NEED = "needs a float32 or float64 inference call that Keras runs"


def _no_gradients(case: LineDict, error: ErrorSpec | None) -> str:
    """What in the case rules out a gradient check ("" when nothing does)."""
    if error is not None:
        return "an expected error"
    dtype = case.get("dtype", "float32")
    if isinstance(dtype, str) and dtype not in GRADIENT_DTYPES:
        return f"dtype {dtype}"
    if case.get("training") is True:
        return "training: true"
    layer = case.get("layer")
    if isinstance(layer, Mapping) and layer.get("time_major") is True:
        return "time_major: true"
    return ""


def check_model_expect(ck: Checker, raw: LineDict, n_layers: int, shapes: Shapes) -> Expect | None:
    """``expect:`` of a model case: counts, the final shape, values of any layer's output."""
    node = ck.mapping(raw, "expect", "expect")
    if node is None or not ck.keys(node, MODEL_EXPECT_KEYS, "expect"):
        return None
    params = ck.integer(node, "params", "expect.params", 0) if "params" in node else None
    layer_params = output = None
    values = {}
    if "layer_params" in node:
        got = node["layer_params"]
        if not isinstance(got, list) or len(got) != n_layers or not all(is_int(v) and v >= 0 for v in got):
            ck.fail(node, "layer_params", "expect.layer_params", "must give one count per model layer",
                    f"{n_layers} integers >= 0", show(got))
            return None
        layer_params = tuple(got)
    if "output_shape" in node:
        got = node["output_shape"]
        if not isinstance(got, list) or not got or not all(is_int(v) and v >= 0 for v in got):
            ck.fail(node, "output_shape", "expect.output_shape", "must be a list of sizes, batch first",
                    "a list such as [2, 256]", show(got))
            return None
        output = tuple(got)
    if "values" in node:
        values = check_expected_values(ck, node, shapes)
        if values is None:
            return None
    if "params" in node and params is None:
        return None
    return Expect(params=params, values=values, layer_params=layer_params, output_shape=output)


def check_tolerance(ck: Checker, case: LineDict, keys: Iterable[OutputKey]) -> dict | None:
    """``{atol, rtol}`` for every output (key ``"*"``), or per output name; one above
    ``LOOSE_TOLERANCE`` needs a ``reason`` beside it (kept in the dict, as ``"reason"``)."""
    node = ck.mapping(case, "tolerance", "tolerance")
    if node is None:
        return None
    names = by_name(keys)
    if set(node) <= set(TOLERANCE_KEYS):
        per_output = {"*": ("tolerance", node)}
    else:
        if not ck.keys(node, names, "tolerance"):
            return None
        per_output = {}
        for name in node:
            sub = ck.mapping(node, name, f"tolerance.{name}")
            if sub is None or not ck.keys(sub, TOLERANCE_KEYS, f"tolerance.{name}"):
                return None
            per_output[names[name]] = (f"tolerance.{name}", sub)
    out = {}
    for key, (prefix, sub) in per_output.items():
        clean: dict = {}
        for arg in sub:
            if arg == "reason":
                reason = sub[arg]
                if not isinstance(reason, str) or not reason.strip():
                    ck.fail(sub, arg, f"{prefix}.reason", "must say why the tolerance is loose", "a non-empty string",
                            show(reason))
                    return None
                clean[arg] = reason
                continue
            got = ck.number(sub, arg, f"{prefix}.{arg}", lo=0.0)
            if got is None:
                return None
            clean[arg] = got
        loose = [arg for arg in ("atol", "rtol") if clean.get(arg, 0.0) > LOOSE_TOLERANCE]
        if loose and "reason" not in clean:
            ck.fail(sub, loose[0], f"{prefix}.{loose[0]}", f"is above {LOOSE_TOLERANCE:g}, which needs a reason",
                    f"{prefix}.reason saying why", show(sub[loose[0]]))
            return None
        out[key] = clean
    return out


def _specifier(text: str) -> bool:
    try:
        SpecifierSet(text)
    except InvalidSpecifier:
        return False
    return any(op in text for op in "<>=!~")


def check_requires(ck: Checker, case: LineDict) -> dict | None:
    node = ck.mapping(case, "requires", "requires")
    if node is None or not ck.keys(node, REQUIRES_KEYS, "requires"):
        return None
    out = {}
    if "keras" in node:
        wanted = node["keras"]
        if isinstance(wanted, str) and _specifier(wanted):  # a release range: ">=3.2", ">=3.0,<3.5"
            out["keras"] = wanted
        elif wanted not in KERAS_MAJORS or isinstance(wanted, bool):
            ck.fail(node, "keras", "requires.keras", "unknown Keras major version",
                    "2 or 3, or a version specifier such as '>=3.2'", show(wanted))
            return None
        else:
            out["keras"] = wanted
    if "backend" in node:
        backends = node["backend"] if isinstance(node["backend"], list) else [node["backend"]]
        for b in backends:
            if b not in BACKENDS:
                ck.fail(node, "backend", "requires.backend", "unknown backend" + suggest(str(b), BACKENDS),
                        "tensorflow, jax or torch", show(b))
                return None
        out["backend"] = tuple(backends)
    if "device" in node:
        dev = ck.choice(node, "device", "requires.device", api.DEVICES, "device")
        if dev is None:
            return None
        out["device"] = dev
    return out
