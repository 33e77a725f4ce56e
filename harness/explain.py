"""``keras-equiv show``'s explanation of a case's weights, for someone porting the layer (to C, say).

For every weight of a recurrent layer: which columns (or rows, or bias rows) hold which gate and
which term of the step they enter; the state order; the step equations the reference runs
(harness/reference/recurrent.py), written with the weights' own names, the case's activations,
masked steps and time order; for Bidirectional the same per direction and how the merge combines
them; for a ``model:`` case each layer's weights and parameter formula.  Structured data
(NamedTuples) first, then a text renderer and strict JSON (``to_json`` / ``from_json``).  Gate
order, weight shapes, states and formulas come from harness/layers.py and harness/model_layers.py;
nothing here imports Keras.  Sections (§) point at docs/semantics.md.
"""
from __future__ import annotations

import types
import typing
from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any, NamedTuple

from . import keras_api as api
from . import layers, model_layers
from .case import Case
from .report import plural


class Use(str, Enum):
    """Which term of a gate's pre-activation a block enters."""

    INPUT_KERNEL = "input_kernel"  # x_t @ block
    RECURRENT_KERNEL = "recurrent_kernel"  # h @ block
    INPUT_BIAS = "input_bias"  # added with x_t @ kernel
    RECURRENT_BIAS = "recurrent_bias"  # added with h @ recurrent_kernel (GRU reset_after: inside r * (...))


class Role(str, Enum):
    """Which layer of a case a cell is: the layer itself, or one direction of a Bidirectional."""

    LAYER = "layer"
    FORWARD = "forward_layer"
    BACKWARD = "backward_layer"


class Block(NamedTuple):
    """``weight[start:stop]`` along ``axis`` (in bias row ``row`` when there is one) holds ``gate``."""

    axis: int
    start: int
    stop: int
    gate: str | None  # a letter of layers.GATES; None: a non-recurrent weight, whole
    meaning: str
    use: Use | None = None
    row: int | None = None  # GRU reset_after bias (2, 3U): 0 input bias, 1 recurrent bias

    def index(self) -> tuple:
        """The NumPy index of the block: ``weight[block.index()]``."""
        lead: list[Any] = [slice(None)] * self.axis
        if self.row is not None:
            lead[0] = self.row
        return (*lead, slice(self.start, self.stop))

    def expr(self, name: str) -> str:
        """``kernel[:, 0:16]``, ``bias[0:16]``, ``bias[1, 0:16]``: the block as Python slicing."""
        lead = [":"] * self.axis
        if self.row is not None:
            lead[0] = str(self.row)
        return f"{name}[{', '.join([*lead, f'{self.start}:{self.stop}'])}]"


class WeightLayout(NamedTuple):
    """One weight as get_weights() returns it, cut into its blocks."""

    name: str
    shape: tuple[int, ...]
    blocks: tuple[Block, ...]
    rows: tuple[str, ...] = ()  # what each row of a two-row bias is


class Cell(NamedTuple):
    """One recurrent cell as it runs: its weights, states and step equations."""

    role: Role
    weights_key: str | None  # Bidirectional: the key of its weights ("forward", "backward"); else None
    layer_class: str
    units: int
    go_backwards: bool
    weights: tuple[WeightLayout, ...]
    states: tuple[str, ...]
    equations: tuple[str, ...]  # the time order, the gates, the update, masked steps, the output


class Part(NamedTuple):
    """Which columns of a concat-merged Bidirectional output hold which direction."""

    role: Role
    start: int
    stop: int


class Merge(NamedTuple):
    """How a Bidirectional combines its two directions (§4)."""

    mode: str | None
    parts: tuple[Part, ...]  # concat only
    text: str


class Layout(NamedTuple):
    """A recurrent layer (LSTM, GRU, SimpleRNN or Bidirectional) on ``features`` inputs."""

    layer_class: str
    call: str  # keras.layers.<call>
    features: int
    cells: tuple[Cell, ...]  # one, or forward then backward
    merge: Merge | None
    states: tuple[str, ...]  # layers.state_output_names: initial_state and return_state order
    outputs: tuple[str, ...]  # layers.output_names: what one call returns
    params: int
    formula: str


