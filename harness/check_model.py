"""``keras-equiv check-model MODEL``: check the recurrent layers of a user's saved model.

Every LSTM/GRU/SimpleRNN/Bidirectional layer, in nested models too, is run on the activations the
model really gives it (the input file, or seeded random inputs) and compared with the NumPy
reference on the layer's own weights; then the model's parameter count is checked three ways.

How a layer's inputs are found: the model runs once, eagerly, with each recurrent layer's
``call`` wrapped to record what Keras hands it (sequences, mask, initial_state, training) and
what it returns.  A sub-model from the model inputs to ``layer.input`` would give the same
activation but not always the same mask: under Keras's call rules (KERAS_RNN_SEMANTICS.md §6) a
layer called with tensor ``initial_state`` gets no mask although its input carries one (a decoder
fed an encoder's states).  Recording the call sees what Keras really passes, at any depth of
nesting, for every call of a shared layer, in one forward pass.  The layer is then run again
alone on exactly that, in Keras and in the reference.

Keras is imported inside functions only (DESIGN.md: only a case run pays for it).
"""
from __future__ import annotations

import argparse
import contextlib
import inspect
import io
import json
import re
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Iterator

import numpy as np

from . import keras_api as api
from . import reference
from .compare import Comparison, compare
from .errors import HarnessError
from .tolerances import DEFAULT_TOLERANCE, Tolerance

CHECKED = ("LSTM", "GRU", "SimpleRNN", "Bidirectional")
CUDNN_LEGACY = ("CuDNNLSTM", "CuDNNGRU")
RANDOM_SEED = 0
RANDOM_BATCH = 2
RANDOM_TIMESTEPS = 5  # for a model whose time axis is None


class CheckModelError(HarnessError):
    """The model or the input file cannot be checked (exit 2); the message says why."""


@dataclass
class LayerCall:
    """What Keras handed one recurrent layer inside the model, and what the layer returned."""

    sequences: np.ndarray
    mask: np.ndarray | None
    initial_state: list[np.ndarray] | None
    training: Any
    outputs: list[np.ndarray]


@dataclass
class LayerResult:
    """The verdict for one recurrent layer (pass, fail, error, unsupported, not called)."""

    path: str
    cls: str
    verdict: str
    comparisons: list[Comparison] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    message: str = ""

    @property
    def worst(self) -> Comparison | None:
        return max((c for c in self.comparisons if c.tolerance), key=lambda c: c.ratio, default=None)


# ---------------------------------------------------------------- command line

def add_arguments(parser: argparse.ArgumentParser) -> None:
    """MODEL, --input, --device and --json for the ``check-model`` subcommand."""
    parser.add_argument("model", metavar="MODEL", help="a saved Keras model: .keras, or legacy .h5")
    parser.add_argument("--input", metavar="FILE.npy|FILE.h5",
                        help="the model input to check with (.npy, or .h5 holding one dataset); "
                             f"default: seeded random inputs, batch {RANDOM_BATCH}")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu",
                        help="where Keras runs the model (gpu: TF32 off, as for cases)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")


def main(args: argparse.Namespace) -> int:
    """Print the report; 0 every layer and the parameter count agree, 1 something failed, 2 bad input."""
    try:
        report = check(args.model, getattr(args, "input", None), getattr(args, "device", "cpu"))
    except CheckModelError as exc:
        print(f"keras-equiv check-model: error: {exc}", file=sys.stderr)
        return 2
    print(report.text())
    if getattr(args, "json", None):
        Path(args.json).write_text(json.dumps(report.to_json(), indent=1), encoding="utf-8")
    return 0 if report.passed else 1


# ---------------------------------------------------------------- the check

