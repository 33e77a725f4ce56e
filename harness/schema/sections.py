"""What a case feeds the layer: ``input`` (float data, or integer ids for an Embedding model),
``mask``, ``initial_state``, ``weights``, stateful ``calls``, and ``training`` with dropout."""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import keras_api as api
from .. import layers
from ..case import CallsSpec, InputSpec, MaskSpec
from ..yaml_lines import LineDict
from .keys import (CALLS_KEYS, EMBEDDING_DATA, EMBEDDING_INPUT_AXES, EMBEDDING_INPUT_KEYS, INITIAL_STATES,
                   INPUT_AXES, INPUT_DATA, INPUT_DEFAULTS, INPUT_KEYS, MASK_KEYS, MASK_KIND_KEYS, MASK_KINDS,
                   WEIGHT_SOURCES)
from .limits import check_input_size
from .messages import Checker, as_array, got_array, is_int, is_number, show

_AXES = tuple(INPUT_AXES)


def expects_error(case: LineDict) -> bool:
    """Whether the case expects Keras to raise (then inputs Keras must reject are allowed)."""
    return isinstance(case.get("expect"), dict) and "error" in case["expect"]


def check_input(ck: Checker, case: LineDict) -> InputSpec | None:
    node = ck.mapping(case, "input", "input")
    if node is None or not ck.keys(node, INPUT_KEYS, "input"):
        return None
    values = None
    if "values" in node:
        arr = as_array(node["values"])
        if arr is None or arr.ndim != 3:
            ck.fail(node, "values", "input.values", "must be a (batch, timesteps, features) nested list",
                    "a 3-level nested list of numbers",
                    f"shape {arr.shape}" if arr is not None else show(node["values"]))
            return None
        values = arr
    spec: dict[str, Any] = {}
    for key, minimum in INPUT_AXES.items():
        if key in node:
            got = ck.integer(node, key, f"input.{key}", minimum)
            if got is None:
                return None
            if values is not None and got != values.shape[_AXES.index(key)]:
                ck.fail(node, "values", "input.values", f"shape does not match input.{key}",
                        f"{key} {got}", f"shape {values.shape}")
                return None
            spec[key] = got
        elif values is not None:
            spec[key] = values.shape[_AXES.index(key)]
        elif key in INPUT_DEFAULTS:
            spec[key] = INPUT_DEFAULTS[key]
        else:
            ck.fail(node, None, f"input.{key}", "is required", "an integer", "nothing")
            return None
    if not check_input_size(ck, node, spec["batch"], spec["timesteps"], spec["features"]):
        return None
    data = "values" if values is not None else INPUT_DEFAULTS["data"]
    if "data" in node:
        data = ck.choice(node, "data", "input.data", INPUT_DATA, "input data kind")
        if data is None:
            return None
        if (data == "values") != (values is not None):
            ck.fail(node, "data", "input.data", "'values' goes with an explicit input.values list",
                    "data: values together with values: [...]", show(data))
            return None
    scale = INPUT_DEFAULTS["scale"]
    if "scale" in node:
        scale = ck.number(node, "scale", "input.scale")
        if scale is None:
            return None
    return InputSpec(spec["batch"], spec["timesteps"], spec["features"], data,
                     values.tolist() if values is not None else None, scale)