class ModelLayer(NamedTuple):
    """One layer of a ``model:`` case: its shapes, parameter formula and weights."""

    index: int
    layer_class: str
    call: str
    input_shape: tuple[int, ...]  # per sample, no batch axis
    output_shape: tuple[int, ...]
    params: int
    formula: str
    weights: tuple[WeightLayout, ...]  # a non-recurrent layer's; a recurrent one's are in ``layout``
    layout: Layout | None


class Explained(NamedTuple):
    """What ``show`` explains of one case: its layer's layout, or each layer of its model."""

    id: str
    path: str
    line: int
    layer: Layout | None
    model: tuple[ModelLayer, ...] = ()


# ---------------------------------------------------------------- building

# Which term each recurrent weight (by its Keras name, layers.weight_shapes) enters.
_USES = {"kernel": Use.INPUT_KERNEL, "recurrent_kernel": Use.RECURRENT_KERNEL, "bias": Use.INPUT_BIAS}
# A two-row bias (GRU reset_after, §2): each row's term and what it is.
_BIAS_ROWS = ((Use.INPUT_BIAS, "input bias (added to x_t @ kernel)"),
              (Use.RECURRENT_BIAS,
               "recurrent bias (added to h @ recurrent_kernel, inside r * (...) for the candidate)"))
# Activations whose formula depends on the Keras generation (§1).
_ACTIVATION_NOTES = {
    "hard_sigmoid": "hard_sigmoid(x) = clip(x/6 + 0.5, 0, 1) (Keras 3; tf_keras: clip(0.2*x + 0.5, 0, 1))"}


def _gate_blocks(cls: str, units: int, use: Use, row: int | None = None) -> tuple[Block, ...]:
    axis = 0 if row is None and use is Use.INPUT_BIAS else 1
    return tuple(Block(axis, g * units, (g + 1) * units, gate, layers.GATE_NAMES[gate], use, row)
                 for g, gate in enumerate(layers.GATES[cls]))


def _weight(cls: str, units: int, name: str, shape: tuple[int, ...]) -> WeightLayout:
    if len(shape) == 2 and _USES[name] is Use.INPUT_BIAS:  # the (2, 3U) bias: rows, then gates
        blocks = tuple(b for row, (use, _) in enumerate(_BIAS_ROWS) for b in _gate_blocks(cls, units, use, row))
        return WeightLayout(name, shape, blocks, tuple(meaning for _, meaning in _BIAS_ROWS))
    return WeightLayout(name, shape, _gate_blocks(cls, units, _USES[name]))


def _variable(cls: str, gate: str) -> str:
    """The equations' name of a gate's value: its letter, or ``<letter>_hat`` for the candidate of a state."""
    return f"{gate}_hat" if gate in layers.STATES[cls] else gate


def _terms(weights: Sequence[WeightLayout]) -> dict[str, dict[Use, list[str]]]:
    """gate -> use -> the blocks' expressions."""
    out: dict[str, dict[Use, list[str]]] = {}
    for w in weights:
        for b in w.blocks:
            out.setdefault(b.gate, {use: [] for use in Use})[b.use].append(b.expr(w.name))
    return out


