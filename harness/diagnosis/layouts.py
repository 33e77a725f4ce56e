"""Which layout mistake a port made: a table of hypotheses, each tried against the port's numbers.

People port a trained Keras LSTM/GRU/SimpleRNN to C, an FPGA, ONNX or PyTorch; when their numbers
disagree with Keras, the question is which layout mistake they made.  Each row of ``HYPOTHESES`` is one
such mistake, written as a transformation of what the ONE reference (``reference.recurrent.run``) is
fed (config, weights, inputs) and of what it returns (outputs): there is no second copy of any cell
equation here.  ``explain`` runs every row that can change something for this layer and data, compares
its prediction with the port's outputs under the harness's tolerance rule (``compare.compare``) and
ranks the rows; ``verdict`` words the result in one sentence.

Weight hypotheses act on both directions of a Bidirectional layer (a port has one code path).  Two
choices a port must make when it implements the other GRU variant (docs/semantics.md §2):

- reset_after=False equations on Keras's reset_after=True weights (2, 3U): the port folds the two bias
  rows into its one bias as ``row 0 + row 1`` (how Keras's legacy converters fold two bias rows into
  one, §11); z and r come out exact, only the candidate differs (r applied before the matmul, and to
  no bias).
- reset_after=True equations on Keras's reset_after=False weights (3U,): the port takes that bias as its
  input bias and a recurrent bias of zeros.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from enum import Enum
from typing import NamedTuple

import numpy as np

from .. import compare, layers
from ..reference import recurrent
from ..tolerances import Tolerance

Array = np.ndarray
Runner = Callable[..., dict[str, Array]]  # recurrent.run's signature


class Family(str, Enum):
    """The kind of mistake a hypothesis stands for."""

    KERAS = "Keras's layout"  # the null hypothesis: the port agrees
    GATE_ORDER = "gate order"
    TRANSPOSED = "transposed kernels"
    GRU_VARIANT = "GRU variant"
    BIAS = "bias"
    GO_BACKWARDS = "go_backwards"
    ACTIVATION = "activation"
    STATES = "states"
    BIDIRECTIONAL = "Bidirectional"
    MASK = "mask"


class Given(NamedTuple):
    """What decides whether a hypothesis can change anything: the layer, the data's shape, a mask."""

    cfg: Mapping
    timesteps: int
    features: int
    masked: bool


class Setup(NamedTuple):
    """One run of the reference: what ``recurrent.run`` takes."""

    cfg: Mapping
    x: Array
    weights: Mapping
    mask: Array | None
    initial_state: list[Array] | None


def _same(setup: Setup) -> Setup:
    return setup


def _as_returned(cfg: Mapping, outputs: dict[str, Array]) -> dict[str, Array]:
    return outputs


class Hypothesis(NamedTuple):
    """One layout mistake: where it can change something, and what it does to the reference's run.

    ``setup`` is what the port feeds the cell equations instead (config, weights, inputs); ``outputs``
    is what it does to the outputs (by name) before returning them, given the layer's config."""

    name: str
    family: Family
    describe: str  # one line for the report: "gate order [i, f, o, c] instead of Keras's [i, f, c, o]"
    applies: Callable[[Given], bool]
    setup: Callable[[Setup], Setup] = _same
    outputs: Callable[[Mapping, dict[str, Array]], dict[str, Array]] = _as_returned


class Explanation(NamedTuple):
    """How well one hypothesis reproduces the port's outputs (ratio: worst error / allowed)."""

    hypothesis: Hypothesis
    max_abs: float
    ratio: float
    reproduces: bool


# ---------------------------------------------------------------- where a hypothesis can change something

def _cells(cfg: Mapping) -> list[Mapping]:
    """The cell configs that run (one, or a Bidirectional's two)."""
    return [c for c in layers.cells(cfg) if c is not None]


def _any_cell(test: Callable[[Mapping], bool]) -> Callable[[Given], bool]:
    return lambda given: any(test(c) for c in _cells(given.cfg))


def _always(given: Given) -> bool:
    return True


