"""The one Keras session of a process: which Keras, its versions, GPU and TF32, a fresh state per
case, device scopes, and tensors in and out.

Layer runs (keras_layer.py), model runs (keras_model.py) and check-model all go through here,
so the API differences between the Keras flavours (harness/flavours.py: Keras 3 on tensorflow,
jax or torch, or legacy Keras 2 as ``tf_keras``) live in one place.  Keras, TensorFlow, torch
and jax are imported inside the functions: loading, listing and validating cases never pay for
them (importing TensorFlow takes seconds).
"""
from __future__ import annotations

import contextlib
import gc
import inspect
import logging
import os
import sys
from collections.abc import Iterator

import numpy as np

from . import flavours
from .errors import NoGPU

# Importing TensorFlow (or jax, torch) leaves ~400,000 objects that live as long as the process,
# and every full garbage collection walked them all: ~0.16 s each, whether the harness asked for it
# or Python's own thresholds did (about one every seven cases, inside Keras's calls).  keras()
# freezes them (gc.freeze: they are never collected, so never walked), which makes a full
# collection take 3-5 ms; fresh() runs one every GC_EVERY cases, so memory stays flat
# (harness/benchmark.py measures both).
GC_EVERY = 50
_cases_since_gc = 0


def flavour() -> str:
    return flavours.current()


# Set (to anything) to see the native start-up and kernel log lines of TensorFlow and friends.
VERBOSE_ENV = "KERAS_EQUIV_VERBOSE"


@contextlib.contextmanager
def _native_logs_hidden(environ=os.environ) -> Iterator[None]:
    """While the backend is first imported: its C++ start-up lines (oneDNN banner, cuInit errors)
    go nowhere, and TF_CPP_MIN_LOG_LEVEL=3 keeps its later log lines (``OP_REQUIRES failed`` from
    expected-error cases) quiet too.  A Python exception still reaches the user."""
    if environ.get(VERBOSE_ENV):
        yield
        return
    environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


_ready: set[str] = set()  # the Keras modules keras() has set up here (another import may come first)


def keras():
    """The Keras module of this process's flavour (its first import keeps the native logs quiet)."""
    name = "tf_keras" if flavour() == "tf_keras" else "keras"
    module = sys.modules.get(name)
    if module is not None and name in _ready:
        return module
    with _native_logs_hidden():
        if name == "tf_keras":
            import tf_keras as module  # noqa: PLC0415 - Keras 2, imported only when a case runs
        else:
            import keras as module  # noqa: PLC0415 - Keras 3, imported only when a case runs
        # The backend initialises its devices on first use: do that here too, while quiet.
        module.backend.backend()
        if module.backend.backend() == "jax":
            import jax  # noqa: PLC0415 - the backend itself, already imported by Keras

            for option, value in flavours.jax_cache_settings().items():
                jax.config.update(option, value)
        if module.backend.backend() == "tensorflow":
            import tensorflow as tf  # noqa: PLC0415 - the backend itself, already imported by Keras

            tf.config.list_logical_devices()
            if not os.environ.get(VERBOSE_ENV):
                # tf.function's "N out of the last N calls ... triggered tf.function retracing":
                # the function and xla modes trace one new function per case on purpose.
                tf.get_logger().setLevel(logging.ERROR)
    _freeze_what_is_loaded()
    _ready.add(name)
    return module


def _freeze_what_is_loaded() -> None:
    """Move every object alive now (the modules just imported, and what they hold) out of the
    garbage collector's sight: collect first, so that only what outlives any case is frozen."""
    gc.collect()
    gc.freeze()


def versions() -> dict[str, str]:
    """Keras, its backend and the backend package's version: what every result records."""
    k = keras()
    out = {"keras": k.__version__, "backend": k.backend.backend(), "flavour": flavour()}
    module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}.get(out["backend"])
    if module:
        out[module] = __import__(module).__version__
    return out


def gpu_available() -> bool:
    """Whether the backend sees a GPU (TF: the logical GPUs Keras's own cuDNN check looks at)."""
    backend = keras().backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf  # noqa: PLC0415 - the backend itself, already imported by Keras

        return bool(tf.config.list_logical_devices("GPU"))
    if backend == "torch":
        import torch  # noqa: PLC0415 - the backend itself, already imported by Keras

        return torch.cuda.is_available()
    if backend == "jax":
        import jax  # noqa: PLC0415 - the backend itself, already imported by Keras

        return jax.default_backend() == "gpu"
    return False