@dataclass
class Report:
    """Everything check-model found, printable and JSON-able."""

    model_path: str
    header: str
    input_text: str
    layers: list[LayerResult]
    params: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.verdict not in ("fail", "error") for r in self.layers) and self.params["agree"]

    def text(self) -> str:
        lines = [self.header, f"  input: {self.input_text}"]
        lines += [f"  note:  {n}" for n in self.notes]
        width = max((len(r.path) for r in self.layers), default=10)
        for r in self.layers:
            lines.append(f"{r.verdict.upper():11} {r.path:<{width}}  {r.cls:<13}  {_detail(r)}")
        for r in self.layers:
            if r.verdict in ("fail", "error"):
                lines += _failure_lines(r)
        p = self.params
        lines.append(f"params: count_params() {p['count_params']}, summary \"Total params\" {p['summary']}, "
                     f"formulas {p['formulas']} (recurrent by formula {p['recurrent']} + other layers "
                     f"{p['other']})  {'OK' if p['agree'] else 'MISMATCH'}")
        counts: dict[str, int] = {}
        for r in self.layers:
            counts[r.verdict] = counts.get(r.verdict, 0) + 1
        tally = ", ".join(f"{n} {v}" for v, n in counts.items()) or "none found"
        lines.append(f"{len(self.layers)} recurrent layer calls: {tally}; "
                     f"{'OK' if self.passed else 'FAILED'}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {"model": self.model_path, "header": self.header, "input": self.input_text,
                "notes": self.notes, "params": self.params, "passed": self.passed,
                "layers": [{"path": r.path, "class": r.cls, "verdict": r.verdict, "notes": r.notes,
                            "message": r.message,
                            "outputs": [{"name": c.name, "against": c.against, "passed": c.passed,
                                         "problem": c.problem, "max_abs": c.max_abs,
                                         "atol": c.tolerance.atol if c.tolerance else None,
                                         "rtol": c.tolerance.rtol if c.tolerance else None}
                                        for c in r.comparisons]}
                           for r in self.layers]}


def _detail(r: LayerResult) -> str:
    if r.verdict in ("pass", "fail"):
        comp = r.worst
        text = "-"
        if comp is not None and comp.worst:
            _, _, _, err, allowed = comp.worst[0]
            text = f"err {err:.1e} / tol {allowed:.1e}"
        return "  ".join([text, *r.notes])
    return "  ".join([r.message.splitlines()[0][:160] if r.message else "", *r.notes])


def _failure_lines(r: LayerResult) -> list[str]:
    lines = [f"\n{r.path} ({r.cls}): {r.verdict}"]
    if r.message:
        lines.append("  " + r.message.replace("\n", "\n  "))
    for comp in r.comparisons:
        if comp.passed:
            continue
        lines.append(f"  output '{comp.name}' vs {comp.against}: {comp.problem}")
        lines.append(f"    shape {comp.shape}, dtype {comp.dtype}, tolerance {comp.tolerance}")
        if comp.worst:
            lines.append(f"      {'index':<16}{'actual':>14}{'desired':>14}{'abs_err':>11}{'allowed':>11}")
            for idx, act, des, err, allowed in comp.worst:
                lines.append(f"      {list(idx)!s:<16}{act:>14.7g}{des:>14.7g}{err:>11.2e}{allowed:>11.2e}")
    return lines


def check(model_path: str, input_path: str | None = None, device: str = "cpu") -> Report:
    """Load the model, run it, check every recurrent layer call and the parameter count."""
    path = Path(model_path)
    if not path.exists():
        raise CheckModelError(f"{model_path}: no such file")
    if path.is_dir():
        raise CheckModelError(f"{model_path}: is a directory, not a saved model file")
    import keras  # noqa: PLC0415 - deliberately lazy

    from . import keras_build  # noqa: PLC0415 - imports Keras

    if device == "gpu":
        if not keras_build.gpu_available():
            raise CheckModelError("--device gpu: no GPU visible to Keras")
        keras_build.set_tf32(False)  # float32 stays float32 (§11), so the float32 tolerance holds
    with keras_build.device_scope(keras, device):
        model, notes = load(path)
        inputs, input_text = model_inputs(model, input_path)
        layers = list(walk(model, model.name))
        checked = [(p, layer) for p, layer in layers if type(layer).__name__ in CHECKED]
        calls = record_calls(model, [layer for _, layer in checked], inputs)
        results = []
        for p, layer in layers:
            why = unsupported(layer)
            if why:
                results.append(LayerResult(p, _class_label(layer), "unsupported", message=why))
            elif type(layer).__name__ in CHECKED:
                made = calls.get(id(layer), [])
                if not made:
                    results.append(LayerResult(p, type(layer).__name__, "not called",
                                               message="the model's forward pass never called it"))
                for index, call in enumerate(made, start=1):
                    label = p if len(made) == 1 else f"{p} (call {index})"
                    results.append(check_layer(label, layer, call, device))
        params = param_counts(model, layers, calls)
    backend = keras.backend.backend()
    version = __import__(backend).__version__ if backend in ("tensorflow", "jax", "torch") else ""
    header = f"check-model {model_path}: Keras {keras.__version__} ({backend} {version}), device {device}"
    return Report(str(model_path), header, input_text, results, params, notes)