def _transpose_changes(given: Given) -> bool:
    """Reading an (r, c) matrix's memory as (c, r) and transposing moves entries unless r or c is 1."""
    def changes(cell: Mapping) -> bool:
        width = layers.gates(cell["class"]) * cell["units"]
        return (given.features > 1 and width > 1) or cell["units"] > 1
    return any(changes(c) for c in _cells(given.cfg))


def _plain(test: Callable[[Given], bool]) -> Callable[[Given], bool]:
    return lambda given: not layers.is_bidirectional(given.cfg) and test(given)


def _bidirectional(test: Callable[[Given], bool]) -> Callable[[Given], bool]:
    return lambda given: layers.is_bidirectional(given.cfg) and test(given)


def _twin_directions(given: Given) -> bool:
    """Both directions alike (class, units), so their halves can trade places."""
    fw, bw = layers.cells(given.cfg)
    return fw["class"] == bw["class"] and fw["units"] == bw["units"]


# ---------------------------------------------------------------- weight and config changes, per cell

# (cell config, cell weights) -> the config and weights the port's equations effectively run with.
CellChange = Callable[[Mapping, Mapping[str, Array]], tuple[Mapping, dict[str, Array]]]


def _per_cell(change: CellChange) -> Callable[[Setup], Setup]:
    """A cell change applied to the layer, or to both directions of a Bidirectional one."""
    def setup(s: Setup) -> Setup:
        if not layers.is_bidirectional(s.cfg):
            cfg, weights = change(s.cfg, s.weights)
            return s._replace(cfg=cfg, weights=weights)
        layer, w_fw = change(s.cfg["layer"], s.weights["forward"])
        back, w_bw = change(layers.backward_spec(s.cfg), s.weights["backward"])
        cfg = {**s.cfg, "layer": layer, **({"backward_layer": back} if s.cfg.get("backward_layer") else {})}
        return s._replace(cfg=cfg, weights={"forward": w_fw, "backward": w_bw})
    return setup


def _gate_order(cls: str, order: tuple[str, ...]) -> CellChange:
    """The port reads Keras's blocks as if they were in ``order``: its gate g is Keras's block order.index(g)."""
    keras = layers.GATES[cls]

    def change(cell: Mapping, w: Mapping[str, Array]) -> tuple[Mapping, dict[str, Array]]:
        if cell["class"] != cls:
            return cell, dict(w)

        def reorder(v: Array) -> Array:
            blocks = np.split(np.asarray(v), len(keras), axis=-1)
            return np.concatenate([blocks[order.index(g)] for g in keras], axis=-1)
        return cell, {name: reorder(v) for name, v in w.items()}  # kernel, recurrent_kernel, bias (both rows)
    return change


def _kernels_read_transposed(cell: Mapping, w: Mapping[str, Array]) -> tuple[Mapping, dict[str, Array]]:
    """Each (rows, cols) kernel's row-major memory read as (cols, rows), then transposed."""
    def read(v: Array) -> Array:
        v = np.asarray(v)
        return v.reshape(v.shape[::-1]).T
    return cell, {**w, "kernel": read(w["kernel"]), "recurrent_kernel": read(w["recurrent_kernel"])}


def _recurrent_blocks_transposed(cell: Mapping, w: Mapping[str, Array]) -> tuple[Mapping, dict[str, Array]]:
    blocks = np.split(np.asarray(w["recurrent_kernel"]), layers.gates(cell["class"]), axis=-1)
    return cell, {**w, "recurrent_kernel": np.concatenate([b.T for b in blocks], axis=-1)}


def _gru(reset_after: bool, bias: Callable[[Array], Array], new_reset_after: bool | None = None) -> CellChange:
    """On a GRU cell with this ``reset_after``: the port's bias from Keras's, and its own variant."""
    def change(cell: Mapping, w: Mapping[str, Array]) -> tuple[Mapping, dict[str, Array]]:
        if cell["class"] != "GRU" or cell["reset_after"] != reset_after:
            return cell, dict(w)
        new_cell = cell if new_reset_after is None else {**cell, "reset_after": new_reset_after}
        new_w = {**w, "bias": bias(np.asarray(w["bias"]))} if "bias" in w else dict(w)
        return new_cell, new_w
    return change


def _input_bias_only(b: Array) -> Array:
    return np.stack([b, np.zeros_like(b)])


def _rows_summed(b: Array) -> Array:
    return b[0] + b[1]