def check_model_input(ck: Checker, raw: LineDict, first: dict) -> InputSpec | None:
    """``input:`` of a model case: as for a layer case, or (batch, timesteps) integer ids when
    the model's ``first`` layer is an Embedding."""
    node = raw["input"]
    if first["class"] != "Embedding":
        if isinstance(node, LineDict) and node.get("data") == "ids":
            ck.fail(node, "data", "input.data", "ids need an Embedding first layer",
                    "one of " + ", ".join(INPUT_DATA), "'ids'")
            return None
        return check_input(ck, raw)
    node = ck.mapping(raw, "input", "input")
    if node is None:
        return None
    if "features" in node:
        ck.fail(node, "features", "input.features",
                "does not apply: an Embedding model reads (batch, timesteps) integer ids", "no features", "features")
        return None
    if not ck.keys(node, EMBEDDING_INPUT_KEYS, "input"):
        return None
    kind = node.get("data", "values" if "values" in node else "ids")
    if kind not in EMBEDDING_DATA:
        ck.fail(node, "data", "input.data", "an Embedding model reads integer ids", "ids or values", show(kind))
        return None
    values = None
    if kind == "values" or "values" in node:
        arr = as_array(node.get("values"))
        dim = first["input_dim"]
        if arr is None or arr.ndim != 2:
            ck.fail(node, "values" if "values" in node else "data", "input.values",
                    "must be a (batch, timesteps) nested list of ids", "a 2-level nested list of integers",
                    f"shape {arr.shape}" if arr is not None else show(node.get("values")))
            return None
        bad = arr[(arr != np.round(arr)) | (arr < 0) | (arr >= dim)]
        if bad.size:
            ck.fail(node, "values", "input.values", "ids must be integers below the Embedding's input_dim",
                    f"integers in [0, {dim})", show(int(bad[0]) if bad[0] == int(bad[0]) else bad[0].item()))
            return None
        values = arr.astype(int).tolist()
    spec = {"batch": len(values) if values else INPUT_DEFAULTS["batch"],
            "timesteps": len(values[0]) if values else None}
    for key, minimum in EMBEDDING_INPUT_AXES.items():
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
    if not check_input_size(ck, node, spec["batch"], spec["timesteps"], None):
        return None
    return InputSpec(spec["batch"], spec["timesteps"], 1, "values" if values else "ids", values)


def check_mask(ck: Checker, case: LineDict, inp: InputSpec, via: str) -> MaskSpec | None:
    value = case["mask"]
    shape = (inp.batch, inp.timesteps)
    if isinstance(value, list):
        arr = ck.shaped(case, "mask", "mask", shape, "(batch, timesteps)")
        if arr is None:
            return None
        if not np.isin(arr, (0, 1)).all():
            ck.fail(case, "mask", "mask", "must hold only 0 and 1", "0/1 values",
                    show(arr[~np.isin(arr, (0, 1))][0].item()))
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
    needs = MASK_KIND_KEYS[kind]
    extra = [k for k in node if k not in ("kind", needs)]
    if extra:
        ck.fail(node, extra[0], f"mask.{extra[0]}", f"does not apply to a {kind} mask",
                f"kind and {needs}", show(extra[0]))
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
            not all(is_int(n) and 0 <= n <= inp.timesteps for n in lengths):
        ck.fail(node, "lengths", "mask.lengths", "must give one length per batch row, each in [0, timesteps]",
                f"{inp.batch} integers in [0, {inp.timesteps}]", show(lengths))
        return None
    return MaskSpec(kind, lengths=tuple(lengths), via=via)


def check_initial_state(ck: Checker, case: LineDict, layer: dict, inp: InputSpec) -> Any:
    value = case["initial_state"]
    full = api.with_defaults(layer)
    if value is not None and layers.is_bidirectional(full) and not expects_error(case):
        # Keras 3.15 Bidirectional.call cuts initial_state at len // 2 (tf_keras too, and refuses
        # an odd count): directions with unequal state counts cannot receive one.
        fw, bw = (len(layers.state_names(c["class"])) for c in layers.cells(full))
        if fw != bw:
            ck.fail(case, "initial_state", "initial_state",
                    "cannot be given to this Bidirectional: Keras splits initial_state in half between "
                    f"the directions, and the forward layer has {fw} states, the backward layer {bw}",
                    "no initial_state, or an expect.error case (cases/errors/bidirectional.yaml)", show(value))
            return None
    if value in INITIAL_STATES or value is None:
        return value
    units = layers.state_units(full)
    n = len(units)
    # An expect.error case may give counts and shapes Keras must reject; they need only be arrays.
    error_case = expects_error(case)
    if not isinstance(value, list) or (len(value) != n and not error_case):
        names = layers.state_output_names(full)
        ck.fail(case, "initial_state", "initial_state",
                "must be zeros, random, or one (batch, units) list per state",
                f"zeros, random, or {n} arrays ({', '.join(names)})", show(value))
        return None
    states = []
    for i, state in enumerate(value):
        arr = as_array(state)
        if error_case and arr is not None:
            states.append(arr.tolist())
            continue
        shape = (inp.batch, units[min(i, n - 1)])
        if arr is None or arr.shape != shape:
            ck.fail(case, "initial_state", f"initial_state[{i}]", "shape does not match (batch, units)",
                    f"shape {shape}", f"shape {arr.shape}" if arr is not None else got_array(state))
            return None
        states.append(arr.tolist())
    return states