def _step(cfg: Mapping, weights: Sequence[WeightLayout]) -> list[str]:
    """The gate and update equations of one step (reference/recurrent.py's cells), h/c: the states before it."""
    cls = cfg["class"]
    act = cfg["activation"] or "linear"  # activation None: the identity (reference/recurrent.py)
    ract = (cfg.get("recurrent_activation") or "linear") if cls != "SimpleRNN" else ""
    terms = _terms(weights)

    def x_term(g: str) -> str:
        return " + ".join([f"x_t @ {e}" for e in terms[g][Use.INPUT_KERNEL]] + terms[g][Use.INPUT_BIAS])

    def h_term(g: str, h: str = "h") -> str:
        return " + ".join([f"{h} @ {e}" for e in terms[g][Use.RECURRENT_KERNEL]] + terms[g][Use.RECURRENT_BIAS])

    v = {g: _variable(cls, g) for g in layers.GATES[cls]}
    if cls == "SimpleRNN":
        (g,) = layers.GATES[cls]
        return [f"h_t = {act}({x_term(g)} + {h_term(g)})"]
    lines = []
    for g in layers.GATES[cls]:
        fn = act if v[g] != g else ract  # a state's candidate takes activation, the gates recurrent_activation
        if cls == "GRU" and v[g] != g:
            recurrent = f"r * ({h_term(g)})" if cfg["reset_after"] else h_term(g, "(r * h)")
            lines.append(f"{v[g]} = {fn}({x_term(g)} + {recurrent})")
        else:
            lines.append(f"{v[g]} = {fn}({x_term(g)} + {h_term(g)})")
    if cls == "LSTM":
        return lines + [f"c_t = {v['f']} * c + {v['i']} * {v['c']}", f"h_t = {v['o']} * {act}(c_t)"]
    return lines + [f"h_t = {v['z']} * h + (1 - {v['z']}) * {v['h']}"]


def _equations(cfg: Mapping, weights: Sequence[WeightLayout], zero_output_for_mask: bool) -> tuple[str, ...]:
    states = layers.STATES[cfg["class"]]
    names, new = ", ".join(states), ", ".join(f"{s}_t" for s in states)
    order = ("t = T-1, T-2, ..., 0 (go_backwards: reversed time)" if cfg["go_backwards"]
             else "t = 0, 1, ..., T-1")
    lines = [f"{order}; {names}: the states before the step (zeros or initial_state at the first step)"]
    lines += _step(cfg, weights)
    lines.append(f"output_t = h_t; then {names} = {new}")
    kept = "output_t = 0" if zero_output_for_mask else "output_t repeats the previous output_t (0 before any kept step)"
    keep = "keep their values" if len(states) > 1 else "keeps its value"
    lines.append(f"masked step (mask[b, t] = 0): {names} {keep}, {kept}")
    if cfg["return_sequences"]:
        where = " (output[:, 0] is the step on x[:, T-1])" if cfg["go_backwards"] else ""
        lines.append(f"output: every output_t, (B, T, {cfg['units']}), in processing order{where}")
    else:
        lines.append(f"output: the last output_t, (B, {cfg['units']})")
    if cfg["stateful"]:
        lines.append("stateful: the final states are the next call's initial states")
    lines += [note for name, note in _ACTIVATION_NOTES.items()
              if name in (cfg["activation"], cfg.get("recurrent_activation"))]
    return tuple(lines)


def _cell(cfg: Mapping, features: int, role: Role, key: str | None, shapes: Mapping, zero_out: bool) -> Cell:
    weights = tuple(_weight(cfg["class"], cfg["units"], name, tuple(shape)) for name, shape in shapes.items())
    return Cell(role, key, cfg["class"], cfg["units"], cfg["go_backwards"], weights,
                tuple(layers.state_names(cfg["class"])), _equations(cfg, weights, zero_out))


def _merge(cfg: Mapping, forward: Cell, backward: Cell) -> Merge:
    mode = cfg["merge_mode"]
    flip = ("backward_layer's sequence is flipped back to input time order first; "
            if layers.returns(cfg, "return_sequences") else "")
    if mode == "concat":
        width = forward.units + backward.units
        parts = (Part(Role.FORWARD, 0, forward.units), Part(Role.BACKWARD, forward.units, width))
        halves = ", ".join(f"output[..., {p.start}:{p.stop}] = {p.role.value}" for p in parts)
        return Merge(mode, parts, f"concat: {flip}{halves}")
    formula = {"sum": "forward_layer + backward_layer", "ave": "(forward_layer + backward_layer) / 2",
               "mul": "forward_layer * backward_layer"}
    if mode is None:
        return Merge(None, (), f"None: {flip}output_fw = forward_layer, output_bw = backward_layer")
    return Merge(mode, (), f"{mode}: {flip}output = {formula[mode]}")


