"""``keras-equiv export GOLDEN --to torch|onnx|npz --out FILE``: a recorded layer in another framework's layout,
with the proof that the layout is right.

The golden file (``keras-equiv record``) holds a case's inputs, weights and Keras's outputs.  Export writes
the weights in the target's layout together with the inputs and Keras's outputs, then runs the target's own
implementation on what it wrote (read back from the file) and compares with Keras's recorded outputs under
the case's tolerance (``tolerances.resolve``):

- ``torch``: ``torch.save`` of {state_dict, config, inputs, expected}; proven by a ``torch.nn.LSTM`` / ``GRU`` /
  ``RNN`` (``config['module']``, ``config['kwargs']``) that loads the state_dict.
- ``onnx``: a model with one LSTM / GRU / RNN node (opset 14); its inputs and expected outputs, in ONNX's
  layout, in ``test_data_set_0/`` beside it (ONNX's own test-data layout: ``input_0.pb`` ..., ``output_0.pb``
  ...; one model per folder); proven by ``onnx.reference.ReferenceEvaluator``.
- ``npz``: every weight cut per gate (``kernel_i``, ``bias_input_z``, ...) with the input, mask, initial
  states, Keras's outputs (``expected_<output>``), the layer (``config``, JSON) and a ``layout`` text
  giving every entry's shape and meaning and the step equations (explain.py's, as ``keras-equiv show``
  prints them), for C/FPGA ports; proven by rebuilding Keras's weights from the npz alone and running
  harness/reference/recurrent.py on them (port.judge).

What a target cannot express exactly, or its round trip cannot prove, is refused (``refusals``: the text
is API).  Gate blocks are cut by explain.py's ``Block``s (gate order from harness/layers.py); each target's
own gate order is ``GATE_ORDERS``, the one place it is written.  Masks: torch and ONNX refuse them (ONNX's
``sequence_lens`` expresses right-padded masks, but onnx.reference ignores it, so nothing could prove it).
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from enum import Enum
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from . import __version__, data, golden, layers, port
from . import keras_api as api
from .case import Case, OutputKey
from .compare import Comparison, compare
from .data import Arrays
from .errors import UsageError
from .explain import Block, Cell, Use, explain_case, explain_layer, render
from .outputs import check_output_path
from .reference import recurrent
from .report import error_text
from .tolerances import resolve

if TYPE_CHECKING:
    import onnx

Array = np.ndarray
GateOrder = Mapping[str, tuple[str, ...]]


class Target(str, Enum):
    """Where ``export`` writes a layer to."""

    TORCH = "torch"
    ONNX = "onnx"
    NPZ = "npz"


# Each target's gate order along its kernels' first axis, in Keras's gate letters (layers.GATES):
# torch.nn.LSTM i, f, g, o (g: Keras's c); torch.nn.GRU r, z, n (n: Keras's candidate h); ONNX LSTM
# i, o, f, c; ONNX GRU z, r, h.  npz keeps no order: one entry per gate.
GATE_ORDERS: dict[Target, GateOrder] = {
    Target.TORCH: {"LSTM": ("i", "f", "c", "o"), "GRU": ("r", "z", "h"), "SimpleRNN": ("h",)},
    Target.ONNX: {"LSTM": ("i", "o", "f", "c"), "GRU": ("z", "r", "h"), "SimpleRNN": ("h",)},
}
TORCH_MODULES = {"LSTM": "LSTM", "GRU": "GRU", "SimpleRNN": "RNN"}  # torch.nn.<name>
ONNX_OPS = {"LSTM": "LSTM", "GRU": "GRU", "SimpleRNN": "RNN"}
# What each target calls Keras's states (layers.STATES): torch's h0/c0 inputs, ONNX's inputs and outputs.
TORCH_INITIAL = {"h": "h0", "c": "c0"}
ONNX_INITIAL = {"h": "initial_h", "c": "initial_c"}
ONNX_FINAL = {"h": "Y_h", "c": "Y_c"}
ONNX_OPSET = 14  # LSTM-14 / GRU-14 / RNN-14: the versions with ``layout``
ONNX_DATA = "test_data_set_0"
# Keras activation -> (ONNX name, activation_alpha, activation_beta); linear is Affine(1, 0).
ONNX_ACTIVATIONS: dict[str | None, tuple[str, float | None, float | None]] = {
    "sigmoid": ("Sigmoid", None, None), "tanh": ("Tanh", None, None),
    None: ("Affine", 1.0, 0.0), "linear": ("Affine", 1.0, 0.0)}
# Which activations each target computes (torch.nn: all it has; onnx.reference: all it runs, the
# activations attribute aside), by class and argument.
RUNS: dict[Target, dict[str, dict[str, tuple[str | None, ...]]]] = {
    Target.TORCH: {"LSTM": {"activation": ("tanh",), "recurrent_activation": ("sigmoid",)},
                   "GRU": {"activation": ("tanh",), "recurrent_activation": ("sigmoid",)},
                   "SimpleRNN": {"activation": ("tanh", "relu")}},
    Target.ONNX: {"LSTM": {"activation": ("tanh",), "recurrent_activation": ("sigmoid",)},
                  "GRU": {"activation": ("tanh",), "recurrent_activation": ("sigmoid",)},
                  "SimpleRNN": {"activation": ("tanh", None, "linear")}},
}
# The settings both directions of a torch / ONNX bidirectional layer share.
SHARED = ("class", "units", "use_bias", "activation", "recurrent_activation", "reset_after")
BIDIRECTIONAL = {Target.TORCH: "torch's bidirectional=True", Target.ONNX: "ONNX's direction 'bidirectional'"}
# npz entry name of a gate block, by its use and whether its bias has two rows (GRU reset_after).
NPZ_NAMES = {(Use.INPUT_KERNEL, False): "kernel", (Use.RECURRENT_KERNEL, False): "recurrent_kernel",
             (Use.INPUT_BIAS, False): "bias", (Use.INPUT_BIAS, True): "bias_input",
             (Use.RECURRENT_BIAS, True): "bias_recurrent"}


def add_arguments(p) -> None:
    p.add_argument("golden", metavar="GOLDEN.h5|ID", help="a golden file (keras-equiv record ID --out GOLDEN.h5), or a "
                                                      "case id: the case is run here and recorded first")
    p.add_argument("--to", dest="target", required=True, choices=[t.value for t in Target],
                   help="torch (torch.save of state_dict, config, inputs, expected), onnx (a model, its test "
                        "data in test_data_set_0/ beside it) or npz (weights per gate, for C/FPGA ports)")
    p.add_argument("--out", required=True, metavar="FILE", help="the file to write")
    p.add_argument("--case", metavar="ID", help="the recorded case to export (needed when the file holds several)")


# ---------------------------------------------------------------- what a target cannot express

def _runner(target: Target, cls: str) -> str:
    return f"torch.nn.{TORCH_MODULES[cls]}" if target is Target.TORCH else f"onnx.reference's {ONNX_OPS[cls]}"


def _activation_refusals(cell: Mapping, target: Target) -> list[str]:
    out = []
    for arg, allowed in RUNS[target][cell["class"]].items():
        if cell[arg] not in allowed:
            runs = " or ".join(repr(a) for a in allowed)
            why = f"{_runner(target, cell['class'])} has only {runs}" if target is Target.TORCH else \
                f"{_runner(target, cell['class'])} runs only {runs}, so its round trip cannot be proven"
            out.append(f"{arg}={cell[arg]!r} ({why})")
    return out


def _bidirectional_refusals(cfg: Mapping, fw: Mapping, bw: Mapping, target: Target) -> list[str]:
    out = []
    if cfg["merge_mode"] not in ("concat", None):
        out.append(f"merge_mode={cfg['merge_mode']!r} ({BIDIRECTIONAL[target]} returns both directions side by "
                   "side: export takes merge_mode 'concat' or None)")
    if fw["go_backwards"]:
        out.append(f"a forward layer with go_backwards=True ({BIDIRECTIONAL[target]} reads the forward "
                   "direction forwards)")
    for key in SHARED:
        if fw.get(key) != bw.get(key):
            out.append(f"backward_layer {key}={bw.get(key)!r}, the forward layer's {fw.get(key)!r} "
                       f"({BIDIRECTIONAL[target]} runs one configuration both ways)")
            if key == "class":
                break
    return out


def refusals(case: Case, target: Target) -> tuple[str, ...]:
    """What ``target`` cannot express exactly in ``case``, or its round trip cannot prove (empty: exportable)."""
    cfg = api.with_defaults(dict(case.layer))
    fw, bw = layers.cells(cfg)
    out = []
    if case.calls:
        out.append(f"{case.calls.count} calls of a stateful layer (export writes one call: its input, initial "
                   "states and outputs)")
    if case.training and any(layers.dropout_masks(c) != (0, 0) for c in (fw, bw) if c is not None):
        out.append("training-mode dropout (the masks Keras drew are not in the golden file)")
    if target is Target.NPZ:
        return tuple(out)
    if case.mask is not None:
        out.append(f"a mask (torch.nn.{TORCH_MODULES[fw['class']]} has no Keras-style mask)" if target is Target.TORCH
                   else "a mask (ONNX has no Keras-style mask; sequence_lens would express a right-padded one, but "
                        "onnx.reference ignores sequence_lens, so its round trip cannot be proven)")
    if bw is not None:
        out += _bidirectional_refusals(cfg, fw, bw, target)
    elif fw["go_backwards"] and target is Target.TORCH:
        out.append("go_backwards=True on its own (torch runs a reverse direction only as half of bidirectional=True)")
    out += _activation_refusals(fw, target)
    if target is Target.TORCH and fw["class"] == "GRU" and not fw["reset_after"]:
        out.append("GRU reset_after=False (torch.nn.GRU has only reset-after semantics: r * (h @ W_hn + b_hn))")
    return tuple(out)


# ---------------------------------------------------------------- the case in every target's terms

class GateWeights(NamedTuple):
    """One direction's weights cut into explain.py's gate blocks: (use, Keras gate letter) -> block."""

    layer_class: str
    units: int
    blocks: Mapping[tuple[Use, str], Array]


class Prepared(NamedTuple):
    """A recorded case as every target writes it: weights per direction and gate, the input, initial states."""

    case: Case
    cfg: dict
    dtype: np.dtype  # what the targets compute in: float64 for float64 cases, else float32 (exact widening)
    cells: tuple[GateWeights, ...]  # forward, then backward for Bidirectional
    x: Array  # (B, T, F), the values Keras computed with
    initial: dict[str, Array] | None  # state name (layers.state_names) -> (directions, B, U)
    expected: dict[OutputKey, Array]  # Keras's recorded outputs


def _layout_cells(case: Case) -> tuple[Cell, ...]:
    return explain_layer(case.layer, case.input.features).cells


def prepare(case: Case, arrays: Arrays) -> Prepared:
    """The recorded case cut into gate blocks, its input and initial states in the compute dtype."""
    cfg = api.with_defaults(dict(case.layer))
    compute = layers.DTYPES[case.dtype].compute
    dtype = np.dtype(np.float64 if compute == "float64" else np.float32)
    cells = []
    for cell in _layout_cells(case):
        w = arrays.weights[cell.weights_key] if cell.weights_key else arrays.weights
        blocks = {(b.use, b.gate): np.asarray(w[wl.name][b.index()]).astype(dtype)
                  for wl in cell.weights for b in wl.blocks}
        cells.append(GateWeights(cell.layer_class, cell.units, blocks))
    initial = None
    if arrays.initial_state is not None:
        init = [data.round_to(s, compute).astype(dtype) for s in arrays.initial_state]
        runs = recurrent.cell_runs(cfg, arrays.weights, init)  # the reference's split: forward states first
        names = layers.state_names(layers.cells(cfg)[0]["class"])
        initial = {n: np.stack([run.initial_state[i] for run in runs]) for i, n in enumerate(names)}
    x = data.round_to(arrays.inputs[0], compute).astype(dtype)
    return Prepared(case, cfg, dtype, tuple(cells), x, initial, dict(arrays.golden_outputs))


class TargetCell(NamedTuple):
    """One direction as torch and ONNX hold it: kernels transposed, (G*U, F) and (G*U, U), gates in the
    target's order; the input-side and recurrent-side biases (G*U,), None without a bias."""

    w_ih: Array
    w_hh: Array
    b_ih: Array | None
    b_hh: Array | None


