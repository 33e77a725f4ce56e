"""A legacy .h5 that Keras cannot rebuild, checked layer by layer from the file alone.

Keras 3 saving a functional model that computes a mask (Masking, Embedding(mask_zero=True)) to
legacy .h5 writes the mask operations (NotEqual, Any, ...) into the model_config as if they were
layers; keras.saving.load_model then fails on them (``ValueError: Unknown layer: 'NotEqual'``,
Keras 3.15.1).  The report says so and how to get a loadable file, and still checks what the
file holds: each recurrent layer of the config (nested models and Bidirectional included) is
rebuilt alone from its own config, given the weights of the file's ``model_weights`` group, and
checked by calls.check_layers on seeded random inputs, as a layer recorded in a model run is.

How the weights are laid out (keras/src/legacy/saving/legacy_h5_format.py
save_weights_to_hdf5_group): one group per top-level layer, ``model_weights/<layer>``, whose
``weight_names`` attribute lists its variables' paths, each a dataset at that path inside the
group: ``lstm/lstm_cell/kernel``; ``bi/forward_lstm/lstm_cell/kernel`` for a Bidirectional; a
nested model's group holds all its layers' variables (``encoder/gru/gru_cell/kernel`` from a
Sequential, ``srnn/simple_rnn_cell/kernel`` from a functional model); tf_keras adds ``:0``.
A variable of the rebuilt layer is matched by its path below the layer (``lstm_cell/kernel``,
``forward_lstm/lstm_cell/kernel``) right after the layer's name.
"""
from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from .. import session
from ..errors import CheckModelError, KerasRaised
from ..keras_layer import keras_call
from . import calls, inputs, load
from .report import LayerResult, first_line

FROM_FILE = "from the file's weights and config"
CHECKED_ALONE = ("checked from the file instead: each recurrent layer rebuilt alone from its config and given "
                 "the weights of the file's model_weights, on seeded random inputs (no model run: no recorded "
                 "inputs, mask or initial state, and no parameter count)")
NO_RECURRENT = ("and its config has no LSTM, GRU, SimpleRNN or Bidirectional layer that could be checked alone "
                "from the file's weights")
NOT_MATCHED = "the file's weights do not match the layer rebuilt from its config"
RECURRENT_NAMES = (*calls.CHECKED, "RNN")
MAX_LISTED = 6  # weight names listed when none of them fits


def explanation(path: Path, found: load.Unrebuildable) -> list[str]:
    """Which classes Keras cannot rebuild, why, and what to do: one line each."""
    version = session.keras().__version__
    what = "layer class" if len(found.classes) == 1 else "layer classes"
    lines = [f"{path}: Keras {version} cannot rebuild this model from its legacy .h5 config: it holds {what} "
             f"{', '.join(found.classes)}, which Keras cannot deserialize ({found.keras_said})"]
    if found.operations:
        what = "an operation" if len(found.operations) == 1 else "operations"
        lines.append(f"{', '.join(found.operations)}: {what} that Keras 3 itself writes into the legacy .h5 "
                     "config of a model that computes a mask (Masking, Embedding(mask_zero=True)) and cannot read "
                     "back: a Keras 3 limitation of the legacy .h5 format for masking models")
        lines.append('to check the whole model, re-save it as .keras from the code that built it: '
                     'model.save("model.keras")')
    others = [c for c in found.classes if c not in found.operations]
    if others:
        lines.append(f"{', '.join(others)}: not {'a class' if len(others) == 1 else 'classes'} of Keras {version} "
                     "(a custom layer, or one of another Keras version: check-model does not have its code)")
    return lines


def check(path: Path, found: load.Unrebuildable, device: str) -> tuple[list[LayerResult], list[str], str]:
    """Every recurrent layer of the config checked alone on the file's weights; the notes saying why
    and how; the input line.  No recurrent layer at all is a CheckModelError (exit 2)."""
    import h5py  # noqa: PLC0415 - h5py loads only when a model is checked

    nodes = list(load.layer_nodes(found.config))
    masked = any(_computes_mask(node) for _, node, _ in nodes)
    results: list[LayerResult] = []
    try:
        with h5py.File(path, "r") as f:
            weights = f.get("model_weights")
            for node_path, node, group in nodes:
                results += _check_node(node_path, node, _group_arrays(weights, group), group,
                                       found, masked, device)
    except OSError as exc:
        raise CheckModelError(f"{path}: cannot read it as HDF5 ({exc})") from None
    lines = explanation(path, found)
    if not results:
        raise CheckModelError("\n  ".join([*lines, NO_RECURRENT]))
    return results, [*lines, CHECKED_ALONE], inputs.layer_inputs_text(masked)


def _computes_mask(node: dict) -> bool:
    cls = node.get("class_name")
    return cls == "Masking" or (cls == "Embedding" and bool(node["config"].get("mask_zero")))


def _group_arrays(weights, group: str) -> dict[str, np.ndarray] | None:
    """The datasets a ``model_weights/<group>`` lists in its weight_names, by name (None: no such group)."""
    import h5py  # noqa: PLC0415 - h5py loads only when a model is checked

    if weights is None or group not in weights:
        return None
    held = weights[group]
    out = {}
    for name in _attribute_list(held, "weight_names"):
        found = held.get(name)
        if isinstance(found, h5py.Dataset):
            out[name] = np.asarray(found[()])
    return out