def _bias_zeros(cell: Mapping, w: Mapping[str, Array]) -> tuple[Mapping, dict[str, Array]]:
    return cell, ({**w, "bias": np.zeros_like(np.asarray(w["bias"]))} if "bias" in w else dict(w))


def _activation(key: str, was: tuple[str, ...], becomes: str) -> CellChange:
    def change(cell: Mapping, w: Mapping[str, Array]) -> tuple[Mapping, dict[str, Array]]:
        return ({**cell, key: becomes} if cell.get(key) in was else cell), dict(w)
    return change


def _uses(key: str, was: tuple[str, ...]) -> Callable[[Given], bool]:
    return _any_cell(lambda c: c.get(key) in was)


def _no_mask(s: Setup) -> Setup:
    return s._replace(mask=None)


def _run_forward(s: Setup) -> Setup:
    return s._replace(cfg={**s.cfg, "go_backwards": False})


# ---------------------------------------------------------------- output changes

def _output_reversed(cfg: Mapping, out: dict[str, Array]) -> dict[str, Array]:
    return {**out, "output": out["output"][:, ::-1]}


def _direction_states(cfg: Mapping) -> list[tuple[str, list[str]]]:
    """(cell class, its state output names) per direction, in Keras's order."""
    names = layers.state_output_names(cfg)
    result, start = [], 0
    for cell in _cells(cfg):
        n = len(layers.state_names(cell["class"]))
        result.append((cell["class"], names[start:start + n]))
        start += n
    return result


def _renamed(out: dict[str, Array], pairs: Sequence[tuple[str, str]]) -> dict[str, Array]:
    """``out`` with the values of each pair of names traded (names the layer does not return are left out)."""
    new = dict(out)
    for a, b in pairs:
        if a in out and b in out:
            new[a], new[b] = out[b], out[a]
    return new


def _lstm_states_swapped(cfg: Mapping, out: dict[str, Array]) -> dict[str, Array]:
    return _renamed(out, [tuple(names) for cls, names in _direction_states(cfg) if cls == "LSTM"])


def _halves_swapped(cfg: Mapping, out: dict[str, Array]) -> dict[str, Array]:
    (_, fw_states), (_, bw_states) = _direction_states(cfg)
    pairs = list(zip(fw_states, bw_states))
    if cfg["merge_mode"] is None:
        pairs.append(tuple(layers.output_names(cfg)[:2]))
    new = _renamed(out, pairs)
    if cfg["merge_mode"] == "concat":
        u_fw = cfg["layer"]["units"]
        new["output"] = np.concatenate([out["output"][..., u_fw:], out["output"][..., :u_fw]], axis=-1)
    return new


def _backward_unreversed(cfg: Mapping, out: dict[str, Array]) -> dict[str, Array]:
    if cfg["merge_mode"] is None:
        name = layers.output_names(cfg)[1]
        return {**out, name: out[name][:, ::-1]}
    u_fw = cfg["layer"]["units"]  # concat: the backward half is the last units
    seq = out["output"]
    return {**out, "output": np.concatenate([seq[..., :u_fw], seq[..., u_fw:][:, ::-1]], axis=-1)}


# ---------------------------------------------------------------- the table

def _gate_orders() -> tuple[Hypothesis, ...]:
    rows = []
    for cls, keras in layers.GATES.items():
        for order in itertools.permutations(keras):
            if order == keras:
                continue
            rows.append(Hypothesis(
                f"gate-order-{cls.lower()}-{''.join(order)}", Family.GATE_ORDER,
                f"gate order [{', '.join(order)}] instead of Keras's [{', '.join(keras)}]",
                _any_cell(lambda c, cls=cls: c["class"] == cls), _per_cell(_gate_order(cls, order))))
    return tuple(rows)


_GRU_AFTER = _any_cell(lambda c: c["class"] == "GRU" and c["reset_after"])
_GRU_AFTER_BIAS = _any_cell(lambda c: c["class"] == "GRU" and c["reset_after"] and c["use_bias"])


def _sequences_t2(given: Given) -> bool:
    """A returned sequence long enough for its time order to matter."""
    return layers.returns(given.cfg, "return_sequences") and given.timesteps > 1