def set_tf32(enabled: bool) -> None:
    """TF32 matmuls on or off for this process (off: float32 stays float32 on Ampere/Hopper, §11)."""
    backend = keras().backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf  # noqa: PLC0415 - the backend itself

        tf.config.experimental.enable_tensor_float_32_execution(enabled)
    elif backend == "torch":
        import torch  # noqa: PLC0415 - the backend itself

        torch.backends.cuda.matmul.allow_tf32 = enabled
        torch.backends.cudnn.allow_tf32 = enabled
    elif backend == "jax":
        import jax  # noqa: PLC0415 - the backend itself

        jax.config.update("jax_default_matmul_precision", "tensorfloat32" if enabled else "highest")


def fresh(device: str, seed: int, tf32: bool) -> bool:
    """Start a case: fresh layer names and global state, the GPU check, TF32, the seed.

    Returns whether a GPU is visible; a gpu case without one raises NoGPU."""
    global _cases_since_gc
    k = keras()
    _cases_since_gc += 1
    full_gc = _cases_since_gc >= GC_EVERY
    if full_gc:
        _cases_since_gc = 0
    if "free_memory" in inspect.signature(k.backend.clear_session).parameters:  # Keras 3.3 and later
        k.backend.clear_session(free_memory=False)
    else:  # Keras 3.0-3.2 and tf_keras: no such argument
        k.backend.clear_session()
    if full_gc:
        gc.collect()
    gpu = gpu_available()
    if device == "gpu" and not gpu:
        raise NoGPU(f"gpu case: no GPU visible to Keras ({flavour()})")
    set_tf32(tf32)
    _set_seed(k, seed)
    return gpu


def _set_seed(k, seed: int) -> None:
    """keras.utils.set_random_seed, without the TensorFlow import it makes wherever TensorFlow is
    installed (to seed tf.data): Keras 3 on jax or torch never loads TensorFlow for a case."""
    if k.backend.backend() == "tensorflow" or "tensorflow" in sys.modules:
        k.utils.set_random_seed(seed)
        return
    sys.modules["tensorflow"] = None  # import tensorflow raises ImportError: Keras's LazyModule says unavailable
    try:
        k.utils.set_random_seed(seed)
    finally:
        del sys.modules["tensorflow"]


def device_scope(device: str):
    """The device context for a case: keras.device, or tf.device under tf_keras (torch: see below)."""
    k = keras()
    if not hasattr(k, "device"):  # tf_keras, and Keras 3.0 (keras.device came in 3.1)
        return _backend_device(k.backend.backend(), device)
    if k.backend.backend() == "torch" and device == "cpu":
        # Keras 3.15 torch: under device "cpu:0" a non-float variable (the seed generator's
        # state) is moved with Parameter.to("cpu:0"), comes back a plain tensor, and
        # ParameterDict then fails "Only Tensors of floating point ... can require gradients".
        return k.device("cpu")
    return k.device(f"{device}:0")


def _backend_device(backend: str, device: str):
    """A device scope without keras.device: the backend's own."""
    if backend == "tensorflow":
        import tensorflow as tf  # noqa: PLC0415 - the backend itself, already imported by Keras

        return tf.device(f"/{device.upper()}:0")
    if backend == "jax":
        import jax  # noqa: PLC0415 - the backend itself, already imported by Keras

        return jax.default_device(jax.devices(device)[0])
    return contextlib.nullcontext()  # torch: Keras 3.0 places tensors on its one default device


def to_tensor(value, dtype: str | None = None):
    """A NumPy array as a tensor of the backend."""
    if flavour() == "tf_keras":
        import tensorflow as tf  # noqa: PLC0415 - tf_keras refuses numpy initial states (§8)

        return tf.convert_to_tensor(value, dtype=dtype)
    return keras().ops.convert_to_tensor(value, dtype=dtype)


def to_numpy(tensor) -> np.ndarray:
    """A backend tensor as a NumPy array."""
    if flavour() == "tf_keras":
        return np.asarray(tensor)
    return np.asarray(keras().ops.convert_to_numpy(tensor))


def tensor_device(tensor) -> str:
    """``gpu`` or ``cpu``: where a TF, torch or JAX tensor actually lives."""
    dev = getattr(tensor, "device", None)
    if callable(dev):
        dev = dev()
    if dev is None and hasattr(tensor, "devices"):
        dev = next(iter(tensor.devices()), None)
    text = f"{dev} {getattr(dev, 'platform', '')} {getattr(dev, 'type', '')}".lower()
    return "gpu" if ("gpu" in text or "cuda" in text or "rocm" in text) else "cpu"
