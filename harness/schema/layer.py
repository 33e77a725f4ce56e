"""``layer:`` (one recurrent layer, its activations and initializers) and ``model:`` (a list of
layers applied like ``keras.Sequential``): each entry as a plain validated dict."""
from __future__ import annotations

import math
from typing import Any

from .. import keras_api as api
from .. import model_layers as ml
from ..yaml_lines import LineDict
from .messages import Checker, is_int, is_number, show, suggest


# What a missing required argument should be, by its kind.
_REQUIRED_WHAT = {api.UNITS: "a positive integer", api.LAYER: "the wrapped LSTM, GRU or SimpleRNN"}


def check_activation(ck: Checker, node: LineDict, key: str, field: str) -> None:
    value = node[key]
    if value is None or (isinstance(value, str) and value in api.ACTIVATIONS):
        return
    hint = suggest(value, api.ACTIVATIONS) if isinstance(value, str) else ""
    ck.fail(node, key, field, "unknown activation" + hint,
            "an activation name such as tanh, sigmoid, hard_sigmoid, relu, linear", show(value))


def check_initializer(ck: Checker, node: LineDict, key: str, field: str) -> None:
    value = node[key]
    names = list(api.INITIALIZER_NAMES) + list(api.INITIALIZERS)
    if isinstance(value, str):
        if value not in names:
            ck.fail(node, key, field, "unknown initializer" + suggest(value, names),
                    "an initializer name such as glorot_uniform, orthogonal, zeros", show(value))
        elif api.INITIALIZER_NAMES.get(value, value) in api.CONFIG_ONLY_INITIALIZERS:
            ck.fail(node, key, field, "a constant initializer needs its value",
                    "{class: Constant, value: 0.5}", show(value))
        return
    if not isinstance(value, LineDict):
        ck.fail(node, key, field, "must be an initializer name or {class: ..., ...}",
                "a string or a mapping", show(value))
        return
    if "class" not in value:
        ck.fail(value, None, field, "initializer mapping needs 'class'", "class: Constant (or another)", "no class")
        return
    cls = value["class"]
    cls = api.INITIALIZER_NAMES.get(cls, cls) if isinstance(cls, str) else cls
    if not isinstance(cls, str) or cls not in api.INITIALIZERS:
        ck.fail(value, "class", f"{field}.class", "unknown initializer" +
                (suggest(cls, names) if isinstance(cls, str) else ""),
                "an initializer class such as Constant, RandomUniform", show(value["class"]))
        return
    if ck.keys(value, ("class",) + api.INITIALIZERS[cls], field):
        for arg in api.INITIALIZERS[cls]:
            if arg in value and arg not in api.INITIALIZER_WORDS and value[arg] is not None \
                    and not (is_number(value[arg]) and math.isfinite(value[arg])):
                ck.must_be(value, arg, f"{field}.{arg}", "a finite number", value[arg])


def check_layer(ck: Checker, node: LineDict, key: str, field: str, nested: bool = False) -> dict | None:
    """``node[key]``: a recurrent layer (``nested``: one a Bidirectional wraps)."""
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
                (suggest(cls, allowed_classes) if isinstance(cls, str) else ""),
                "one of " + ", ".join(allowed_classes), show(cls))
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
            check_activation(ck, layer, arg, f)
        elif kind == api.INITIALIZER:
            check_initializer(ck, layer, arg, f)
        elif kind == api.SEED:
            if value is not None and (not is_int(value) or value < 0):
                ck.must_be(layer, arg, f, "a non-negative integer or null", value, "number")
        elif kind == api.CUDNN:
            if not (isinstance(value, bool) or (isinstance(value, str) and value in api.USE_CUDNN)):
                ck.must_be(layer, arg, f, "auto, true or false", value, "bool")
                ok = False
        elif kind == api.IMPLEMENTATION:
            ok &= ck.choice(layer, arg, f, api.IMPLEMENTATIONS, "implementation") is not None
        elif kind == api.MERGE:
            if isinstance(value, str) and value in api.MERGE_MODE_WORDS:
                layer[arg] = api.MERGE_MODE_WORDS[value]
            elif ck.choice(layer, arg, f, api.MERGE_MODES, "merge_mode") is None and value is not None:
                ok = False
        elif kind in (api.OPTIONAL_NAME, api.NAME):
            if value is not None and not isinstance(value, str):
                ck.fail(layer, arg, f, "must be a name", "a string", show(value))
        elif kind == api.LAYER and value is not None:
            ok &= check_layer(ck, layer, arg, f, nested=True) is not None
    for arg in api.REQUIRED_ARGS[cls]:
        # layer: null is no layer either (units: null was refused above, as a value that is not one)
        if arg not in layer or (table[arg][1] == api.LAYER and layer[arg] is None):
            ck.fail(layer, None, f"{field}.{arg}", "is required", _REQUIRED_WHAT[table[arg][1]], "nothing")
            ok = False
    return dict(layer) if ok else None


