"""Loading a user's saved model: recognise the file, explain legacy CuDNN layers, drop tf_keras's time_major.

A ``.keras`` zip or a legacy ``.h5`` is loaded with ``compile=False``.  An ``.h5`` is first read
with h5py alone: a file without a ``model_config`` is weights only, and a model holding the
tf.keras 1.x/2.x CuDNNLSTM/CuDNNGRU layers is refused with how to convert it.  A legacy ``.h5``
whose config holds classes Keras cannot rebuild (the mask operations Keras 3 itself writes for a
masking functional model) is no model but an ``Unrebuildable``: from_file.py checks its layers
alone.  Every other way the file can be wrong is a CheckModelError (exit 2), never a traceback.
"""
from __future__ import annotations

import importlib
import inspect
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import session
from ..errors import CheckModelError, KerasRaised
from ..keras_layer import keras_call
from .report import first_line

CUDNN_LEGACY = ("CuDNNLSTM", "CuDNNGRU")
# The loader keras.saving.load_model itself uses for legacy .h5 configs (Keras 3; the public
# model_from_json does not accept the legacy batch_input_shape and friends).
LEGACY_CONFIG_LOADER = "keras.src.legacy.saving.saving_utils"
# Where Keras 3 keeps its operations (NotEqual, Any, ...): a functional model computing a mask
# holds them as nodes, which the legacy .h5 config then names like layers.
KERAS_OPS = "keras.src.ops"
MODEL_CLASSES = ("Functional", "Sequential", "Model")
WRAPPED = ("layer", "backward_layer")  # the config keys of the layers a wrapper holds


@dataclass(frozen=True)
class Unrebuildable:
    """A legacy .h5 whose config holds classes Keras cannot rebuild: what can still be read from it."""

    config: dict
    classes: tuple[str, ...]  # the class names Keras cannot rebuild, in the config's order
    operations: tuple[str, ...]  # those of them that are Keras operations (the mask ops)
    keras_said: str  # the first sentence of Keras's own error


@dataclass(frozen=True)
class Loaded:
    """The model (None when Keras cannot rebuild it), notes on how it was loaded, and why not."""

    model: Any
    notes: list[str] = field(default_factory=list)
    unrebuildable: Unrebuildable | None = None


def model_file(model_path: str) -> Path:
    """The model's path, once it is known to be a file."""
    path = Path(model_path)
    if not path.exists():
        raise CheckModelError(f"{model_path}: no such file")
    if path.is_dir():
        raise CheckModelError(f"{model_path}: is a directory, not a saved model file")
    return path


def _is_hdf5(path: Path) -> bool:
    import h5py  # noqa: PLC0415 - h5py loads only when a model is checked

    try:
        return bool(h5py.is_hdf5(path))
    except OSError:
        return False


def h5_config(path: Path) -> dict | None:
    """The model_config of a legacy .h5 file, read with h5py alone (None: no such attribute)."""
    import h5py  # noqa: PLC0415 - h5py loads only when a model is checked

    try:
        with h5py.File(path, "r") as f:
            raw = f.attrs.get("model_config")
    except OSError as exc:
        raise CheckModelError(f"{path}: cannot read it as HDF5 ({exc})") from None
    if raw is None:
        return None
    try:
        return json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CheckModelError(f"{path}: its model_config attribute is not JSON ({exc})") from None


def configs(node: Any) -> Iterator[dict]:
    """Every {class_name, config} mapping in a saved model config, nested models included."""
    if isinstance(node, dict):
        if "class_name" in node and isinstance(node.get("config"), dict):
            yield node
        for value in node.values():
            yield from configs(value)
    elif isinstance(node, list):
        for value in node:
            yield from configs(value)


def layer_nodes(config: dict) -> Iterator[tuple[str, dict, str]]:
    """(path, node, weights group) for every layer of a saved model config that is not itself a
    model, nested models included; the path is walk()'s (``model/sub/layer``), the group the name
    of the top-level layer whose ``model_weights`` group holds its weights."""
    def visit(model_node: dict, path: str, top: str | None) -> Iterator[tuple[str, dict, str]]:
        entries = model_node["config"].get("layers")
        for node in entries if isinstance(entries, list) else []:
            if not isinstance(node, dict) or not isinstance(node.get("config"), dict):
                continue
            name = str(node["config"].get("name") or node.get("name") or node.get("class_name"))
            if node.get("class_name") in MODEL_CLASSES:
                yield from visit(node, f"{path}/{name}", top or name)
            else:
                yield f"{path}/{name}", node, top or name

    if isinstance(config, dict) and isinstance(config.get("config"), dict):
        yield from visit(config, str(config["config"].get("name", "model")), None)


def _class_names(config: dict) -> Iterator[str]:
    for _, node, _ in layer_nodes(config):
        yield node.get("class_name", "")
        for key in WRAPPED:
            inner = node["config"].get(key)
            if isinstance(inner, dict) and "class_name" in inner:
                yield inner["class_name"]


def _keras_operations() -> set[str]:
    """The class names of Keras 3's operations (empty for tf_keras, which has none)."""
    try:
        ops = importlib.import_module(KERAS_OPS)
        base = importlib.import_module(f"{KERAS_OPS}.operation").Operation
    except ImportError:
        return set()
    return {name for name, value in vars(ops).items() if inspect.isclass(value) and issubclass(value, base)}