def target_cell(cell: GateWeights, order: tuple[str, ...]) -> TargetCell:
    """``cell`` in a target's gate ``order``; Keras's one bias (LSTM, SimpleRNN, GRU reset_before) is all
    input-side, the recurrent-side one zeros (GRU reset_after: its two rows, as they are)."""
    def joined(use: Use) -> Array | None:
        parts = [cell.blocks.get((use, g)) for g in order]
        return None if any(p is None for p in parts) else np.concatenate([p.T for p in parts], axis=0)

    b_ih, b_hh = joined(Use.INPUT_BIAS), joined(Use.RECURRENT_BIAS)
    if b_ih is not None and b_hh is None:
        b_hh = np.zeros_like(b_ih)
    return TargetCell(joined(Use.INPUT_KERNEL), joined(Use.RECURRENT_KERNEL), b_ih, b_hh)


def keras_outputs(cfg: Mapping, sequence: Array | None, finals: Mapping[str, Array]) -> dict[OutputKey, Array]:
    """Keras's named outputs from a target's: ``sequence`` (B, T, directions, U) in input time order (None
    where the target did not return it), ``finals`` state name -> (directions, B, U) final states."""
    fw, bw = layers.cells(cfg)
    directions = 1 if bw is None else 2
    h = layers.state_names(fw["class"])[0]
    if layers.returns(cfg, "return_sequences"):
        per = [sequence[:, :, d] for d in range(directions)]
        if bw is None and fw["go_backwards"]:
            per = [per[0][:, ::-1]]  # Keras returns a go_backwards sequence in processing order (§5)
    else:
        per = [finals[h][d] for d in range(directions)]  # the last output is the final h
    names = layers.output_names(cfg)
    out = {names[0]: np.concatenate(per, axis=-1)} if bw is not None and cfg["merge_mode"] == "concat" \
        else dict(zip(names, per))  # output, or output_fw and output_bw
    if layers.returns(cfg, "return_state"):
        states = [finals[n][d] for d in range(directions) for n in layers.state_names(fw["class"])]
        out.update(zip(layers.state_output_names(cfg), states))
    return {OutputKey(k): v for k, v in out.items()}


