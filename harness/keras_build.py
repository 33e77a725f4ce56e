"""The only module that imports Keras: build the real layer from a case, run it, read it back.

Keras is imported inside the functions, so loading, listing and validating cases never pay
for it (importing TensorFlow takes seconds).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import keras_api as api
from . import reference
from .case import Case
from .errors import Unsupported

GC_EVERY = 50
_cases_since_gc = 0

# Default bias values: random, so a dropped or misplaced bias cannot hide behind zeros.
BIAS_RANGE = (-0.5, 0.5)


@dataclass
class KerasRun:
    """What the real layer did: outputs by name, weights by name, counts, where it ran."""

    outputs: dict[str, np.ndarray]
    weights: dict
    params: int
    layer_repr: str
    device: str = "cpu"
    kernel: str = "generic loop"
    versions: dict[str, str] = field(default_factory=dict)


def _keras():
    import keras  # noqa: PLC0415 - deliberately lazy

    return keras


def versions() -> dict[str, str]:
    keras = _keras()
    out = {"keras": keras.__version__, "backend": keras.backend.backend()}
    if out["backend"] == "tensorflow":
        import tensorflow as tf  # noqa: PLC0415

        out["tensorflow"] = tf.__version__
    return out


def gpu_available() -> bool:
    keras = _keras()
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf  # noqa: PLC0415

        return bool(tf.config.list_physical_devices("GPU"))
    if keras.backend.backend() == "torch":
        import torch  # noqa: PLC0415

        return torch.cuda.is_available()
    if keras.backend.backend() == "jax":
        import jax  # noqa: PLC0415

        return any(d.platform == "gpu" for d in jax.devices())
    return False


def _initializer(keras, value: Any):
    if isinstance(value, str):
        return keras.initializers.get(api.INITIALIZER_NAMES.get(value, value))
    config = {k: v for k, v in value.items() if k != "class"}
    cls = api.INITIALIZER_NAMES.get(value["class"], value["class"])
    return getattr(keras.initializers, cls)(**config)


def build_layer(spec: dict, dtype: str, seed: int):
    """The Keras layer a case describes; initializers named by the case, biases random by default."""
    keras = _keras()
    cls = spec["class"]
    if cls == "Bidirectional":
        backward = spec.get("backward_layer")
        return keras.layers.Bidirectional(
            build_layer(spec["layer"], dtype, seed),
            merge_mode=spec.get("merge_mode", "concat"),
            backward_layer=build_layer(backward, dtype, seed + 1) if backward else None,
            dtype=dtype)
    kwargs = {k: v for k, v in spec.items() if k != "class"}
    for key, (_, kind) in api.LAYER_ARGS[cls].items():
        if kind == api.INITIALIZER and key in kwargs:
            kwargs[key] = _initializer(keras, kwargs[key])
    if "bias_initializer" not in spec:
        kwargs["bias_initializer"] = keras.initializers.RandomUniform(*BIAS_RANGE, seed=seed)
    return getattr(keras.layers, cls)(dtype=dtype, **kwargs)


def _cell_weights(layer) -> dict[str, np.ndarray]:
    return {v.name: np.asarray(w) for v, w in zip(layer.weights, layer.get_weights())}


def read_weights(layer) -> dict:
    """Weights by their Keras names; Bidirectional by direction (§4: never the original layer)."""
    if type(layer).__name__ == "Bidirectional":
        return {"forward": _cell_weights(layer.forward_layer),
                "backward": _cell_weights(layer.backward_layer)}
    return _cell_weights(layer)


def _set_weights(layer, values: dict) -> None:
    if type(layer).__name__ == "Bidirectional":
        for direction, sub in (("forward", layer.forward_layer), ("backward", layer.backward_layer)):
            if direction in values:
                _set_weights(sub, values[direction])
        return
    current = _cell_weights(layer)
    current.update({k: np.asarray(v, dtype=current[k].dtype) for k, v in values.items()})
    layer.set_weights([current[v.name] for v in layer.weights])


def _to_numpy(keras, tensor) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(tensor))


def _tensor_device(tensor) -> str:
    dev = str(getattr(tensor, "device", "cpu")).lower()
    return "gpu" if ("gpu" in dev or "cuda" in dev) else "cpu"


def feed_dtype(case: Case) -> str:
    """dtype of the arrays handed to Keras (it casts them to the layer's compute dtype)."""
    return "float64" if case.dtype == "float64" else "float32"


def run(case: Case, inputs: list[np.ndarray], mask: np.ndarray | None,
        initial_state: list[np.ndarray] | None, weights: dict | None) -> KerasRun:
    """Build the layer under the case seed, run each call eagerly, read everything back."""
    keras = _keras()
    # Fresh layer names and global state for every case; a full garbage collection costs ~0.1 s
    # with TensorFlow loaded, so it runs every GC_EVERY cases (memory stays flat either way).
    global _cases_since_gc
    _cases_since_gc += 1
    keras.backend.clear_session(free_memory=_cases_since_gc >= GC_EVERY)
    if _cases_since_gc >= GC_EVERY:
        _cases_since_gc = 0
    if case.device == "gpu" and not gpu_available():
        raise Unsupported("gpu case: no GPU visible to Keras")
    keras.utils.set_random_seed(case.seed)
    dtype = case.dtype
    fd = feed_dtype(case)
    with keras.device(f"{case.device}:0"):
        layer = build_layer(dict(case.layer), dtype, case.seed)
        if weights is not None:
            layer.build((case.input.batch, case.input.timesteps, case.input.features))
            _set_weights(layer, weights)
        kwargs: dict[str, Any] = {}
        if case.training:
            kwargs["training"] = True
        if initial_state is not None:
            kwargs["initial_state"] = [keras.ops.convert_to_tensor(s, dtype=fd) for s in initial_state]
        masking = None
        if mask is not None and case.mask.via == "masking_layer":
            masking = keras.layers.Masking(mask_value=0.0)
        elif mask is not None:
            kwargs["mask"] = keras.ops.convert_to_tensor(mask)
        cfg = api.with_defaults(case.layer)
        names = reference.output_names(cfg)
        outputs: dict[str, np.ndarray] = {}
        devices = set()
        for index, x in enumerate(inputs, start=1):
            if case.calls and index in case.calls.reset_before:
                layer.reset_state()
            tensor = keras.ops.convert_to_tensor(x, dtype=fd)
            if masking is not None:
                tensor = masking(tensor)
            result = layer(tensor, **kwargs)
            kwargs.pop("initial_state", None)  # it starts the first call; later calls carry state
            result = list(result) if isinstance(result, (list, tuple)) else [result]
            if len(result) != len(names):
                raise AssertionError(f"Keras returned {len(result)} tensors, expected {len(names)} "
                                     f"({', '.join(names)})")
            prefix = f"call{index}." if case.calls else ""
            for name, tensor_out in zip(names, result):
                outputs[prefix + name] = _to_numpy(keras, tensor_out)
                devices.add(_tensor_device(tensor_out))
        device = "gpu" if devices == {"gpu"} else "cpu"
        return KerasRun(outputs=outputs, weights=read_weights(layer), params=layer.count_params(),
                        layer_repr=describe(case.layer), device=device, versions=versions())


def describe(spec: dict) -> str:
    """``LSTM(units=16, return_sequences=True)``: the layer as a Keras call."""
    def val(v):
        if isinstance(v, dict):
            return describe(v) if v.get("class") in api.LAYER_ARGS else repr(v)
        return repr(v)

    args = ", ".join(f"{k}={val(v)}" for k, v in spec.items() if k != "class")
    return f"{spec['class']}({args})"
