"""Process set-up before Keras is imported: which Keras this process uses, and which GPU.

Both are chosen through environment variables that Keras, TensorFlow and CUDA read once, at
import, so everything here runs before the first Keras import and never imports Keras itself.
One flavour per process: Keras 3 on TensorFlow (the default), on JAX or on torch, or legacy
Keras 2 through ``tf_keras`` (docs/semantics.md: "tfk:" sources).
"""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, MutableMapping
from pathlib import Path

from .errors import UsageError

FLAVOURS = ("tensorflow", "jax", "torch", "tf_keras")
DEFAULT = "tensorflow"

# What each flavour needs importable, and the pyproject extra that installs it.
_PACKAGES = {"tensorflow": ("tensorflow", "tensorflow"), "jax": ("jax", "jax"),
             "torch": ("torch", "torch"), "tf_keras": ("tf_keras", "tfkeras")}
# Modules whose import fixes the flavour for the rest of the process.
_KERAS_MODULES = ("keras", "tf_keras", "tensorflow")
_TRUE = ("1", "true", "yes")


def env_for(flavour: str) -> dict[str, str]:
    """The environment variables that select a flavour (Keras reads them at import)."""
    if flavour not in FLAVOURS:
        raise UsageError(f"--keras {flavour}: unknown Keras flavour (expected one of {', '.join(FLAVOURS)})")
    if flavour == "tf_keras":
        # TF_USE_LEGACY_KERAS makes tf.keras the tf_keras package; the harness imports tf_keras itself.
        return {"TF_USE_LEGACY_KERAS": "1", "KERAS_BACKEND": "tensorflow"}
    return {"KERAS_BACKEND": flavour, "TF_USE_LEGACY_KERAS": "0"}


# Said when a run needs Keras and no backend is installed: every extra it names exists (pyproject).
NO_BACKEND = ("no Keras backend is installed: pip install 'keras-equiv[tensorflow]' (or keras-equiv[jax], "
              "keras-equiv[torch], keras-equiv[tfkeras])")


def installed(module: str) -> bool:
    """Whether ``module`` can be imported here (nothing is imported)."""
    return importlib.util.find_spec(module) is not None


def default_flavour(is_installed: Callable[[str], bool] = installed) -> str | None:
    """The flavour of a run given no --keras and nothing in the environment: tensorflow where it is
    installed, else jax, else torch (None: no Keras backend is installed)."""
    return next((f for f in ("tensorflow", "jax", "torch") if is_installed(_PACKAGES[f][0])), None)


def _asked(env: Mapping[str, str]) -> str | None:
    if env.get("TF_USE_LEGACY_KERAS", "").strip().lower() in _TRUE:
        return "tf_keras"
    backend = env.get("KERAS_BACKEND", "").strip().lower()
    return backend if backend in FLAVOURS else None


def current(environ: Mapping[str, str] | None = None, is_installed: Callable[[str], bool] = installed) -> str:
    """The flavour the environment asks for (Keras 3 also reads ~/.keras/keras.json; env wins),
    else default_flavour (DEFAULT when nothing is installed: Keras's own default)."""
    return _asked(os.environ if environ is None else environ) or default_flavour(is_installed) or DEFAULT


def wanted(environ: Mapping[str, str] | None = None, is_installed: Callable[[str], bool] = installed) -> str | None:
    """The flavour a run gets with no --keras: the environment's, else the installed default (None:
    nothing asked for and no backend installed)."""
    return _asked(os.environ if environ is None else environ) or default_flavour(is_installed)


def requested(environ: Mapping[str, str] | None = None, is_installed: Callable[[str], bool] = installed) -> str:
    """wanted(), for a command that must run Keras: UsageError (NO_BACKEND) when there is none."""
    flavour = wanted(environ, is_installed)
    if flavour is None:
        raise UsageError(NO_BACKEND)
    return flavour


def missing_package(flavour: str, is_installed: Callable[[str], bool] = installed) -> str | None:
    """Why a flavour cannot run here (its package is not installed), or None; imports nothing."""
    module, extra = _PACKAGES[flavour]
    if not is_installed(module):
        return f"Keras flavour {flavour} needs the {module} package: pip install 'keras-equiv[{extra}]'"
    return None


def select(flavour: str | None, environ: MutableMapping[str, str] | None = None,
           modules: Mapping[str, object] | None = None) -> str:
    """Set the environment for ``flavour`` (None: keep what the environment says) and return it.

    Refuses to switch once Keras or TensorFlow is imported: the flavour is fixed at import, and
    a process that silently kept the old one would report results under the wrong name.
    """
    env = os.environ if environ is None else environ
    loaded = [m for m in _KERAS_MODULES if m in (sys.modules if modules is None else modules)]
    if flavour is None:
        return current(env)
    wanted = env_for(flavour)
    if loaded and current(env) != flavour:
        raise UsageError(f"--keras {flavour}: {loaded[0]} is already imported as {current(env)} in this "
                         f"process; one Keras flavour per process (start a new one)")
    # JAX_ENABLE_X64 is left alone: Keras 3 computes float64 in float32 on JAX either way
    # (cases/flavours/backends.yaml flavour-float64-jax-torch), and x64 breaks float32 GRUs
    # without a bias ("scan body function carry input and carry output must have equal types").
    env.update(wanted)
    return flavour


# ---------------------------------------------------------------- jax's compilation cache

JAX_CACHE_ENV = "KERAS_EQUIV_JAX_CACHE"  # a folder, or "off"; unset: the user cache folder below
JAX_CACHE_OFF = ("off", "0", "no", "false", "")
# Programs that took less than this to compile are not worth a file each (jax's own default is 1 s,
# which keeps out most of one case's scans; measured here: 0.1 s keeps about 60 programs for the
# 35 seed cases, under 1 MiB).
JAX_CACHE_MIN_COMPILE_SECONDS = 0.1


