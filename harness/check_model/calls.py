"""Finding the recurrent layers of a model, recording what Keras hands each, and checking each call.

``record_calls`` runs the model once, eagerly, with each recurrent layer's ``call`` wrapped to
record what Keras passes it (sequences, mask, initial_state, training) and what it returns (see
the package docstring for why not a sub-model).  ``check_layer`` then runs the layer again alone
on exactly that, in Keras and in the NumPy reference, and compares every output with both the
reference and the numbers the layer gave inside the model.  ``param_counts`` checks the model's
parameter count three ways.
"""
from __future__ import annotations

import contextlib
import inspect
import io
import re
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import kernel_watch, layers, session
from .. import keras_api as api
from ..compare import compare
from ..errors import CheckModelError, KerasRaised
from ..keras_layer import as_list, keras_call, read_weights
from ..reference import recurrent
from ..tolerances import DEFAULT_TOLERANCE, Tolerance, for_row
from .report import LayerResult, first_line

CHECKED = ("LSTM", "GRU", "SimpleRNN", "Bidirectional")


@dataclass
class LayerCall:
    """What Keras handed one recurrent layer inside the model, and what the layer returned."""

    sequences: np.ndarray
    mask: np.ndarray | None
    initial_state: list[np.ndarray] | None
    training: Any
    outputs: list[np.ndarray]


# ---------------------------------------------------------------- finding the layers

def walk_nested(model, prefix: str) -> Iterator[tuple[str, Any, tuple]]:
    """(path, layer, the models around it, outermost first) for every layer that is not itself a
    model, nested models included, once each."""
    keras = session.keras()
    seen: set[int] = set()

    def visit(container, path: str, around: tuple):
        for layer in container.layers:
            if id(layer) in seen:
                continue
            seen.add(id(layer))
            if isinstance(layer, keras.Model):  # a Sequential or functional model used as a layer
                yield from visit(layer, f"{path}/{layer.name}", (*around, layer))
            else:
                yield f"{path}/{layer.name}", layer, around

    yield from visit(model, prefix, (model,))


def walk(model, prefix: str) -> Iterator[tuple[str, Any]]:
    """(path, layer) for every layer that is not itself a model, nested models included, once each."""
    for path, layer, _ in walk_nested(model, prefix):
        yield path, layer


def call_label(path: str, index: int, count: int) -> str:
    """A layer call's name in the report: the path, with ``(call N)`` for a layer called more than once."""
    return path if count == 1 else f"{path} (call {index})"


def is_recurrent(layer) -> bool:
    """Whether the layer is, or wraps, or holds a recurrent layer."""
    keras = session.keras()
    if isinstance(layer, (keras.layers.RNN, keras.layers.Bidirectional)):
        return True
    inner = getattr(layer, "layer", None)
    if inner is not None and is_recurrent(inner):
        return True
    return any(is_recurrent(sub) for sub in getattr(layer, "layers", None) or [])


def class_label(layer) -> str:
    """The class name, with the wrapped layer's for a wrapper: ``TimeDistributed(LSTM)``."""
    inner = getattr(layer, "layer", None)
    name = type(layer).__name__
    return f"{name}({type(inner).__name__})" if inner is not None and name != "Bidirectional" else name


def unsupported(layer) -> str:
    """Why a recurrent layer cannot be checked ("" when it can, or when it is not recurrent)."""
    name = type(layer).__name__
    if name not in CHECKED:
        if is_recurrent(layer):
            what = "TimeDistributed around a recurrent layer" if name == "TimeDistributed" else \
                f"{name} is not one of {', '.join(CHECKED)} (the reference covers only those)"
            return f"not supported: {what}"
        return ""
    return layer_config(layer)[1]