def _backwards_t2(given: Given) -> bool:
    return given.cfg["go_backwards"] and given.timesteps > 1


def _lstm_states_returned(given: Given) -> bool:
    return layers.returns(given.cfg, "return_state") and any(c["class"] == "LSTM" for c in _cells(given.cfg))


HYPOTHESES: tuple[Hypothesis, ...] = (
    Hypothesis("keras", Family.KERAS, "Keras's own layout", _always),
    *_gate_orders(),
    Hypothesis("kernels-transposed", Family.TRANSPOSED,
               "kernels' memory read transposed (kernel as (k*U, F), recurrent kernel as (k*U, U), then .T)",
               _transpose_changes, _per_cell(_kernels_read_transposed)),
    Hypothesis("recurrent-blocks-transposed", Family.TRANSPOSED, "each U x U recurrent gate block transposed",
               _any_cell(lambda c: c["units"] > 1), _per_cell(_recurrent_blocks_transposed)),
    Hypothesis("gru-reset-before", Family.GRU_VARIANT,
               "reset_after=False equations on reset_after=True weights (bias rows summed into one bias)",
               _GRU_AFTER, _per_cell(_gru(True, _rows_summed, new_reset_after=False))),
    Hypothesis("gru-reset-after", Family.GRU_VARIANT,
               "reset_after=True equations on reset_after=False weights (its bias as the input bias, "
               "no recurrent bias)",
               _any_cell(lambda c: c["class"] == "GRU" and not c["reset_after"]),
               _per_cell(_gru(False, _input_bias_only, new_reset_after=True))),
    Hypothesis("gru-bias-rows-swapped", Family.GRU_VARIANT,
               "GRU bias rows swapped (row 1 as the input bias, row 0 as the recurrent bias)",
               _GRU_AFTER_BIAS, _per_cell(_gru(True, lambda b: b[::-1]))),
    Hypothesis("gru-bias-rows-summed", Family.GRU_VARIANT,
               "GRU bias rows summed into the input bias (recurrent bias not multiplied by r)",
               _GRU_AFTER_BIAS, _per_cell(_gru(True, lambda b: _input_bias_only(_rows_summed(b))))),
    Hypothesis("bias-dropped", Family.BIAS, "bias dropped (all zeros)",
               _any_cell(lambda c: c["use_bias"]), _per_cell(_bias_zeros)),
    Hypothesis("go-backwards-output-reversed", Family.GO_BACKWARDS,
               "go_backwards output reversed back to input time order",
               _plain(lambda given: _backwards_t2(given) and _sequences_t2(given)), outputs=_output_reversed),
    Hypothesis("go-backwards-ignored", Family.GO_BACKWARDS, "go_backwards ignored (the sequence run forward)",
               _plain(_backwards_t2), _run_forward),
    Hypothesis("hard-sigmoid-keras2", Family.ACTIVATION,
               "Keras 2 hard_sigmoid clip(0.2x + 0.5, 0, 1) as the recurrent activation",
               _uses("recurrent_activation", ("sigmoid", "hard_sigmoid")),
               _per_cell(_activation("recurrent_activation", ("sigmoid", "hard_sigmoid"), "hard_sigmoid_keras2"))),
    Hypothesis("recurrent-activation-tanh", Family.ACTIVATION, "tanh instead of sigmoid as the recurrent activation",
               _uses("recurrent_activation", ("sigmoid",)),
               _per_cell(_activation("recurrent_activation", ("sigmoid",), "tanh"))),
    Hypothesis("activation-sigmoid", Family.ACTIVATION, "sigmoid instead of tanh as the activation",
               _uses("activation", ("tanh",)), _per_cell(_activation("activation", ("tanh",), "sigmoid"))),
    Hypothesis("lstm-states-swapped", Family.STATES, "LSTM states h and c swapped",
               _lstm_states_returned, outputs=_lstm_states_swapped),
    Hypothesis("bidirectional-halves-swapped", Family.BIDIRECTIONAL, "forward and backward halves swapped",
               _bidirectional(lambda given: _twin_directions(given) and (
                   given.cfg["merge_mode"] in ("concat", None) or layers.returns(given.cfg, "return_state"))),
               outputs=_halves_swapped),
    # sum/ave/mul merge the halves before the port's output: undoing the reversal there would need the
    # reference's merge re-typed, so this row covers concat and merge_mode=None only.
    Hypothesis("bidirectional-backward-unreversed", Family.BIDIRECTIONAL,
               "backward output left in processing order (not reversed back to input time)",
               _bidirectional(lambda given: _sequences_t2(given) and given.cfg["merge_mode"] in ("concat", None)),
               outputs=_backward_unreversed),
    Hypothesis("mask-ignored", Family.MASK, "mask ignored (every step run)", lambda given: given.masked, _no_mask),
)