def _compare(prep: Prepared, actual: Mapping[OutputKey, Array]) -> tuple[Comparison, ...]:
    return tuple(compare(str(k), actual.get(k), v, resolve(prep.case, k), against="Keras (recorded)")
                 for k, v in prep.expected.items())


# ---------------------------------------------------------------- torch

def _torch() -> ModuleType:
    try:
        import torch  # noqa: PLC0415 - only export --to torch needs it (the optional extra keras-equiv[export])
    except ImportError:
        raise UsageError("--to torch needs torch, which is not installed (pip install 'keras-equiv[export]')") \
            from None
    return torch


def torch_contents(prep: Prepared, order: GateOrder) -> dict:
    """What the .pt file holds, NumPy arrays where it holds tensors: state_dict, config, inputs, expected."""
    fw, bw = layers.cells(prep.cfg)
    state_dict = {}
    for cell, suffix in zip(prep.cells, ("", "_reverse")):
        t = target_cell(cell, order[cell.layer_class])
        state_dict[f"weight_ih_l0{suffix}"], state_dict[f"weight_hh_l0{suffix}"] = t.w_ih, t.w_hh
        if t.b_ih is not None:
            state_dict[f"bias_ih_l0{suffix}"], state_dict[f"bias_hh_l0{suffix}"] = t.b_ih, t.b_hh
    kwargs = {"input_size": prep.x.shape[-1], "hidden_size": fw["units"], "num_layers": 1,
              "bias": fw["use_bias"], "batch_first": True, "bidirectional": bw is not None}
    if fw["class"] == "SimpleRNN":
        kwargs["nonlinearity"] = fw["activation"]
    config = {"module": TORCH_MODULES[fw["class"]], "kwargs": kwargs, "dtype": prep.dtype.name,
              "case": prep.case.id, "keras_layer": api.describe(dict(prep.case.layer))}
    inputs = {"input": prep.x}
    if prep.initial is not None:
        inputs.update({TORCH_INITIAL[name]: value for name, value in prep.initial.items()})  # (directions, B, U)
    expected = {str(k): np.asarray(v).astype(prep.dtype) for k, v in prep.expected.items()}
    return {"state_dict": state_dict, "config": config, "inputs": inputs, "expected": expected}