def unrebuildable(config: dict, keras_said: str) -> Unrebuildable | None:
    """The layer classes a saved config names that this Keras has no class for (None: there are none)."""
    keras = session.keras()
    missing: list[str] = []
    for name in _class_names(config):
        known = name in MODEL_CLASSES or hasattr(keras.layers, name) or \
            keras.saving.get_registered_object(name) is not None
        if not known and name not in missing:
            missing.append(name)
    if not missing:
        return None
    ops = _keras_operations()
    return Unrebuildable(config, tuple(missing), tuple(n for n in missing if n in ops), keras_said)


def cudnn_explanation(path: Path, found: list[dict]) -> str:
    """Why a model with legacy CuDNNLSTM/CuDNNGRU layers cannot be checked, and how to convert it."""
    names = ", ".join(f"'{c['config'].get('name', '?')}' ({c['class_name']}, units={c['config'].get('units', '?')})"
                      for c in found)
    lines = [
        (f"{path}: legacy cuDNN layer(s) {names}; Keras 3 cannot load CuDNNLSTM/CuDNNGRU and has no "
         "conversion for their weights (KERAS_RNN_SEMANTICS.md §11)."),
        "  They are tf.keras 1.x/2.x GPU-only layers whose weights are in cuDNN's layout, not LSTM's/GRU's:",
        ("  - CuDNNLSTM bias is (8U,) = [input i,f,c,o | recurrent i,f,c,o]; the LSTM bias (4U,) is their "
         "sum b[:4U] + b[4U:] (back: tile(0.5*b, 2))."),
        ("  - CuDNNGRU bias is (6U,) = reshape to (2, 3U), the bias of GRU(reset_after=True); "
         "it cannot become GRU(reset_after=False)."),
        ("  - Kernels are cuDNN's raw per-gate layout: each recurrent-kernel gate block is transposed, "
         "each input-kernel gate block k is stored as k.T.reshape(k.shape, order='F')."),
        ("  To check it: in tf_keras (Keras 2), rebuild the same model with LSTM(units, ...) / GRU(units, "
         "reset_after=True) (sigmoid/tanh, the defaults) in place of the CuDNN layers, call "
         "model.load_weights(this file) (tf_keras converts the layouts: tf_keras/src/saving/legacy/"
         "hdf5_format.py _convert_rnn_weights), save it as .h5 and run check-model on that file."),
    ]
    return "\n".join(lines)


def drop_time_major(config: dict) -> list[str]:
    """tf_keras writes time_major into RNN configs, which Keras 3 rejects (§10): drop it when false.

    Returns the names of the layers it was dropped from; time_major=True is a CheckModelError."""
    dropped = []
    for node in configs(config):
        cfg = node["config"]
        if "time_major" in cfg:
            if cfg["time_major"]:
                raise CheckModelError(f"layer '{cfg.get('name')}' has time_major=True, which Keras 3 does not "
                                      "have (KERAS_RNN_SEMANTICS.md §10); check it with tf_keras")
            del cfg["time_major"]
            dropped.append(cfg.get("name", node["class_name"]))
    return dropped


def _cannot_load(path: Path, raised: KerasRaised) -> CheckModelError:
    return CheckModelError(f"{path}: Keras {session.keras().__version__} cannot load it: "
                           f"{first_line(raised.original)}")


def load(path: Path) -> Loaded:
    """The model (compile=False) and notes on anything done to load it; no model but an
    Unrebuildable for a legacy .h5 naming classes Keras cannot rebuild."""
    keras = session.keras()
    config = None
    if _is_hdf5(path):
        config = h5_config(path)
        if config is None:
            raise CheckModelError(f"{path}: HDF5 file without a model_config attribute: not a saved model "
                                  "(a weights-only file needs the model's code to rebuild it)")
        found = [c for c in configs(config) if c["class_name"] in CUDNN_LEGACY]
        if found:
            raise CheckModelError(cudnn_explanation(path, found))
    elif not zipfile.is_zipfile(path):
        raise CheckModelError(f"{path}: not a saved Keras model (neither a .keras zip nor an HDF5 file)")
    try:
        with keras_call("loading the model"):
            return Loaded(keras.saving.load_model(path, compile=False))
    except KerasRaised as raised:  # any load failure is the user's file: exit 2, one line
        if config is not None and "time_major" in str(raised.original) and session.flavour() != "tf_keras":
            return _load_without_time_major(path, config)
        found = None if config is None else unrebuildable(config, first_line(raised.original).split(". ")[0])
        if found is not None:
            return Loaded(None, unrebuildable=found)
        raise _cannot_load(path, raised) from None


def _load_without_time_major(path: Path, config: dict) -> Loaded:
    dropped = drop_time_major(config)
    try:
        with keras_call("loading the model"):
            model = importlib.import_module(LEGACY_CONFIG_LOADER).model_from_config(config)
            model.load_weights(path)
    except KerasRaised as raised:
        raise _cannot_load(path, raised) from None
    note = (f"tf_keras config key time_major=false dropped from {', '.join(dropped)} "
            "(Keras 3 rejects it; false is Keras 3's only layout)")
    return Loaded(model, [note])
