"""The only module that imports Keras: build the real layer from a case, run it, read it back.

Keras is imported inside the functions, so loading, listing and validating cases never pay
for it (importing TensorFlow takes seconds).  Which Keras is imported is the process's flavour
(harness/flavours.py, fixed before the first import): Keras 3 on tensorflow, jax or torch, or
legacy Keras 2 as ``tf_keras``.  The API differences between them live here and nowhere else.
"""
from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import flavours, kernels, reference
from . import keras_api as api
from .case import Case
from .errors import Unsupported

# Default bias values: random, so a dropped or misplaced bias cannot hide behind zeros.
BIAS_RANGE = (-0.5, 0.5)


GC_EVERY = 50
_cases_since_gc = 0

@dataclass
class KerasRun:
    """What the real layer did: outputs by name, weights by name, counts, where and how it ran."""

    outputs: dict[str, np.ndarray]
    weights: dict
    params: int
    device: str = "cpu"
    kernel: str = kernels.GENERIC  # the observed kernel when it could be watched, else the predicted one
    versions: dict[str, str] = field(default_factory=dict)
    predicted: kernels.Decision | None = None  # what kernels.py says Keras's rules choose
    observed: str | None = None  # what the watched backend functions did (None: not watchable)
    tf32: bool = False


def flavour() -> str:
    return flavours.current()


def _keras():
    if flavour() == "tf_keras":
        import tf_keras as keras  # noqa: PLC0415 - Keras 2; TF_USE_LEGACY_KERAS=1 is set for tf.keras
    else:
        import keras  # noqa: PLC0415 - deliberately lazy
    return keras


def versions() -> dict[str, str]:
    keras = _keras()
    out = {"keras": keras.__version__, "backend": keras.backend.backend(), "flavour": flavour()}
    module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}.get(out["backend"])
    if module:
        out[module] = __import__(module).__version__
    return out


def gpu_available() -> bool:
    """Whether the backend sees a GPU (TF: the logical GPUs Keras's own cuDNN check looks at)."""
    backend = _keras().backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf  # noqa: PLC0415

        return bool(tf.config.list_logical_devices("GPU"))
    if backend == "torch":
        import torch  # noqa: PLC0415

        return torch.cuda.is_available()
    if backend == "jax":
        import jax  # noqa: PLC0415

        return jax.default_backend() == "gpu"
    return False


def set_tf32(enabled: bool) -> None:
    """TF32 matmuls on or off for this process (off: float32 stays float32 on Ampere/Hopper, §11)."""
    backend = _keras().backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf  # noqa: PLC0415

        tf.config.experimental.enable_tensor_float_32_execution(enabled)
    elif backend == "torch":
        import torch  # noqa: PLC0415

        torch.backends.cuda.matmul.allow_tf32 = enabled
        torch.backends.cudnn.allow_tf32 = enabled
    elif backend == "jax":
        import jax  # noqa: PLC0415

        jax.config.update("jax_default_matmul_precision", "tensorfloat32" if enabled else "highest")


def _initializer(keras, value: Any):
    if isinstance(value, str):
        return keras.initializers.get(api.INITIALIZER_NAMES.get(value, value))
    config = {k: v for k, v in value.items() if k != "class"}
    cls = api.INITIALIZER_NAMES.get(value["class"], value["class"])
    return getattr(keras.initializers, cls)(**config)


def _keras2_kwargs(keras, kwargs: dict) -> dict:
    """Constructor arguments for tf_keras: skip (with the reason) what Keras 2 does not have."""
    use_cudnn = kwargs.pop("use_cudnn", "auto")
    if use_cudnn != "auto":
        raise Unsupported(f"use_cudnn={use_cudnn} is a Keras 3 argument; tf_keras picks its kernel itself")
    if kwargs.get("seed") is not None:
        raise Unsupported("seed= is a Keras 3 argument; tf_keras layers have none")
    kwargs.pop("seed", None)
    for key in ("activation", "recurrent_activation"):
        name = kwargs.get(key)
        if isinstance(name, str):
            try:
                keras.activations.get(name)
            except ValueError:
                raise Unsupported(f"activation {name!r} does not exist in tf_keras {keras.__version__}") from None
    return kwargs


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
    if flavour() == "tf_keras":
        kwargs = _keras2_kwargs(keras, kwargs)
    return getattr(keras.layers, cls)(dtype=dtype, **kwargs)


def _weight_name(variable) -> str:
    # Keras 3: "kernel"; tf_keras: "lstm/lstm_cell/kernel:0".
    return variable.name.split("/")[-1].split(":")[0]


def _cell_weights(layer) -> dict[str, np.ndarray]:
    return {_weight_name(v): np.asarray(w) for v, w in zip(layer.weights, layer.get_weights())}


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
    layer.set_weights([current[_weight_name(v)] for v in layer.weights])