def _tensors(torch, value):
    if isinstance(value, dict):
        return {k: _tensors(torch, v) for k, v in value.items()}
    return torch.from_numpy(np.ascontiguousarray(value)) if isinstance(value, np.ndarray) else value


def write_torch(prep: Prepared, out: Path, order: GateOrder) -> tuple[Path, ...]:
    torch = _torch()
    torch.save(_tensors(torch, torch_contents(prep, order)), out)
    return (out,)


def prove_torch(prep: Prepared, out: Path) -> tuple[Comparison, ...]:
    """A fresh torch module from the file's config, its state_dict loaded, run on the file's inputs."""
    torch = _torch()
    saved = torch.load(out, weights_only=True)  # tensors and plain values: loading runs no code
    config, inputs = saved["config"], saved["inputs"]
    module = getattr(torch.nn, config["module"])(**config["kwargs"], dtype=getattr(torch, config["dtype"]))
    module.load_state_dict(saved["state_dict"])
    names = layers.state_names(prep.cells[0].layer_class)
    given = [inputs[TORCH_INITIAL[n]] for n in names if TORCH_INITIAL[n] in inputs]
    state = None if not given else tuple(given) if len(given) > 1 else given[0]
    with torch.no_grad():
        y, last = module(inputs["input"], state)
    finals = dict(zip(names, [s.numpy() for s in (last if isinstance(last, tuple) else (last,))]))
    batch, steps = inputs["input"].shape[:2]
    sequence = y.numpy().reshape(batch, steps, len(prep.cells), -1)  # torch: directions side by side
    return _compare(prep, keras_outputs(prep.cfg, sequence, finals))


