"""The Keras side of a ``model:`` case: build the real Sequential, call it, read every layer back.

The recurrent layers are built by keras_layer.py exactly as for layer cases; Dense/Conv1D biases
are random too, so none can hide.  As there, only the Keras calls are wrapped (``keras_call``).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from . import keras_api as api
from . import layers, session
from .case import Case
from .keras_layer import BIAS_RANGE, build_layer, keras_call, read_weights


@dataclass(frozen=True)
class ModelRun:
    """What the real model did: the final output, every layer's output, weights and counts."""

    output: np.ndarray
    layer_outputs: list[np.ndarray]
    weights: list[dict]
    layer_params: list[int]
    params: int
    device: str = "cpu"
    versions: dict = field(default_factory=dict)


def _build(keras, spec: Mapping, dtype: str, seed: int):
    """One Keras layer of the model."""
    cls = spec["class"]
    if cls in api.LAYER_ARGS:
        return build_layer(dict(spec), dtype, seed)
    if cls == "TimeDistributed":
        inner = _build(keras, spec["layer"], dtype, seed)
        with keras_call("building the model"):
            return keras.layers.TimeDistributed(inner, dtype=dtype)
    kwargs = {k: v for k, v in spec.items() if k != "class"}
    with keras_call("building the model"):
        if cls in ("Dense", "Conv1D") and kwargs.get("use_bias", True):
            kwargs["bias_initializer"] = keras.initializers.RandomUniform(*BIAS_RANGE, seed=seed)
        if cls == "Reshape":
            kwargs["target_shape"] = tuple(kwargs["target_shape"])
        return getattr(keras.layers, cls)(dtype=dtype, **kwargs)


def run(case: Case, x: np.ndarray, tf32: bool = False) -> ModelRun:
    """Build the Sequential under the case seed, call it eagerly, read every layer back."""
    keras = session.keras()
    session.fresh(case.device, case.seed, tf32)
    ids = case.model[0]["class"] == "Embedding"
    feed = "int32" if ids else layers.DTYPES[case.dtype].feed
    with session.device_scope(case.device):
        built = [_build(keras, spec, case.dtype, case.seed + i) for i, spec in enumerate(case.model)]
        with keras_call("building the model"):
            inp = keras.Input(shape=x.shape[1:], dtype="int32" if ids else case.dtype)
            model = keras.Sequential([inp] + built)
            # The same layers, every output exposed: per-layer checks without a second set of weights.
            probe = keras.Model(model.inputs[0], [layer.output for layer in model.layers])
        with keras_call("calling the model"):
            tensor = session.to_tensor(x, feed)
            final = model(tensor)
            per_layer = probe(tensor)
            per_layer = per_layer if isinstance(per_layer, (list, tuple)) else [per_layer]
            outputs = [session.to_numpy(t) for t in per_layer]
            output = session.to_numpy(final)
    with keras_call("reading the model back"):
        layer_params = [layer.count_params() for layer in model.layers]
        params = model.count_params()
    return ModelRun(output=output, layer_outputs=outputs, weights=[read_weights(layer) for layer in model.layers],
                    layer_params=layer_params, params=params, device=session.tensor_device(final),
                    versions=session.versions())