# ---------------------------------------------------------------- model: a list of layers

def check_plain(ck: Checker, item: LineDict, field: str) -> dict | None:
    """A non-recurrent model entry: class arguments, required ones, TimeDistributed's inner layer."""
    before = len(ck.problems)
    cls = item["class"]
    table = ml.MODEL_LAYERS[cls]
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
            check_activation(ck, item, arg, f)
        elif kind == ml.PADDING:
            ck.choice(item, arg, f, ml.PADDINGS, "padding")
        elif kind == ml.STRIDE and value is not None:
            ck.integer(item, arg, f, 1)
        elif kind == ml.NUMBER:
            ck.number(item, arg, f)
        elif kind == ml.SHAPE:
            ok = isinstance(value, list) and value and all(is_int(v) and (v > 0 or v == -1) for v in value)
            if not ok or value.count(-1) > 1:
                ck.fail(item, arg, f, "must be a list of positive sizes (one may be -1)", "a list such as [3, 3, 3]",
                        show(value))
        elif kind == api.LAYER:
            inner = ck.mapping(item, arg, f)
            value = None if inner is None else check_entry(ck, item, inner, f, ml.TD_INNER)
        out[arg] = value
    for arg in ml.REQUIRED.get(cls, ()):
        if arg not in item:
            what = {api.UNITS: "a positive integer", ml.SHAPE: "a list such as [3, 3, 3]",
                    api.LAYER: "a layer such as {class: Dense, units: 1}"}[table[arg][1]]
            ck.fail(item, None, f"{field}.{arg}", "is required", what, "nothing")
    return out if len(ck.problems) == before else None


def check_entry(ck: Checker, parent: LineDict, item: Any, field: str,
                classes: tuple[str, ...] = ml.ALL_CLASSES) -> dict | None:
    """One layer of the list (or TimeDistributed's inner layer), as a plain validated dict."""
    if not isinstance(item, LineDict):
        ck.fail(parent, "model", field, "must be a mapping", "a layer such as {class: LSTM, units: 8}", show(item))
        return None
    if "class" not in item:
        ck.fail(item, None, f"{field}.class", "is required", "one of " + ", ".join(classes), "nothing")
        return None
    cls = item["class"]
    if not isinstance(cls, str) or cls not in classes:
        where = "" if classes is ml.ALL_CLASSES else " inside TimeDistributed"
        ck.fail(item, "class", f"{field}.class", f"unknown layer class{where}" +
                (suggest(cls, classes) if isinstance(cls, str) else ""),
                "one of " + ", ".join(classes), show(cls))
        return None
    if cls in api.LAYER_ARGS:  # recurrent: the layer checks above, through a one-key holder for the line
        holder = LineDict(layer=item)
        holder.line, holder.key_lines["layer"] = item.line, item.line
        return check_layer(ck, holder, "layer", field)
    return check_plain(ck, item, field)


def check_model(ck: Checker, raw: LineDict) -> list[dict] | None:
    """The ``model:`` list: each entry, then the rules of a Sequential that carries one tensor."""
    value = raw["model"]
    if not isinstance(value, list) or not value:
        ck.fail(raw, "model", "model", "must be a non-empty list of layers",
                "a list such as [{class: LSTM, units: 8}, {class: Dense, units: 1}]", show(value))
        return None
    before = len(ck.problems)
    entries = [check_entry(ck, raw, item, f"model[{i}]") for i, item in enumerate(value)]
    if len(ck.problems) > before:
        return None
    for i, (item, spec) in enumerate(zip(value, entries)):
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
    if not any(spec["class"] in api.LAYER_ARGS for spec in entries):
        ck.fail(raw, "model", "model", "needs a recurrent layer", "an LSTM, GRU, SimpleRNN or Bidirectional entry",
                "none")
    return entries if len(ck.problems) == before else None