# ---------------------------------------------------------------- ONNX

def _onnx() -> ModuleType:
    try:
        import onnx  # noqa: PLC0415 - only export --to onnx needs it (the optional extra keras-equiv[export])
    except ImportError:
        raise UsageError("--to onnx needs onnx, which is not installed (pip install 'keras-equiv[export]')") \
            from None
    return onnx


def onnx_outputs(cfg: Mapping) -> tuple[str, ...]:
    """The node's outputs (Y, Y_h, Y_c; '' where Keras's outputs do not determine it): Y with
    return_sequences, Y_h with return_state or as the last output, Y_c with an LSTM's return_state."""
    fw, _ = layers.cells(cfg)
    seq, state = layers.returns(cfg, "return_sequences"), layers.returns(cfg, "return_state")
    names = ["Y" if seq else "", ONNX_FINAL["h"] if state or not seq else ""]
    if fw["class"] == "LSTM" and state:
        names.append(ONNX_FINAL["c"])
    return tuple(names)


def onnx_expected(cfg: Mapping, expected: Mapping[OutputKey, Array]) -> dict[str, Array]:
    """Keras's outputs as the node's outputs (onnx_outputs): Y (T, directions, B, U), Y_h / Y_c (directions, B, U)."""
    fw, bw = layers.cells(cfg)
    directions = 1 if bw is None else 2
    named = {k.name: np.asarray(v) for k, v in expected.items()}
    names = layers.output_names(cfg)
    if bw is not None and cfg["merge_mode"] == "concat":
        merged = named[names[0]]
        per = [merged[..., :fw["units"]], merged[..., fw["units"]:]]
    else:
        per = [named[n] for n in names[:directions]]
    out = {}
    if layers.returns(cfg, "return_sequences"):
        if bw is None and fw["go_backwards"]:
            per = [per[0][:, ::-1]]  # back to input time order, as ONNX's reverse direction returns it
        out["Y"] = np.stack(per, axis=2).transpose(1, 2, 0, 3)
    states = layers.state_names(fw["class"])
    if layers.returns(cfg, "return_state"):
        values = [named[n] for n in layers.state_output_names(cfg)]  # the forward states, then the backward ones
        out.update({ONNX_FINAL[name]: np.stack(values[i::len(states)]) for i, name in enumerate(states)})
    else:
        out[ONNX_FINAL[states[0]]] = np.stack(per)  # the last output is the final h
    return {k: out[k] for k in onnx_outputs(cfg) if k}


def onnx_from_outputs(results: Mapping[str, Array],
                      state_names: tuple[str, ...]) -> tuple[Array | None, dict[str, Array]]:
    """(sequence (B, T, directions, U) or None, finals state name -> (directions, B, U)) from the node's outputs."""
    y = results.get("Y")
    sequence = None if y is None else np.asarray(y).transpose(2, 0, 1, 3)
    finals = {n: np.asarray(results[ONNX_FINAL[n]]) for n in state_names if ONNX_FINAL[n] in results}
    return sequence, finals


