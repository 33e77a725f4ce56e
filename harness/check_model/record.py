"""``check-model MODEL --record FILE.h5``: every recurrent layer call of a saved model as a golden-file
case, so ``diagnose`` and ``export`` work on a user's own trained layers.

Each call is recorded as the layer really ran inside the model: the sequences, mask and initial
states Keras handed it (calls.record_calls), its own weights, and the outputs it returned there.
The case names the layer's forward-pass arguments only (its initializers, regularizers and
constraints play no part: the weights are recorded), and its id is the layer's path in the model.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .. import golden, layers, session
from .. import keras_api as api
from ..case import Case, InputSpec, MaskSpec, OutputKey
from ..data import Arrays
from ..keras_layer import KerasRun, read_weights
from ..result import CaseResult, Verdict
from .calls import CHECKED, LayerCall, call_label, layer_config

# Constructor arguments that do not change what a built layer computes from its weights.
UNRECORDED_KINDS = (api.INITIALIZER, api.OPTIONAL_NAME, api.SEED, api.NAME)


def _spec(cfg: dict) -> dict:
    """The case's layer spec from a reference config: its forward-pass arguments only."""
    if layers.is_bidirectional(cfg):
        forward = _spec(cfg["layer"])
        spec = {"class": "Bidirectional", "layer": forward, "merge_mode": cfg["merge_mode"]}
        backward = _spec(cfg["backward_layer"]) if cfg.get("backward_layer") else None
        # Keras's own copy of the layer (go_backwards flipped) is what a spec without one builds.
        if backward is not None and backward != {**forward, "go_backwards": not forward.get("go_backwards", False)}:
            spec["backward_layer"] = backward
        return spec
    table = api.LAYER_ARGS[cfg["class"]]
    return {"class": cfg["class"], **{k: v for k, v in cfg.items()
                                      if k in table and table[k][1] not in UNRECORDED_KINDS}}


def base_id(path: str) -> str:
    """A case id from a layer's path in the model (``model/lstm_1`` -> ``model-lstm_1``)."""
    return re.sub(r"[^a-z0-9_-]+", "-", path.lower()).strip("-") or "layer"


def as_result(model_path: str, label: str, layer, call: LayerCall, device: str) -> CaseResult:
    """One layer call as a recordable result (golden.record)."""
    cfg, _ = layer_config(layer)
    batch, steps, features = call.sequences.shape
    policy = getattr(getattr(layer, "dtype_policy", None), "name", None)
    mask = None if call.mask is None else MaskSpec("explicit", values=np.asarray(call.mask, int).tolist())
    initial = None if call.initial_state is None else [np.asarray(s, np.float64) for s in call.initial_state]
    case = Case(base_id=base_id(label), path=str(model_path), line=0,
                about=f"{label} of {model_path}, as the model ran it (check-model --record)",
                layer=_spec(cfg), input=InputSpec(batch, steps, features), mask=mask,
                initial_state=None if initial is None else [s.tolist() for s in initial],
                dtype=policy if policy in layers.DTYPES else "float32", device=device)
    weights = read_weights(layer)
    names = layers.output_names(api.with_defaults(dict(case.layer)))
    run = KerasRun(outputs={OutputKey(n): np.asarray(v) for n, v in zip(names, call.outputs)}, weights=weights,
                   params=layer.count_params(), device=device, versions=session.versions())
    arrays = Arrays(inputs=[np.asarray(call.sequences, np.float64)], mask=call.mask, initial_state=initial,
                    weights=weights)
    return CaseResult(case, Verdict.PASS, arrays=arrays, keras_run=run)


def record(model_path: str, found: list, recorded: dict[int, list[LayerCall]], out: str | Path,
           device: str) -> int:
    """Write every call of every checked recurrent layer to ``out``; returns how many were written."""
    results = []
    for path, layer in found:
        made = recorded.get(id(layer), []) if type(layer).__name__ in CHECKED else []
        if layer_config(layer)[0] is None:
            continue
        for index, call in enumerate(made, start=1):
            results.append(as_result(model_path, call_label(path, index, len(made)), layer, call, device))
    return golden.record(results, out, force=True)