# ---------------------------------------------------------------- per-flavour tensor plumbing

def device_scope(keras, device: str):
    """The device context for a case: keras.device, or tf.device under tf_keras (torch: see below)."""
    if flavour() == "tf_keras":
        import tensorflow as tf  # noqa: PLC0415 - tf_keras has no keras.device

        return tf.device(f"/{device.upper()}:0")
    if keras.backend.backend() == "torch" and device == "cpu":
        # Keras 3.15 torch: under device "cpu:0" a non-float variable (the seed generator's
        # state) is moved with Parameter.to("cpu:0"), comes back a plain tensor, and
        # ParameterDict then fails "Only Tensors of floating point ... can require gradients".
        return keras.device("cpu")
    return keras.device(f"{device}:0")


def _to_tensor(keras, value, dtype: str | None = None):
    if flavour() == "tf_keras":
        import tensorflow as tf  # noqa: PLC0415 - tf_keras refuses numpy initial states (§8)

        return tf.convert_to_tensor(value, dtype=dtype)
    return keras.ops.convert_to_tensor(value, dtype=dtype)


def _to_numpy(keras, tensor) -> np.ndarray:
    if flavour() == "tf_keras":
        return np.asarray(tensor)
    return np.asarray(keras.ops.convert_to_numpy(tensor))


def tensor_device(tensor) -> str:
    """``gpu`` or ``cpu``: where a TF, torch or JAX tensor actually lives."""
    dev = getattr(tensor, "device", None)
    if callable(dev):
        dev = dev()
    if dev is None and hasattr(tensor, "devices"):
        dev = next(iter(tensor.devices()), None)
    text = f"{dev} {getattr(dev, 'platform', '')} {getattr(dev, 'type', '')}".lower()
    return "gpu" if ("gpu" in text or "cuda" in text or "rocm" in text) else "cpu"


def _reset(layer) -> None:
    # Keras 3: reset_state() (alias reset_states); tf_keras: reset_states() only (§7).
    (getattr(layer, "reset_state", None) or layer.reset_states)()


# ---------------------------------------------------------------- which kernel really ran

@contextlib.contextmanager
def watch_kernels() -> Iterator[list[str] | None]:
    """Record the kernel of every recurrent call while the block runs (None: cannot watch here).

    Wraps the backend functions the layers call (Keras 3: ``backend.lstm/gru`` return only when
    their fast path ran and raise NotImplementedError to fall back; torch's ``_cudnn_*`` tell
    cuDNN from its fallback loop; tf_keras: ``gpu_lstm/gpu_gru``).  Nothing is recorded for a
    call that never reached them (SimpleRNN, use_cudnn=False, recurrent_dropout): generic.
    """
    records: list[str] = []
    patches: list[tuple[object, str, object]] = []
    state = {"cudnn": False}

    def patch(owner, name: str, wrap) -> bool:
        original = getattr(owner, name, None)
        if original is None:
            return False
        setattr(owner, name, wrap(original))
        patches.append((owner, name, original))
        return True

    def backend_call(original, on_return, bidirectional=False):
        def wrapper(*args, **kwargs):
            state["cudnn"] = False
            try:
                out = original(*args, **kwargs)
            except NotImplementedError:
                if not bidirectional:  # the fused both-directions try falls back to two calls
                    records.append(kernels.GENERIC)
                raise
            records.append(on_return())
            return out
        return wrapper

    def flag_cudnn(original):
        def wrapper(*args, **kwargs):
            out = original(*args, **kwargs)
            state["cudnn"] = True
            return out
        return wrapper

    ok = True
    try:
        if flavour() == "tf_keras":
            from tf_keras.src.layers.rnn import gru as k2_gru  # noqa: PLC0415
            from tf_keras.src.layers.rnn import lstm as k2_lstm  # noqa: PLC0415

            cudnn = lambda original: backend_call(original, lambda: kernels.CUDNN)
            ok = patch(k2_lstm, "gpu_lstm", cudnn) and patch(k2_gru, "gpu_gru", cudnn)
        else:
            from keras.src import backend as kb  # noqa: PLC0415

            name = kb.backend()
            if name == "torch":
                from keras.src.backend.torch import rnn as torch_rnn  # noqa: PLC0415

                ok = patch(torch_rnn, "_cudnn_lstm", flag_cudnn) and patch(torch_rnn, "_cudnn_gru", flag_cudnn)
                single = lambda: kernels.CUDNN if state["cudnn"] else kernels.FUSED
                lstm_kernel = gru_kernel = single
            elif name == "jax":
                lstm_kernel, gru_kernel = (lambda: kernels.CUDNN), (lambda: kernels.FUSED)
            else:
                lstm_kernel = gru_kernel = lambda: kernels.CUDNN
            ok = ok and patch(kb, "lstm", lambda f: backend_call(f, lstm_kernel)) \
                and patch(kb, "gru", lambda f: backend_call(f, gru_kernel))
            for bidi in ("bidirectional_lstm", "bidirectional_gru"):
                ok = ok and patch(kb, bidi, lambda f: backend_call(f, lambda: kernels.CUDNN, True))
        yield records if ok else None
    finally:
        for owner, name, original in reversed(patches):
            setattr(owner, name, original)