def explain_layer(spec: Mapping, features: int) -> Layout:
    """The layout of a recurrent layer ``spec`` (as a case writes it) on ``features`` input features."""
    cfg = api.with_defaults(dict(spec))
    shapes = layers.weight_shapes(cfg, features)
    count, formula = layers.param_formula(cfg, features)
    if layers.is_bidirectional(cfg):
        forced = layers.returns(cfg, "return_sequences")  # §4: zero_output_for_mask = return_sequences
        cells = tuple(_cell(c, features, role, key, s, forced) for role, (key, s), c
                      in zip((Role.FORWARD, Role.BACKWARD), shapes.items(), layers.cells(cfg)))
        merge = _merge(cfg, *cells)
    else:
        cells, merge = (_cell(cfg, features, Role.LAYER, None, shapes, cfg["zero_output_for_mask"]),), None
    return Layout(cfg["class"], api.describe(dict(spec)), features, cells, merge,
                  tuple(layers.state_output_names(cfg)), tuple(layers.output_names(cfg)), count, formula)


def _plain_weights(spec: Mapping, shape: tuple[int, ...]) -> tuple[WeightLayout, ...]:
    """The weights of a non-recurrent model layer (Keras's layouts, as reference/sequential.py reads them)."""
    cfg = model_layers.with_defaults(spec)
    cls = cfg["class"]

    def whole(name: str, dims: tuple[int, ...], meaning: str) -> WeightLayout:
        return WeightLayout(name, dims, (Block(len(dims) - 1, 0, dims[-1], None, meaning),))

    if cls == "TimeDistributed":
        return _plain_weights(cfg["layer"], shape[1:])
    if cls == "Embedding":
        return (whole("embeddings", (cfg["input_dim"], cfg["output_dim"]), "row i is the vector of id i"),)
    if cls not in ("Dense", "Conv1D"):
        return ()
    width = cfg["units"] if cls == "Dense" else cfg["filters"]
    act, bias = cfg["activation"] or "linear", " + bias" if cfg["use_bias"] else ""
    if cls == "Dense":
        kernel = whole("kernel", (shape[-1], width), f"y = {act}(x @ kernel{bias})")
    else:
        kernel = whole("kernel", (cfg["kernel_size"], shape[-1], width),
                       f"(kernel_size, channels, filters): y[t] = {act}(sum over k of x[t*{cfg['strides']} + k] "
                       f"@ kernel[k]{bias}), padding {cfg['padding']}")
    return (kernel, whole("bias", (width,), "added to every output")) if cfg["use_bias"] else (kernel,)


def _call(spec: Mapping) -> str:
    """``Dense(units=2, activation='tanh')``: a model layer as the case writes it, as a Keras call."""
    args = (f"{k}={_call(v) if isinstance(v, Mapping) else repr(v)}" for k, v in spec.items() if k != "class")
    return f"{spec['class']}({', '.join(args)})"


def explain_model(model: Sequence[Mapping], shape: tuple[int, ...]) -> tuple[ModelLayer, ...]:
    """Each layer of a ``model:`` list fed a per-sample input of ``shape``."""
    out = []
    for i, spec in enumerate(model):
        count, formula = model_layers.param_formula(spec, shape)
        after = model_layers.output_shape(spec, shape)
        recurrent = spec["class"] in api.LAYER_ARGS
        out.append(ModelLayer(i, spec["class"], _call(spec),
                              shape, after, count, formula, () if recurrent else _plain_weights(spec, shape),
                              explain_layer(spec, shape[-1]) if recurrent else None))
        shape = after
    return tuple(out)


def explain_case(case: Case) -> Explained:
    """The layout of a case's layer, or of each layer of its model."""
    if case.model:
        shape = model_layers.input_shape(case.model, case.input.timesteps, case.input.features)
        return Explained(case.id, case.path, case.line, None, explain_model(case.model, shape))
    return Explained(case.id, case.path, case.line, explain_layer(case.layer, case.input.features))