def onnx_model(prep: Prepared, order: GateOrder) -> onnx.ModelProto:
    """One LSTM / GRU / RNN node: W, R, B initializers in ONNX's layout, inputs X (T, B, F) [, initial_h, initial_c]."""
    onnx = _onnx()
    helper, numpy_helper = onnx.helper, onnx.numpy_helper
    fw, bw = layers.cells(prep.cfg)
    cls, units, directions = fw["class"], fw["units"], len(prep.cells)
    cells = [target_cell(c, order[c.layer_class]) for c in prep.cells]
    init = {"W": np.stack([c.w_ih for c in cells]), "R": np.stack([c.w_hh for c in cells])}
    if cells[0].b_ih is not None:
        init["B"] = np.stack([np.concatenate([c.b_ih, c.b_hh]) for c in cells])  # [Wb, Rb] per direction
    feeds = onnx_inputs(prep)
    names = ["X", "W", "R", "B" if "B" in init else "", ""]  # "": no sequence_lens
    names += [ONNX_INITIAL[n] if ONNX_INITIAL[n] in feeds else "" for n in layers.state_names(cls)]
    while names[-1] == "":
        names.pop()
    keras_acts = {"LSTM": ("recurrent_activation", "activation", "activation"),
                  "GRU": ("recurrent_activation", "activation"), "SimpleRNN": ("activation",)}[cls]
    acts = [ONNX_ACTIVATIONS[fw[a]] for a in keras_acts] * directions
    attrs = {"hidden_size": units, "activations": [a[0] for a in acts],
             "direction": "bidirectional" if bw is not None else "reverse" if fw["go_backwards"] else "forward"}
    if any(a[1] is not None for a in acts):
        attrs.update(activation_alpha=[a[1] or 0.0 for a in acts], activation_beta=[a[2] or 0.0 for a in acts])
    if cls == "GRU":
        attrs["linear_before_reset"] = int(fw["reset_after"])
    outputs = onnx_outputs(prep.cfg)
    node = helper.make_node(ONNX_OPS[cls], names, list(outputs), **attrs)
    elem = helper.np_dtype_to_tensor_dtype(prep.dtype)
    steps, batch = prep.x.shape[1], prep.x.shape[0]
    shapes = {"Y": [steps, directions, batch, units], **{k: [directions, batch, units] for k in ONNX_FINAL.values()}}
    graph = helper.make_graph(
        [node], f"keras_equiv_{cls.lower()}",
        [helper.make_tensor_value_info(k, elem, list(v.shape)) for k, v in feeds.items()],
        [helper.make_tensor_value_info(k, elem, shapes[k]) for k in outputs if k],
        initializer=[numpy_helper.from_array(v, k) for k, v in init.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)],
                              producer_name="keras-equiv", producer_version=__version__)
    model.doc_string = f"{prep.case.id}: {api.describe(dict(prep.case.layer))}"
    return model


def onnx_inputs(prep: Prepared) -> dict[str, Array]:
    """The graph's inputs: X (T, B, F), ONNX's layout 0, and initial_h / initial_c (directions, B, U)."""
    feeds = {"X": prep.x.transpose(1, 0, 2)}
    if prep.initial is not None:
        feeds.update({ONNX_INITIAL[name]: value for name, value in prep.initial.items()})
    return feeds


def _onnx_folder(out: Path) -> Path:
    """Where the test data go; UsageError when the folder holds another model (one model per folder)."""
    others = sorted(p.name for p in out.parent.glob("*.onnx") if p.name != out.name)
    if others:
        raise UsageError(f"--out {out}: {out.parent} already holds {others[0]}: ONNX's test-data layout keeps one "
                         f"model per folder (its data in {ONNX_DATA}/); export into a folder of its own")
    folder = out.parent / ONNX_DATA
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--out {out}: {folder} is not a folder")
    return folder


def write_onnx(prep: Prepared, out: Path, order: GateOrder) -> tuple[Path, ...]:
    onnx = _onnx()
    folder = _onnx_folder(out)
    model = onnx_model(prep, order)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, out)
    folder.mkdir(exist_ok=True)
    for stale in [*folder.glob("input_*.pb"), *folder.glob("output_*.pb")]:
        stale.unlink()
    written = [out]
    for kind, arrays in (("input", onnx_inputs(prep)), ("output", onnx_expected(prep.cfg, prep.expected))):
        for i, (name, value) in enumerate(arrays.items()):
            path = folder / f"{kind}_{i}.pb"
            onnx.save_tensor(onnx.numpy_helper.from_array(np.asarray(value).astype(prep.dtype), name), path)
            written.append(path)
    return tuple(written)