def _cell_config(layer) -> tuple[dict | None, str]:
    cls = type(layer).__name__
    if cls not in api.RECURRENT_CLASSES:
        return None, f"not supported: {cls} inside Bidirectional"
    raw = layer.get_config()
    cfg = {"class": cls, **{k: raw[k] for k in api.LAYER_ARGS[cls] if k in raw}}
    for key in ("activation", "recurrent_activation"):
        value = cfg.get(key, "tanh")
        if not isinstance(value, str) or value not in recurrent.ACTIVATIONS:
            return None, f"not supported: {key} {value!r:.60} is not one the reference knows"
    if cfg.get("stateful"):
        return None, "not supported: stateful (its states carry over calls; check it with a case file)"
    if cfg.get("time_major"):  # tf_keras only (Keras 3 has no time_major, §10)
        return None, "not supported: time_major=True (check it with a case file)"
    return cfg, ""


def layer_config(layer) -> tuple[dict | None, str]:
    """The reference config (keras_api.with_defaults) from the layer's own config, or why not."""
    if type(layer).__name__ != "Bidirectional":
        cfg, why = _cell_config(layer)
        return (api.with_defaults(cfg), "") if cfg else (None, why)
    fwd, why_f = _cell_config(layer.forward_layer)
    bwd, why_b = _cell_config(layer.backward_layer)
    if fwd is None or bwd is None:
        return None, why_f or why_b
    cfg = {"class": "Bidirectional", "layer": fwd, "merge_mode": layer.merge_mode, "backward_layer": bwd,
           "name": layer.name}
    return api.with_defaults(cfg), ""


# ---------------------------------------------------------------- recording the model's calls

def _numpy(value) -> np.ndarray | None:
    return None if value is None else session.to_numpy(value)


def record_calls(model, watched: list, inputs: list[np.ndarray]) -> dict[int, list[LayerCall]]:
    """Run the model once; for each watched layer, what Keras passed to its ``call`` and what came back."""
    calls: dict[int, list[LayerCall]] = {id(layer): [] for layer in watched}

    def recorder(layer):
        original = layer.call
        signature = inspect.signature(original)

        def call(*args, **kwargs):
            out = original(*args, **kwargs)
            bound = signature.bind(*args, **kwargs).arguments
            state = bound.get("initial_state")
            calls[id(layer)].append(LayerCall(
                # Keras 3 names the first argument sequences, tf_keras inputs.
                sequences=_numpy(bound["sequences" if "sequences" in bound else "inputs"]),
                mask=_numpy(bound.get("mask")),
                initial_state=None if state is None else [_numpy(s) for s in as_list(state)],
                training=bound.get("training"), outputs=[_numpy(o) for o in as_list(out)]))
            return out
        return call

    for layer in watched:
        layer.call = recorder(layer)  # Keras calls self.call (ops/operation.py __call__)
    try:
        with keras_call("running the model"):
            model(inputs[0] if len(inputs) == 1 else inputs, training=False)
    except KerasRaised as raised:  # the model rejecting the input is bad input
        raise CheckModelError(f"running the model on the input failed: {first_line(raised.original)}") from None
    finally:
        for layer in watched:
            vars(layer).pop("call", None)
    return calls


# ---------------------------------------------------------------- checking each call

def tolerance(layer) -> Tolerance:
    """The tolerance row of the layer's dtype policy (float32 for a policy the table has no row for)."""
    policy = getattr(getattr(layer, "dtype_policy", None), "name", None) or "float32"
    row = policy if policy in DEFAULT_TOLERANCE else "float32"
    return for_row(row, None if row == policy else f"dtype default {row} (policy {policy})")