# ---------------------------------------------------------------- loading

def _h5_config(path: Path) -> dict | None:
    """The model_config of a legacy .h5 file, read with h5py alone (None: no such attribute)."""
    import h5py  # noqa: PLC0415

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


def _configs(node: Any) -> Iterator[dict]:
    """Every {class_name, config} mapping in a saved model config, nested models included."""
    if isinstance(node, dict):
        if "class_name" in node and isinstance(node.get("config"), dict):
            yield node
        for value in node.values():
            yield from _configs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _configs(value)


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


def _drop_time_major(config: dict) -> list[str]:
    """tf_keras writes time_major into RNN configs, which Keras 3 rejects (§10): drop it when false."""
    dropped = []
    for node in _configs(config):
        cfg = node["config"]
        if "time_major" in cfg:
            if cfg["time_major"]:
                raise CheckModelError(f"layer '{cfg.get('name')}' has time_major=True, which Keras 3 does not "
                                      "have (KERAS_RNN_SEMANTICS.md §10); check it with tf_keras")
            del cfg["time_major"]
            dropped.append(cfg.get("name", node["class_name"]))
    return dropped


def _first_line(exc: BaseException) -> str:
    """``Type: first line`` of an exception; past Keras's "Exception encountered when calling" header."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in str(exc).splitlines()]
    lines = [line for line in lines if line]
    if len(lines) > 1 and lines[0].startswith("Exception encountered when calling"):
        lines = lines[1:]
    return f"{type(exc).__name__}: {lines[0][:300] if lines else ''}"


def load(path: Path):
    """The model (Keras 3, compile=False) and notes on anything done to load it."""
    import keras  # noqa: PLC0415

    is_h5 = False
    try:
        import h5py  # noqa: PLC0415

        is_h5 = h5py.is_hdf5(path)
    except OSError:
        pass
    config = None
    if is_h5:
        config = _h5_config(path)
        if config is None:
            raise CheckModelError(f"{path}: HDF5 file without a model_config attribute: not a saved model "
                                  "(a weights-only file needs the model's code to rebuild it)")
        found = [c for c in _configs(config) if c["class_name"] in CUDNN_LEGACY]
        if found:
            raise CheckModelError(cudnn_explanation(path, found))
    elif not zipfile.is_zipfile(path):
        raise CheckModelError(f"{path}: not a saved Keras model (neither a .keras zip nor an HDF5 file)")
    try:
        return keras.saving.load_model(path, compile=False), []
    except Exception as exc:  # noqa: BLE001 - any load failure is the user's file: exit 2, one line
        if config is not None and "time_major" in str(exc):
            return _load_without_time_major(path, config)
        raise CheckModelError(f"{path}: Keras {keras.__version__} cannot load it: {_first_line(exc)}") from None


def _load_without_time_major(path: Path, config: dict):
    import keras  # noqa: PLC0415

    # The loader load_model itself uses for legacy .h5 configs (public model_from_json does not
    # accept the legacy batch_input_shape and friends).
    from keras.src.legacy.saving import saving_utils  # noqa: PLC0415

    dropped = _drop_time_major(config)
    try:
        model = saving_utils.model_from_config(config)
        model.load_weights(path)
    except Exception as exc:  # noqa: BLE001
        raise CheckModelError(f"{path}: Keras {keras.__version__} cannot load it: {_first_line(exc)}") from None
    note = (f"tf_keras config key time_major=false dropped from {', '.join(dropped)} "
            "(Keras 3 rejects it; false is Keras 3's only layout)")
    return model, [note]


# ---------------------------------------------------------------- inputs

def _read_input(input_path: str) -> np.ndarray:
    path = Path(input_path)
    if not path.is_file():
        raise CheckModelError(f"--input {input_path}: no such file")
    if path.suffix == ".npy":
        try:
            return np.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise CheckModelError(f"--input {input_path}: not a readable .npy array ({exc})") from None
    if path.suffix in (".h5", ".hdf5"):
        import h5py  # noqa: PLC0415

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


def _shape_text(shape) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


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
        spec, arr = specs[0], _read_input(input_path)
        want = tuple(spec.shape)
        if arr.ndim != len(want) or any(w is not None and w != g for w, g in zip(want, arr.shape)):
            raise CheckModelError(f"--input {input_path}: shape {_shape_text(arr.shape)} does not match the "
                                  f"model's input shape {_shape_text(want)}")
        dtype = np.dtype(spec.dtype)
        if dtype.kind in "iu" and arr.dtype.kind == "f" and not np.all(np.mod(arr, 1) == 0):
            raise CheckModelError(f"--input {input_path}: the model takes integer ids ({dtype}) but the file "
                                  "holds non-integer values")
        return [arr.astype(dtype)], f"{input_path} {_shape_text(arr.shape)} {dtype}"
    return _random_inputs(model, specs)


def _random_inputs(model, specs) -> tuple[list[np.ndarray], str]:
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
        dtype = np.dtype(spec.dtype)
        padded = ""
        steps = shape[1] if len(shape) >= 2 else 0
        pad = max(1, steps // 3)
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
        texts.append(f"random {kind} {_shape_text(shape)} {dtype}{padded}")
    return arrays, f"{'; '.join(texts)} (seed {RANDOM_SEED})"


# ---------------------------------------------------------------- finding and running the layers

def walk(model, prefix: str) -> Iterator[tuple[str, Any]]:
    """(path, layer) for every layer that is not itself a model, nested models included, once each."""
    import keras  # noqa: PLC0415

    seen: set[int] = set()

    def visit(container, path: str):
        for layer in container.layers:
            if id(layer) in seen:
                continue
            seen.add(id(layer))
            if isinstance(layer, keras.Model):  # a Sequential or functional model used as a layer
                yield from visit(layer, f"{path}/{layer.name}")
            else:
                yield f"{path}/{layer.name}", layer

    yield from visit(model, prefix)


def _is_recurrent(layer) -> bool:
    import keras  # noqa: PLC0415

    if isinstance(layer, (keras.layers.RNN, keras.layers.Bidirectional)):
        return True
    inner = getattr(layer, "layer", None)
    if inner is not None and _is_recurrent(inner):
        return True
    return any(_is_recurrent(sub) for sub in getattr(layer, "layers", None) or [])


def _class_label(layer) -> str:
    inner = getattr(layer, "layer", None)
    name = type(layer).__name__
    return f"{name}({type(inner).__name__})" if inner is not None and name != "Bidirectional" else name


def unsupported(layer) -> str:
    """Why a recurrent layer cannot be checked ("" when it can, or when it is not recurrent)."""
    name = type(layer).__name__
    if name not in CHECKED:
        if _is_recurrent(layer):
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
        if not isinstance(value, str) or value not in reference.ACTIVATIONS:
            return None, f"not supported: {key} {value!r:.60} is not one the reference knows"
    if cfg.get("stateful"):
        return None, "not supported: stateful (its states carry over calls; check it with a case file)"
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


def _np(keras, value) -> np.ndarray | None:
    return None if value is None else np.asarray(keras.ops.convert_to_numpy(value))


def _flat(result) -> list:
    return list(result) if isinstance(result, (list, tuple)) else [result]


def record_calls(model, layers: list, inputs: list[np.ndarray]) -> dict[int, list[LayerCall]]:
    """Run the model once; for each layer, what Keras passed to its ``call`` and what came back."""
    import keras  # noqa: PLC0415

    calls: dict[int, list[LayerCall]] = {id(layer): [] for layer in layers}

    def recorder(layer):
        original = layer.call
        signature = inspect.signature(original)

        def call(*args, **kwargs):
            out = original(*args, **kwargs)
            bound = signature.bind(*args, **kwargs).arguments
            state = bound.get("initial_state")
            calls[id(layer)].append(LayerCall(
                sequences=_np(keras, bound["sequences"]), mask=_np(keras, bound.get("mask")),
                initial_state=None if state is None else [_np(keras, s) for s in _flat(state)],
                training=bound.get("training"), outputs=[_np(keras, o) for o in _flat(out)]))
            return out
        return call

    for layer in layers:
        layer.call = recorder(layer)  # Keras calls self.call (ops/operation.py __call__)
    try:
        feed = inputs[0] if len(inputs) == 1 else inputs
        model(feed, training=False)
    except Exception as exc:  # noqa: BLE001 - the model rejecting the input is bad input
        raise CheckModelError(f"running the model on the input failed: {_first_line(exc)}") from None
    finally:
        for layer in layers:
            vars(layer).pop("call", None)
    return calls


def _tolerance(layer) -> Tolerance:
    policy = getattr(getattr(layer, "dtype_policy", None), "name", None) or "float32"
    row = policy if policy in DEFAULT_TOLERANCE else "float32"
    atol, rtol = DEFAULT_TOLERANCE[row]
    return Tolerance(atol, rtol, f"dtype default {row}" + ("" if row == policy else f" (policy {policy})"))


def check_layer(path: str, layer, call: LayerCall, device: str) -> LayerResult:
    """Run the layer on what the model gave it, in Keras and in the reference; compare every output."""
    import keras  # noqa: PLC0415

    from . import kernels  # noqa: PLC0415
    from .keras_build import read_weights, watch_kernels  # noqa: PLC0415

    cls = type(layer).__name__
    cfg, _ = layer_config(layer)
    notes = []
    if call.mask is not None:
        notes.append(f"mask ({int(np.sum(~call.mask.astype(bool)))} of {call.mask.size} steps masked)")
    if call.initial_state is not None:
        notes.append(f"initial_state from the model ({len(call.initial_state)} tensors)")
    tol = _tolerance(layer)
    try:
        tensor = keras.ops.convert_to_tensor  # keeps the recorded dtype (float16 under mixed_float16)
        kwargs: dict[str, Any] = {"training": call.training}
        if call.mask is not None:
            kwargs["mask"] = tensor(call.mask)
        if call.initial_state is not None:
            kwargs["initial_state"] = [tensor(s) for s in call.initial_state]
        with watch_kernels() as watched:
            result = _flat(layer(tensor(call.sequences), **kwargs))
        got = [_np(keras, r) for r in result]
        if device == "gpu":
            notes.append(f"kernel {kernels.combine(watched) if watched else kernels.GENERIC}"
                         if watched is not None else "kernel unknown")
        expected = reference.run(cfg, call.sequences.astype(np.float64), read_weights(layer),
                                 mask=call.mask, initial_state=call.initial_state)
    except Exception as exc:  # noqa: BLE001 - one layer's error fails that layer; the others go on
        return LayerResult(path, cls, "error", notes=notes, message=_first_line(exc))
    names = reference.output_names(cfg)
    if len(got) != len(names):
        return LayerResult(path, cls, "error", notes=notes,
                           message=f"Keras returned {len(got)} tensors, expected {len(names)} ({', '.join(names)})")
    comps = [compare(name, value, expected[name], tol) for name, value in zip(names, got)]
    # The same layer inside the model must have returned the same numbers as run alone here.
    comps += [compare(name, inside, alone, tol, against="layer run alone")
              for name, inside, alone in zip(names, call.outputs, got)]
    verdict = "pass" if all(c.passed for c in comps) else "fail"
    return LayerResult(path, cls, verdict, comps, notes)


# ---------------------------------------------------------------- parameter counts

def _summary_total(model) -> int | None:
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer):
            model.summary(line_length=120)
    except Exception:  # noqa: BLE001 - no summary is reported as n/a, not as a crash
        return None
    found = re.search(r"Total params:\s*([\d,]+)", buffer.getvalue())
    return int(found.group(1).replace(",", "")) if found else None


def param_counts(model, layers: list[tuple[str, Any]], calls: dict[int, list[LayerCall]]) -> dict[str, Any]:
    """count_params(), the summary's "Total params", and the reference formulas plus other layers."""
    recurrent = other = 0
    for _, layer in layers:
        cfg, _ = layer_config(layer) if type(layer).__name__ in CHECKED else (None, "")
        made = calls.get(id(layer))
        if cfg is not None and made:
            recurrent += reference.param_count(cfg, int(made[0].sequences.shape[-1]))
        else:
            other += layer.count_params() if layer.built else 0
    total = model.count_params()
    summary = _summary_total(model)
    formulas = recurrent + other
    return {"count_params": total, "summary": summary if summary is not None else "n/a",
            "formulas": formulas, "recurrent": recurrent, "other": other,
            "agree": total == formulas and summary == total}