def prove_onnx(prep: Prepared, out: Path) -> tuple[Comparison, ...]:
    """The saved model, checked, run by onnx.reference on the inputs of its test data."""
    onnx = _onnx()
    from onnx.reference import ReferenceEvaluator  # noqa: PLC0415 - onnx is optional (see _onnx)

    model = onnx.load(out)
    onnx.checker.check_model(model)
    folder = out.parent / ONNX_DATA
    feeds = {}
    for i in range(len(model.graph.input)):
        tensor = onnx.load_tensor(folder / f"input_{i}.pb")
        feeds[tensor.name] = onnx.numpy_helper.to_array(tensor)
    names = [o.name for o in model.graph.output]
    results = dict(zip(names, ReferenceEvaluator(model).run(names, feeds)))
    sequence, finals = onnx_from_outputs(results, layers.state_names(prep.cells[0].layer_class))
    return _compare(prep, keras_outputs(prep.cfg, sequence, finals))


# ---------------------------------------------------------------- npz

class NpzEntry(NamedTuple):
    """One array of the npz and what it is (the layout text lists them)."""

    name: str
    value: Array
    meaning: str


def _npz_name(cell: Cell, block: Block) -> str:
    base = NPZ_NAMES[block.use, block.row is not None]
    return f"{cell.weights_key}_{base}_{block.gate}" if cell.weights_key else f"{base}_{block.gate}"


def npz_entries(prep: Prepared, arrays: Arrays, provenance: Mapping) -> tuple[NpzEntry, ...]:
    """Every array the npz holds, the ``layout`` text (which describes the others) last."""
    case, dtype = prep.case, prep.dtype
    compute = layers.DTYPES[case.dtype].compute
    config = {"layer": case.layer, "features": case.input.features, "case": case.id, "dtype": case.dtype,
              "keras": provenance.get("keras"), "backend": provenance.get("backend")}
    entries = [NpzEntry("config", np.array(json.dumps(config)),
                        "JSON: the layer as the case wrote it (every other argument is Keras's default), its input "
                        "features, the case id and dtype, the Keras that recorded it"),
               NpzEntry("input", prep.x, "(B, T, F): the layer's input, as Keras computed with it")]
    if arrays.mask is not None:
        entries.append(NpzEntry("mask", np.asarray(arrays.mask, dtype=np.uint8),
                                "(B, T): 1 a step that counts, 0 a masked step (see 'masked step' below)"))
    if arrays.initial_state is not None:
        entries += [NpzEntry(f"initial_state_{name}", data.round_to(s, compute).astype(dtype),
                             f"(B, U): the initial state {name}")
                    for name, s in zip(layers.state_output_names(prep.cfg), arrays.initial_state)]
    for cell, cut in zip(_layout_cells(case), prep.cells):
        where = f"{cell.weights_key}." if cell.weights_key else ""
        entries += [NpzEntry(_npz_name(cell, b), cut.blocks[b.use, b.gate], f"{where}{b.expr(wl.name)}: {b.gate} "
                             f"({b.meaning})") for wl in cell.weights for b in wl.blocks]
    entries += [NpzEntry(f"expected_{k}", np.asarray(v).astype(dtype), f"Keras's recorded {k}")
                for k, v in prep.expected.items()]
    lines = [f"keras-equiv {__version__} export of {case.id}: {api.describe(dict(case.layer))}, weights cut per gate",
             f"recorded by Keras {provenance.get('keras', '?')} ({provenance.get('backend', '?')}); values in "
             f"{dtype.name} (Keras computed in {compute})",
             "entries (B batch, T timesteps, F features, U units):"]
    width = max(len(e.name) for e in entries)
    lines += [f"  {e.name:<{width}}  {str(e.value.shape):<10} {e.meaning}" for e in entries]
    lines += [f"  {'layout':<{width}}  {'()':<10} this text",
              "the layer (each *_<gate> entry is the block of Keras's weight named beside it above):"]
    lines += render(explain_case(case))
    return (*entries, NpzEntry("layout", np.array("\n".join(lines) + "\n"), "this text"))


def write_npz(prep: Prepared, out: Path, arrays: Arrays, provenance: Mapping) -> tuple[Path, ...]:
    with open(out, "wb") as f:  # a file object: np.savez would add .npz to a name
        np.savez(f, **{e.name: e.value for e in npz_entries(prep, arrays, provenance)})
    return (out,)