def jax_cache_settings(environ: Mapping[str, str] | None = None) -> dict[str, object]:
    """The jax.config settings of the persistent compilation cache (empty: off, or the user set
    JAX_COMPILATION_CACHE_DIR, which jax then reads itself).  XLA compiles the programs that are the
    same for many cases (one recurrent loop per layer class, shape and dtype) once per machine, not
    once per case and run."""
    env = os.environ if environ is None else environ
    if env.get("JAX_COMPILATION_CACHE_DIR"):
        return {}
    wanted = env.get(JAX_CACHE_ENV)
    if wanted is not None and wanted.strip().lower() in JAX_CACHE_OFF:
        return {}
    if wanted is None:
        base = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME", "~")).expanduser() / ".cache")
        wanted = str(Path(base) / "keras-equiv" / "jax")
    return {"jax_compilation_cache_dir": wanted,
            "jax_persistent_cache_min_compile_time_secs": JAX_CACHE_MIN_COMPILE_SECONDS,
            "jax_persistent_cache_min_entry_size_bytes": 0}


# ---------------------------------------------------------------- the reference per flavour

# Activation names whose formula differs by flavour: the reference key to use instead.
# Keras 2 hard_sigmoid is 0.2x+0.5 clipped (tfk: tf_keras/src/backend.py hard_sigmoid),
# Keras 3's is x/6+0.5 (docs/semantics.md, edge case 9).
_REFERENCE_ACTIVATIONS = {"tf_keras": {"hard_sigmoid": "hard_sigmoid_keras2"}}
_ACTIVATION_KEYS = ("activation", "recurrent_activation")


def reference_cfg(cfg: Mapping, flavour: str) -> dict:
    """The layer config (with defaults) as the reference must read it under ``flavour``."""
    renames = _REFERENCE_ACTIVATIONS.get(flavour)
    out = dict(cfg)
    if not renames:
        return out
    for key in _ACTIVATION_KEYS:
        if out.get(key) in renames:
            out[key] = renames[out[key]]
    for key in ("layer", "backward_layer"):
        if isinstance(out.get(key), Mapping):
            out[key] = reference_cfg(out[key], flavour)
    return out


# ---------------------------------------------------------------- one GPU per xdist worker

GPU_COUNT_ENV = "KERAS_EQUIV_GPUS"
_WORKER = re.compile(r"^gw(\d+)$")


def gpu_count(environ: Mapping[str, str] | None = None, smi_output: str | None = None) -> int:
    """GPUs this host offers, without importing TensorFlow (which would fix the device list).

    KERAS_EQUIV_GPUS wins; else CUDA_VISIBLE_DEVICES when set; else the ``GPU n:`` lines of
    ``nvidia-smi -L``; else 0.
    """
    env = os.environ if environ is None else environ
    if env.get(GPU_COUNT_ENV, "").strip():
        try:
            return max(0, int(env[GPU_COUNT_ENV]))
        except ValueError:
            raise UsageError(f"{GPU_COUNT_ENV}={env[GPU_COUNT_ENV]!r}: expected a number of GPUs") from None
    visible = _visible_list(env)
    if visible is not None:
        return len(visible)
    if smi_output is None:
        smi_output = _nvidia_smi()
    return sum(1 for line in smi_output.splitlines() if re.match(r"^GPU \d+:", line))


def _visible_list(env: Mapping[str, str]) -> list[str] | None:
    raw = env.get("CUDA_VISIBLE_DEVICES")
    if raw is None:
        return None
    return [d.strip() for d in raw.split(",") if d.strip() and d.strip() != "-1"]


def _nvidia_smi() -> str:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return ""
    try:
        return subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=20, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def worker_gpu(worker: str, count: int, visible: list[str] | None = None) -> str | None:
    """The CUDA_VISIBLE_DEVICES value for an xdist worker: ``gwN`` gets GPU N mod count.

    ``visible`` (an existing CUDA_VISIBLE_DEVICES list) is indexed instead of 0..count-1, so
    ``CUDA_VISIBLE_DEVICES=2,3 pytest -n 4`` spreads the workers over GPUs 2 and 3 only, and
    ``CUDA_VISIBLE_DEVICES=-1`` (an empty list) keeps them hidden whatever KERAS_EQUIV_GPUS says.
    """
    match = _WORKER.match(worker or "")
    if match is None or count <= 0:
        return None
    if visible is not None:  # never index past the list, whatever count says; empty (-1): no GPU at all
        return visible[int(match.group(1)) % len(visible)] if visible else None
    return str(int(match.group(1)) % count)


def pin_worker_gpu(worker: str | None, environ: MutableMapping[str, str] | None = None,
                   smi_output: str | None = None) -> str | None:
    """In xdist worker ``worker`` (gw0, gw1, ...), before TensorFlow is imported: see one GPU only.

    Returns the GPU pinned, or None (not a worker, or no GPU).  The worker id comes from the
    worker's own config (``config.workerinput``), not PYTEST_XDIST_WORKER, which a pytest run
    started from inside a worker inherits.  Several workers may share one GPU, so TensorFlow and
    JAX are told not to take all of its memory up front.
    """
    env = os.environ if environ is None else environ
    if not worker:
        return None
    count = gpu_count(env, smi_output)
    gpu = worker_gpu(worker, count, _visible_list(env))
    if gpu is None:
        return None
    env["CUDA_VISIBLE_DEVICES"] = gpu
    env.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    return gpu
