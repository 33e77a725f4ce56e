"""The arrays check-model feeds the model: the ``--input`` file, or seeded random inputs.

An ``--input`` file is a ``.npy`` array or an ``.h5`` holding exactly one dataset, of the
model's one input's shape.  Without one, every model input gets seeded random values; when the
model has a Masking or Embedding(mask_zero) layer, row 2 is padded at its end so the masked
path of each recurrent layer is the one checked.  A layer checked alone from a file's weights
(from_file.py) gets the same: seeded normal sequences and, when the model computes a mask, a mask
with the same padded steps.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import CheckModelError
from ..report import plural
from .calls import walk

RANDOM_SEED = 0
RANDOM_BATCH = 2
RANDOM_TIMESTEPS = 5  # for a model whose time axis is None


def padded_steps(steps: int) -> int:
    """How many steps at the end of row 2 are padding (masked) in random inputs."""
    return max(1, steps // 3)


def read_input(input_path: str) -> np.ndarray:
    """The array in an --input file (.npy, or .h5 with exactly one dataset)."""
    path = Path(input_path)
    if not path.is_file():
        raise CheckModelError(f"--input {input_path}: no such file")
    if path.suffix == ".npy":
        try:
            return np.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise CheckModelError(f"--input {input_path}: not a readable .npy array ({exc})") from None
    if path.suffix in (".h5", ".hdf5"):
        import h5py  # noqa: PLC0415 - h5py loads only when an .h5 input is given

        datasets: list = []
        try:
            with h5py.File(path, "r") as f:
                f.visititems(lambda name, obj: datasets.append(name) if isinstance(obj, h5py.Dataset) else None)
                if len(datasets) != 1:
                    raise CheckModelError(f"--input {input_path}: holds {len(datasets)} datasets "
                                          f"({', '.join(datasets[:5]) or 'none'}); expected exactly one")
                return np.asarray(f[datasets[0]][()])
        except OSError as exc:
            raise CheckModelError(f"--input {input_path}: cannot read it as HDF5 ({exc})") from None
    raise CheckModelError(f"--input {input_path}: expected a .npy or .h5 file")


def shape_text(shape) -> str:
    """A shape as Python writes a tuple, None for an unknown size: ``(None, 5, 3)``, ``(4,)``."""
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _dtype(spec) -> np.dtype:
    """The NumPy dtype of an input spec (Keras 3: a name; tf_keras: a tf.DType, which has one)."""
    return np.dtype(getattr(spec.dtype, "name", spec.dtype))


def model_inputs(model, input_path: str | None) -> tuple[list[np.ndarray], str]:
    """The arrays fed to the model, and a line saying what they are."""
    try:
        specs = list(model.inputs)
    except (AttributeError, ValueError):
        specs = []
    if not specs:
        raise CheckModelError("the model has no defined inputs (a Sequential saved before it was built?)")
    if input_path is not None:
        if len(specs) != 1:
            raise CheckModelError(f"--input gives one array but the model has {len(specs)} inputs")
        spec, arr = specs[0], read_input(input_path)
        want = tuple(spec.shape)
        if arr.ndim != len(want) or any(w is not None and w != g for w, g in zip(want, arr.shape)):
            raise CheckModelError(f"--input {input_path}: shape {shape_text(arr.shape)} does not match the "
                                  f"model's input shape {shape_text(want)}")
        dtype = _dtype(spec)
        if dtype.kind in "iu" and arr.dtype.kind == "f" and not np.all(np.mod(arr, 1) == 0):
            raise CheckModelError(f"--input {input_path}: the model takes integer ids ({dtype}) but the file "
                                  "holds non-integer values")
        return [arr.astype(dtype)], f"{input_path} {shape_text(arr.shape)} {dtype}"
    return random_inputs(model, specs)


def random_inputs(model, specs) -> tuple[list[np.ndarray], str]:
    """Seeded inputs of the right shape; row 2 padded at the end when a Masking/Embedding mask exists,
    so the mask path is exercised."""
    rng = np.random.default_rng(RANDOM_SEED)
    leaves = [layer for _, layer in walk(model, model.name)]
    embeddings = [layer for layer in leaves if type(layer).__name__ == "Embedding"]
    vocab = min((layer.input_dim for layer in embeddings), default=10)
    mask_zero = any(getattr(layer, "mask_zero", False) for layer in embeddings)
    masking = [layer.mask_value for layer in leaves if type(layer).__name__ == "Masking"]
    arrays, texts = [], []
    for spec in specs:
        batch = spec.shape[0] or RANDOM_BATCH  # a stateful model fixes its batch size
        shape = (batch,) + tuple(RANDOM_TIMESTEPS if d is None else d for d in tuple(spec.shape)[1:])
        dtype = _dtype(spec)
        padded = ""
        steps = shape[1] if len(shape) >= 2 else 0
        pad = padded_steps(steps)
        if dtype.kind in "iu":
            arr = rng.integers(1 if mask_zero else 0, vocab, size=shape).astype(dtype)
            kind = f"integer ids in [{1 if mask_zero else 0}, {vocab})"
            if mask_zero and steps >= 2:
                arr[1, steps - pad:] = 0
                padded = f"; row 2 padded with id 0 at its last {pad} steps (mask_zero)"
        else:
            arr = rng.standard_normal(shape).astype(dtype)
            kind = "normal"
            if masking and len(shape) >= 3 and steps >= 2:
                arr[1, steps - pad:] = masking[0]
                padded = f"; row 2 set to the Masking value {masking[0]:g} at its last {pad} steps"
        arrays.append(arr)
        texts.append(f"random {kind} {shape_text(shape)} {dtype}{padded}")
    return arrays, f"{'; '.join(texts)} (seed {RANDOM_SEED})"


def layer_inputs(features: int, dtype: str, masked: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Seeded sequences (batch, timesteps, features) for one layer run alone, and a mask with row 2's
    last steps masked when ``masked`` (the same for every layer: each starts from the seed)."""
    rng = np.random.default_rng(RANDOM_SEED)
    x = rng.standard_normal((RANDOM_BATCH, RANDOM_TIMESTEPS, features)).astype(dtype)
    if not masked:
        return x, None
    mask = np.ones((RANDOM_BATCH, RANDOM_TIMESTEPS), dtype=bool)
    mask[1, RANDOM_TIMESTEPS - padded_steps(RANDOM_TIMESTEPS):] = False
    return x, mask


def layer_inputs_text(masked: bool) -> str:
    """What layer_inputs gives, in words, for the report's input line."""
    pad = padded_steps(RANDOM_TIMESTEPS)
    text = f"random normal ({RANDOM_BATCH}, {RANDOM_TIMESTEPS}, features) for each layer alone (seed {RANDOM_SEED})"
    if masked:
        text += f"; a mask with row 2's last {plural(pad, 'step')} masked (the model computes a mask)"
    return text