# ---------------------------------------------------------------- one run

def feed_dtype(case: Case) -> str:
    """dtype of the arrays handed to Keras (it casts them to the layer's compute dtype)."""
    return "float64" if case.dtype == "float64" else "float32"


def _time_major(spec: dict) -> bool:
    inner = spec.get("layer", spec) if spec["class"] == "Bidirectional" else spec
    return bool(inner.get("time_major"))


def predict_kernel(case: Case, mask: np.ndarray | None, gpu_visible: bool,
                   has_initial_state: bool = False) -> kernels.Decision:
    """What Keras's eligibility rules choose for this case here (harness/kernels.py)."""
    if mask is not None and case.mask.via == "masking_layer" and has_initial_state and flavour() != "tf_keras":
        # §6: Keras 3 fills `mask` from a Masking layer only for a call with one tensor argument, so
        # with a tensor initial_state no mask reaches the layer (and its kernel choice).
        mask = None
    return kernels.decide(api.with_defaults(case.layer), flavour=flavour(), device=case.device,
                          gpu_visible=gpu_visible, mask=kernels.mask_info(mask))


def run(case: Case, inputs: list[np.ndarray], mask: np.ndarray | None,
        initial_state: list[np.ndarray] | None, weights: dict | None) -> KerasRun:
    """Build the layer under the case seed, run each call eagerly, read everything back."""
    keras = _keras()
    # Fresh layer names and global state for every case; a full garbage collection costs ~0.1 s
    # with TensorFlow loaded, so it runs every GC_EVERY cases (memory stays flat either way).
    global _cases_since_gc
    _cases_since_gc += 1
    full_gc = _cases_since_gc >= GC_EVERY
    if full_gc:
        _cases_since_gc = 0
    if flavour() == "tf_keras":
        keras.backend.clear_session()  # tf_keras has no free_memory argument
    else:
        keras.backend.clear_session(free_memory=False)
    if full_gc:
        gc.collect()
    gpu = gpu_available()
    if case.device == "gpu" and not gpu:
        raise kernels.NoGPU(f"gpu case: no GPU visible to Keras ({flavour()})")
    tf32 = bool(getattr(case, "tf32", False))
    set_tf32(tf32)
    keras.utils.set_random_seed(case.seed)
    fd = feed_dtype(case)
    # tf_keras only: time_major layers take (T, B, F) and return (T, B, U) sequences (§10).
    time_major = _time_major(dict(case.layer))
    swap = (lambda a: np.swapaxes(a, 0, 1)) if time_major else (lambda a: a)
    with device_scope(keras, case.device), watch_kernels() as watched:
        layer = build_layer(dict(case.layer), case.dtype, case.seed)
        if weights is not None:
            layer.build(swap(inputs[0]).shape)
            _set_weights(layer, weights)
        kwargs: dict[str, Any] = {}
        if case.training:
            kwargs["training"] = True
        if initial_state is not None:
            kwargs["initial_state"] = [_to_tensor(keras, s, fd) for s in initial_state]
        masking = None
        if mask is not None and case.mask.via == "masking_layer":
            masking = keras.layers.Masking(mask_value=0.0)
        elif mask is not None:
            kwargs["mask"] = _to_tensor(keras, swap(mask))
        cfg = api.with_defaults(case.layer)
        names = reference.output_names(cfg)
        sequences = cfg["layer"]["return_sequences"] if cfg["class"] == "Bidirectional" else cfg["return_sequences"]
        outputs: dict[str, np.ndarray] = {}
        devices = set()
        for index, x in enumerate(inputs, start=1):
            if case.calls and index in case.calls.reset_before:
                _reset(layer)
            tensor = _to_tensor(keras, swap(x), fd)
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
                value = _to_numpy(keras, tensor_out)
                is_sequence = sequences and name.startswith("output")
                outputs[prefix + name] = swap(value) if is_sequence else value
                devices.add(tensor_device(tensor_out))
        observed = (kernels.combine(watched) if watched else kernels.GENERIC) if watched is not None else None
    predicted = predict_kernel(case, mask, gpu, initial_state is not None)
    device = devices.pop() if len(devices) == 1 else "+".join(sorted(devices))
    return KerasRun(outputs=outputs, weights=read_weights(layer), params=layer.count_params(),
                    device=device,
                    kernel=observed or predicted.kernel, versions=versions(), predicted=predicted,
                    observed=observed, tf32=tf32)