# ---------------------------------------------------------------- text

def _weight_lines(weights: Sequence[WeightLayout], indent: str) -> list[str]:
    if not weights:
        return []
    nw = max(len(w.name) for w in weights) + 2
    sw = max(len(str(w.shape)) for w in weights) + 2
    lines = []
    for w in weights:
        head = f"{indent}{w.name:<{nw}}{str(w.shape):<{sw}}"
        if all(b.gate is None for b in w.blocks):
            lines.append(head + "   ".join(b.meaning for b in w.blocks))
            continue
        groups = [[b for b in w.blocks if b.row == r] for r in range(len(w.rows))] or [list(w.blocks)]
        first = [f"{w.name}[{r}] = {meaning}" for r, meaning in enumerate(w.rows)]
        texts = ["   ".join(first)] if first else []
        texts += ["   ".join(f"{b.expr(w.name)} = {b.gate} ({b.meaning})" for b in group) for group in groups]
        lines.append(head + texts[0])
        lines += [" " * len(head) + t for t in texts[1:]]
    return lines


def _layout_lines(layout: Layout, indent: str) -> list[str]:
    bidi = layout.merge is not None
    lines = []
    if bidi:
        lines.append(f"{indent}layout:    Bidirectional: forward_layer and backward_layer read the same input; "
                     "get_weights() = forward_layer's weights, then backward_layer's")
    for cell in layout.cells:
        label = f"{cell.role.value}:" if bidi else "layout:"
        where = f", weights {cell.weights_key}.*" if cell.weights_key else ""
        back = ", go_backwards" if cell.go_backwards else ""
        lines.append(f"{indent}{label:<10} {cell.layer_class}, {plural(cell.units, 'unit')}{back}{where}: "
                     "get_weights() order, gate blocks along the last axis")
        lines += _weight_lines(cell.weights, indent + "  ")
        lines += [f"{indent}  {e}" for e in cell.equations]
    if bidi:
        lines.append(f"{indent}merge:     {layout.merge.text}")
    lines.append(f"{indent}states:    [{', '.join(layout.states)}] (initial_state order; returned after the "
                 f"output with return_state)")
    lines.append(f"{indent}returns:   [{', '.join(layout.outputs)}]")
    return lines


def render(explained: Explained) -> list[str]:
    """The lines ``keras-equiv show`` prints after the case's own: the layout (each model layer's)."""
    if explained.layer is not None:
        return _layout_lines(explained.layer, "  ")
    lines = []
    for layer in explained.model:
        shapes = f"{layer.input_shape} -> {layer.output_shape}"
        lines.append(f"  model[{layer.index}]:  {layer.call}  {shapes}  params: {layer.formula} = {layer.params}")
        lines += _weight_lines(layer.weights, "    ")
        if layer.layout is not None:
            lines += _layout_lines(layer.layout, "    ")
    return lines


# ---------------------------------------------------------------- JSON

def to_json(value: Any) -> Any:
    """The explanation as JSON values: NamedTuples as objects, tuples as lists, enums as their values."""
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return {name: to_json(getattr(value, name)) for name in value._fields}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple):
        return [to_json(v) for v in value]
    return value


def _decode(kind: Any, value: Any) -> Any:
    if value is None:
        return None
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        return _decode(next(a for a in args if a is not type(None)), value)
    if origin is tuple:
        return tuple(_decode(args[0], v) for v in value)
    if isinstance(kind, type) and issubclass(kind, Enum):
        return kind(value)
    if isinstance(kind, type) and issubclass(kind, tuple) and hasattr(kind, "_fields"):
        hints = typing.get_type_hints(kind)
        return kind(**{name: _decode(hints[name], value[name]) for name in kind._fields})
    return value


def from_json(obj: Mapping) -> Explained:
    """``to_json``'s output (an ``Explained``) read back into the NamedTuples."""
    return _decode(Explained, obj)