def check_layer(path: str, layer, call: LayerCall, device: str) -> LayerResult:
    """Run the layer on what the model gave it, in Keras and in the reference; compare every output."""
    cls = type(layer).__name__
    cfg, _ = layer_config(layer)
    notes = []
    if call.mask is not None:
        notes.append(f"mask ({int(np.sum(~call.mask.astype(bool)))} of {call.mask.size} steps masked)")
    if call.initial_state is not None:
        notes.append(f"initial_state from the model ({len(call.initial_state)} tensors)")
    try:
        with kernel_watch.watch() as watched, keras_call("running the layer alone"):
            # to_tensor keeps the recorded dtype (float16 under mixed_float16).
            kwargs: dict[str, Any] = {"training": call.training}
            if call.mask is not None:
                kwargs["mask"] = session.to_tensor(call.mask)
            if call.initial_state is not None:
                kwargs["initial_state"] = [session.to_tensor(s) for s in call.initial_state]
            got = [session.to_numpy(r) for r in as_list(layer(session.to_tensor(call.sequences), **kwargs))]
        weights = read_weights(layer)
    except KerasRaised as raised:  # one layer's error fails that layer; the others go on
        return LayerResult(path, cls, "error", notes=notes, message=first_line(raised.original))
    if device == "gpu":
        kernel = kernel_watch.observed(watched)
        notes.append(f"kernel {kernel}" if kernel else "kernel unknown")
    expected = recurrent.run(cfg, call.sequences.astype(np.float64), weights,
                             mask=call.mask, initial_state=call.initial_state)
    names = layers.output_names(cfg)
    if len(got) != len(names):
        return LayerResult(path, cls, "error", notes=notes,
                           message=f"Keras returned {len(got)} tensors, expected {len(names)} ({', '.join(names)})")
    tol = tolerance(layer)
    comps = [compare(name, value, expected[name], tol) for name, value in zip(names, got)]
    # The same layer inside the model must have returned the same numbers as run alone here.
    comps += [compare(name, inside, alone, tol, against="layer run alone")
              for name, inside, alone in zip(names, call.outputs, got)]
    verdict = "pass" if all(c.passed for c in comps) else "fail"
    return LayerResult(path, cls, verdict, comps, notes)


def check_layers(found: list[tuple[str, Any]], calls: dict[int, list[LayerCall]], device: str) -> list[LayerResult]:
    """A result for every recurrent layer: unsupported, not called, or one per call of it."""
    results = []
    for path, layer in found:
        why = unsupported(layer)
        if why:
            results.append(LayerResult(path, class_label(layer), "unsupported", message=why))
        elif type(layer).__name__ in CHECKED:
            made = calls.get(id(layer), [])
            if not made:
                results.append(LayerResult(path, type(layer).__name__, "not called",
                                           message="the model's forward pass never called it"))
            for index, call in enumerate(made, start=1):
                label = call_label(path, index, len(made))
                try:
                    results.append(check_layer(label, layer, call, device))
                except Exception as exc:  # noqa: BLE001 - a harness bug: this layer's error, with its traceback
                    message = f"harness bug: {type(exc).__name__}: {exc}\n{traceback.format_exc()}"
                    results.append(LayerResult(label, type(layer).__name__, "error", message=message))
    return results


# ---------------------------------------------------------------- parameter counts

def summary_total(model) -> int | None:
    """The "Total params" line of model.summary() (None: no summary, or no such line)."""
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer), keras_call("printing the summary"):
            model.summary(line_length=120)
    except KerasRaised:  # no summary is reported as n/a, not as a crash
        return None
    found = re.search(r"Total params:\s*([\d,]+)", buffer.getvalue())
    return int(found.group(1).replace(",", "")) if found else None


def param_counts(model, found: list[tuple[str, Any]], calls: dict[int, list[LayerCall]]) -> dict[str, Any]:
    """count_params(), the summary's "Total params", and the reference formulas plus other layers."""
    recurrent_params = other = 0
    for _, layer in found:
        cfg, _ = layer_config(layer) if type(layer).__name__ in CHECKED else (None, "")
        made = calls.get(id(layer))
        if cfg is not None and made:
            recurrent_params += layers.param_count(cfg, int(made[0].sequences.shape[-1]))
        else:
            other += layer.count_params() if layer.built else 0
    total = model.count_params()
    summary = summary_total(model)
    formulas = recurrent_params + other
    return {"count_params": total, "summary": summary if summary is not None else "n/a",
            "formulas": formulas, "recurrent": recurrent_params, "other": other,
            "agree": total == formulas and summary == total}