def npz_weights(npz: Mapping[str, Array]) -> dict:
    """Keras's get_weights() layout rebuilt from an exported npz alone (its config, input and gate entries)."""
    config = json.loads(str(npz["config"]))
    weights: dict = {}
    for cell in explain_layer(config["layer"], config["features"]).cells:
        rebuilt = {}
        for wl in cell.weights:
            array = np.zeros(wl.shape, dtype=npz["input"].dtype)
            for b in wl.blocks:
                array[b.index()] = npz[_npz_name(cell, b)]
            rebuilt[wl.name] = array
        if cell.weights_key:
            weights[cell.weights_key] = rebuilt
        else:
            weights = rebuilt
    return weights


def prove_npz(prep: Prepared, out: Path, provenance: Mapping) -> tuple[Comparison, ...]:
    """The reference (port.judge's) on the weights, input, mask and initial states read back from the npz."""
    with np.load(out, allow_pickle=False) as f:
        npz = {k: f[k] for k in f.files}
    names = [f"initial_state_{n}" for n in layers.state_output_names(prep.cfg)]
    rebuilt = Arrays(inputs=[npz["input"].astype(np.float64)],
                     mask=npz["mask"].astype(bool) if "mask" in npz else None,
                     initial_state=[npz[n].astype(np.float64) for n in names] if names[0] in npz else None,
                     weights=npz_weights(npz), golden_outputs=prep.expected)
    # No port outputs: judge's ``reference`` is the reference on these arrays against Keras's recorded outputs.
    return port.judge(prep.case, rebuilt, provenance, {}).reference


# ---------------------------------------------------------------- the command

class Exported(NamedTuple):
    """One export: what it wrote, what ran on it, and how that compares with Keras's recorded outputs."""

    case: Case
    target: Target
    files: tuple[Path, ...]
    runner: str
    comparisons: tuple[Comparison, ...]

    @property
    def proven(self) -> bool:
        return bool(self.comparisons) and all(c.passed for c in self.comparisons)


def runner_name(target: Target, cls: str) -> str:
    """What runs the exported weights in the round trip."""
    return {Target.TORCH: f"torch.nn.{TORCH_MODULES[cls]}",
            Target.ONNX: f"onnx.reference.ReferenceEvaluator ({ONNX_OPS[cls]} node)",
            Target.NPZ: "harness/reference/recurrent.py on the weights rebuilt from the npz"}[target]


def export(case: Case, arrays: Arrays, provenance: Mapping, target: Target, out: Path,
           gate_orders: Mapping[Target, GateOrder] = GATE_ORDERS) -> Exported:
    """Write ``case`` to ``out`` in ``target``'s layout, then run the target on what was written.

    UsageError when the target cannot express the case (``refusals``) or a package is missing."""
    problems = refusals(case, target)
    if problems:
        raise UsageError(f"{case.id}: cannot export to {target.value}: " + "; ".join(problems))
    prep = prepare(case, arrays)
    if target is Target.TORCH:
        files = write_torch(prep, out, gate_orders[target])
        comparisons = prove_torch(prep, out)
    elif target is Target.ONNX:
        files = write_onnx(prep, out, gate_orders[target])
        comparisons = prove_onnx(prep, out)
    else:
        files = write_npz(prep, out, arrays, provenance)
        comparisons = prove_npz(prep, out, provenance)
    return Exported(case, target, files, runner_name(target, prep.cells[0].layer_class), comparisons)


def text(result: Exported) -> list[str]:
    """The human report: the verdict, one row per output, the files written."""
    head = f"{result.case.id} -> {result.files[0]} ({result.target.value}): {result.runner}"
    out = [f"PROVEN  {head} reproduces Keras's recorded outputs" if result.proven else
           f"NOT PROVEN  {head} differs from Keras's recorded outputs: the layout is wrong, do not use the file"]
    for c in result.comparisons:
        out.append(f"  {'ok  ' if c.passed else 'FAIL'} {c.name}: {error_text(c)}")
    out += [f"  wrote: {path}" for path in result.files]
    return out


def main(args, gate_orders: Mapping[Target, GateOrder] = GATE_ORDERS) -> int:
    """The ``export`` command: 0 the round trip reproduces Keras's outputs, 1 it does not, UsageError (exit 2)
    for bad input (GoldenError: an unreadable golden file)."""
    try:
        target = Target(args.target)
    except ValueError:
        raise UsageError(f"--to {args.target}: expected one of {', '.join(t.value for t in Target)}") from None
    check_output_path("--out", args.out, stdout_ok=False)
    case, arrays, provenance = golden.one_case(args.golden, args.case, "to export")
    result = export(case, arrays, provenance, target, Path(args.out), gate_orders)
    print("\n".join(text(result)))
    return 0 if result.proven else 1