def _attribute_list(group, name: str) -> list[str]:
    """A list attribute, also when Keras split it in chunks ``name0``, ``name1``, ... (HDF5's header limit)."""
    if name in group.attrs:
        raw = list(group.attrs[name])
    else:
        raw, chunk = [], 0
        while f"{name}{chunk}" in group.attrs:
            raw += list(group.attrs[f"{name}{chunk}"])
            chunk += 1
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in raw]


def _check_node(path: str, node: dict, arrays: dict[str, np.ndarray] | None, group: str,
                found: load.Unrebuildable, masked: bool, device: str) -> list[LayerResult]:
    """The rows of one layer of the config: none when it is not recurrent."""
    cls = str(node.get("class_name", ""))
    if cls in found.classes:  # already named in the explanation
        return []
    try:
        with keras_call("rebuilding the layer from its config"):
            layer = getattr(session.keras().layers, cls).from_config(copy.deepcopy(node["config"]))
    except KerasRaised as raised:
        if not any(c["class_name"] in RECURRENT_NAMES for c in load.configs(node)):
            return []
        return [LayerResult(path, cls, "error",
                            message=f"Keras cannot rebuild it from its config: {first_line(raised.original)}")]
    if not calls.is_recurrent(layer):
        return []
    if calls.unsupported(layer):
        return calls.check_layers([(path, layer)], {}, device)  # the row that says why
    features = _features(layer, arrays or {})
    where = f"model_weights/{group}"
    if arrays is None or features is None:
        why = (f"no weights for it in the file: no {where} group" if arrays is None else
               f"{NOT_MATCHED}: no input kernel '{layer.name}/.../kernel' in {where} (it holds {_listed(arrays)})")
        return [LayerResult(path, cls, "error", notes=[FROM_FILE], message=why)]
    try:
        with keras_call("building the layer"):
            layer.build((None, None, features))
        values, why = match(layer, arrays, where, own=path.count("/") == 1)
        if not why:
            with keras_call("setting the file's weights"):
                layer.set_weights(values)
    except KerasRaised as raised:
        why = first_line(raised.original)
    if why:
        return [LayerResult(path, cls, "error", notes=[FROM_FILE], message=why)]
    sequences, mask = inputs.layer_inputs(features, layer.compute_dtype, masked)
    call = calls.LayerCall(sequences, mask, None, False, outputs=[])  # no model run: nothing to compare it with
    return [replace(r, notes=[*r.notes, FROM_FILE])
            for r in calls.check_layers([(path, layer)], {id(layer): [call]}, device)]


def _segments(name: str) -> list[str]:
    return name.split(":")[0].split("/")


def _features(layer, arrays: dict[str, np.ndarray]) -> int | None:
    """The input width, from the layer's input kernel in the file (the config need not say it)."""
    for name, value in arrays.items():
        segments = _segments(name)
        if segments[-1] == "kernel" and layer.name in segments[:-1] and value.ndim == 2:
            return int(value.shape[0])
    return None


def _below(layer, variable) -> list[str]:
    """A variable's path below its layer: ``lstm_cell/kernel``; ``forward_lstm/lstm_cell/kernel``."""
    segments = _segments(getattr(variable, "path", None) or variable.name)
    return segments[1:] if len(segments) > 1 and segments[0] == layer.name else segments


def _listed(arrays: dict[str, Any]) -> str:
    names = list(arrays)
    more = f", ... ({len(names)} in all)" if len(names) > MAX_LISTED else ""
    return (", ".join(names[:MAX_LISTED]) + more) if names else "no weights"


def match(layer, arrays: dict[str, np.ndarray], where: str, own: bool) -> tuple[list[np.ndarray], str]:
    """The file's array for each of the built layer's variables, in ``layer.weights`` order, or why
    not ("" when they all match).  ``own``: the group is the layer's alone, so nothing may be left over."""
    values, used = [], set()
    for variable in layer.weights:
        below = _below(layer, variable)
        hits = [name for name in arrays
                if (s := _segments(name))[-len(below):] == below and len(s) > len(below)
                and s[-len(below) - 1] == layer.name]
        want = "/".join([layer.name, *below])
        if not hits:
            return [], f"{NOT_MATCHED}: no '{want}' in {where} (it holds {_listed(arrays)})"
        if len(hits) > 1:
            return [], f"{NOT_MATCHED}: '{want}' is each of {', '.join(hits)} in {where}"
        value = arrays[hits[0]]
        if tuple(value.shape) != tuple(variable.shape):
            return [], (f"{NOT_MATCHED}: '{hits[0]}' in {where} is {inputs.shape_text(value.shape)}, "
                        f"the layer rebuilt from its config has {inputs.shape_text(tuple(variable.shape))}")
        values.append(value)
        used.add(hits[0])
    left = [name for name in arrays if name not in used]
    if own and left:
        return [], f"{NOT_MATCHED}: {where} also holds {', '.join(left)}, which the layer does not have"
    return values, ""