# ---------------------------------------------------------------- trying them

def hypotheses(cfg: Mapping, x_shape: Sequence[int], masked: bool = False) -> tuple[Hypothesis, ...]:
    """The rows of HYPOTHESES that change something for this layer, a (B, T, F) input and a mask or none."""
    given = Given(cfg, int(x_shape[1]), int(x_shape[2]), masked)
    return tuple(h for h in HYPOTHESES if h.applies(given))


def _score(comparisons: Sequence[compare.Comparison]) -> tuple[float, float, bool]:
    """(max abs error, worst error / allowed, all within tolerance); inf where a comparison could not be made."""
    measured = (compare.Issue.NONE, compare.Issue.VALUES)
    max_abs = max(c.max_abs if c.issue in measured else math.inf for c in comparisons)
    return max_abs, max(c.ratio for c in comparisons), all(c.passed for c in comparisons)


def explain(cfg: Mapping, x: Array, weights: Mapping, port_outputs: Mapping[str, Array], tolerance: Tolerance,
            mask: Array | None = None, initial_state: list[Array] | None = None,
            run: Runner = recurrent.run) -> tuple[Explanation, ...]:
    """Every hypothesis that applies, ranked best first (by ratio, then table order).

    ``port_outputs`` holds some of ``layers.output_names(cfg)`` (e.g. only "output"); each is compared
    with what the hypothesis predicts, ``|port - predicted| <= atol + rtol * |predicted|``.  An output of
    the wrong shape makes that hypothesis fail (ratio inf).  ``run`` is the reference
    (``recurrent.run``)."""
    names = layers.output_names(cfg)
    unknown = [n for n in port_outputs if n not in names]
    if unknown or not port_outputs:
        raise ValueError(f"port outputs must be some of {names}, got {list(port_outputs)}")
    x = np.asarray(x)
    given = Setup(cfg, x, weights, mask, initial_state)
    ranked = []
    for hyp in hypotheses(cfg, x.shape, mask is not None):
        s = hyp.setup(given)
        predicted = hyp.outputs(cfg, run(s.cfg, s.x, s.weights, s.mask, s.initial_state))
        max_abs, ratio, ok = _score([compare.compare(n, port_outputs[n], predicted[n], tolerance)
                                     for n in port_outputs])
        ranked.append(Explanation(hyp, max_abs, ratio, ok))
    return tuple(sorted(ranked, key=lambda e: e.ratio))  # stable: ties keep table order


def _err(e: Explanation) -> str:
    return f"max err {e.max_abs:.2g}"


def verdict(explanations: Sequence[Explanation]) -> str:
    """One sentence: which hypothesis reproduces the port's outputs, or that none does (and the closest)."""
    if not explanations:
        return "no layout hypothesis was tried"
    best = explanations[0]
    fitting = [e for e in explanations if e.reproduces]
    if not fitting:
        return f"no layout hypothesis reproduces the outputs (closest: {best.hypothesis.describe}, {_err(best)})"
    if best.hypothesis.family is Family.KERAS:
        text = f"the port agrees with Keras's layout ({_err(best)})"
        others = "; ".join(f"{e.hypothesis.describe} ({_err(e)})" for e in fitting[1:])
        return f"{text}; indistinguishable on this data: {others}" if others else text
    if len(fitting) == 1:
        return f"the outputs are reproduced within tolerance ({_err(best)}) by {best.hypothesis.describe}"
    listed = "; ".join(f"{e.hypothesis.describe} ({_err(e)})" for e in fitting)
    return f"{len(fitting)} hypotheses reproduce the outputs, indistinguishable on this data: {listed}"