def check_weights(ck: Checker, case: LineDict, layer: dict, features: int) -> Any:
    value = case["weights"]
    if value in WEIGHT_SOURCES:
        return value
    if not isinstance(value, LineDict):
        ck.fail(case, "weights", "weights", "must be keras, random, or a mapping of weight name to values",
                "keras, random or a mapping", show(value))
        return None
    shapes = layers.weight_shapes(api.with_defaults(layer), features)
    return check_weight_map(ck, value, shapes, "weights")


def check_weight_map(ck: Checker, node: LineDict, shapes: dict, field: str) -> dict | None:
    """Weight name -> nested list of its shape, or one number for the whole array."""
    if not ck.keys(node, shapes, field):
        return None
    out = {}
    for name, value in node.items():
        f = f"{field}.{name}"
        if isinstance(shapes[name], dict):
            sub = ck.mapping(node, name, f)
            got = None if sub is None else check_weight_map(ck, sub, shapes[name], f)
            if got is None:
                return None
            out[name] = got
        elif is_number(value):
            out[name] = float(value)
        else:
            arr = ck.shaped(node, name, f, shapes[name], f"the layer's {name}")
            if arr is None:
                return None
            out[name] = arr.tolist()
    return out


def check_calls(ck: Checker, case: LineDict, layer: dict) -> CallsSpec | None:
    node = ck.mapping(case, "calls", "calls")
    if node is None or not ck.keys(node, CALLS_KEYS, "calls"):
        return None
    if "count" not in node:
        ck.fail(node, None, "calls.count", "is required", "a positive integer", "nothing")
        return None
    count = ck.integer(node, "count", "calls.count", 1)
    if count is None:
        return None
    if count > ck.limits["calls"]:
        ck.over_limit(node, "count", "calls.count", "is over the limit", "calls", show(count))
        return None
    resets = node.get("reset_before", [])
    if not isinstance(resets, list) or not all(is_int(r) and 2 <= r <= count for r in resets):
        ck.fail(node, "reset_before", "calls.reset_before", "must list call numbers in [2, count]",
                f"integers from 2 to {count}", show(resets))
        return None
    stateful = layer.get("stateful", False) or layer.get("layer", {}).get("stateful", False)
    if not stateful:
        ck.fail(node, None, "calls", "needs a stateful layer", "layer.stateful: true", "stateful: false")
        return None
    batches = node.get("batches")
    if batches is not None:
        if not isinstance(batches, list) or len(batches) != count or not all(is_int(b) and b >= 1 for b in batches):
            ck.fail(node, "batches", "calls.batches", "must give one positive batch size per call",
                    f"{count} positive integers", show(batches))
            return None
        if len(set(batches)) > 1 and not expects_error(case):
            ck.fail(node, "batches", "calls.batches", "a stateful layer keeps one batch size; "
                    "changing it is only for an expect.error case", "one batch size, or expect.error",
                    show(batches))
            return None
        batches = tuple(batches)
    return CallsSpec(count, tuple(resets), batches)


def check_training(ck: Checker, raw: LineDict, full: dict, inp: InputSpec, mask: MaskSpec | None,
                   calls: CallsSpec | None) -> None:
    """training: true with dropout is checked by recovering the masks (harness/reference/dropout.py):
    it needs one plain layer, no sequence mask, one call, and few enough mask entries to try all."""
    active = layers.dropout_bits(full, inp.features)
    if not active:
        return  # no dropout to apply: training mode computes what inference does
    if full["class"] == "Bidirectional" or mask is not None or calls is not None:
        what = "Bidirectional" if full["class"] == "Bidirectional" else "a mask" if mask is not None else "calls"
        ck.fail(raw, "training", "training", "training with dropout is checked on a single unmasked "
                "layer call", "no Bidirectional, mask or calls", what)
        return
    if active > layers.DROPOUT_FIT_MAX_BITS:
        ck.fail(raw, "training", "training", "too many dropout mask entries per row to try every mask set",
                f"at most {layers.DROPOUT_FIT_MAX_BITS} (features or units times masks per gate)", str(active))
