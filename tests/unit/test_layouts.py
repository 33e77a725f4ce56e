"""The layout diagnosis against a fake port with planted mistakes (harness/diagnosis/layouts.py).

The "port" below is an independent NumPy implementation of LSTM, GRU (both variants), SimpleRNN and
Bidirectional, written from the equations of docs/semantics.md §1-§6 with plain time loops; it never
calls the reference.  It reads the Keras weights the way a C port would (row-major memory, gate
blocks by its own gate letters), and each ``Mistakes`` switch plants one mistake in it.  Every test
feeds the port's outputs to ``explain`` and checks that the planted mistake is what gets named.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from harness import layers, tolerances
from harness.diagnosis import layouts
from harness.keras_api import with_defaults

B, T, F, U = 3, 5, 4, 3
TOL = tolerances.for_row("float32")
MASK = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [0, 1, 1, 0, 1]], dtype=bool)


# ---------------------------------------------------------------- the fake port

@dataclass(frozen=True)
class Mistakes:
    """One planted mistake per switch; the defaults are a correct port."""

    order: str = ""  # the gate letters the port reads Keras's blocks as ("": its own, correct order)
    transposed: bool = False  # each kernel's memory read as (cols, rows) and transposed back
    blocks_transposed: bool = False  # each U x U recurrent gate block transposed
    gru: str = ""  # "other-variant", "rows-swapped", "rows-summed"
    no_bias: bool = False
    unreverse_output: bool = False  # go_backwards output put back into input time order
    run_forward: bool = False  # go_backwards ignored
    recurrent_activation: str = ""  # "keras2-hard-sigmoid" or "tanh" instead of the layer's
    activation_sigmoid: bool = False  # sigmoid instead of tanh as the activation
    swap_hc: bool = False
    ignore_mask: bool = False
    swap_halves: bool = False  # Bidirectional: forward and backward halves traded
    backward_unreversed: bool = False  # Bidirectional: backward sequence left in processing order


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


PORT_ACTIVATIONS: dict[str, Callable] = {
    "tanh": np.tanh, "sigmoid": sigmoid,
    "hard_sigmoid": lambda v: np.clip(v / 6.0 + 0.5, 0.0, 1.0),  # Keras 3
    "keras2-hard-sigmoid": lambda v: np.clip(0.2 * v + 0.5, 0.0, 1.0),
}


def read_matrix(w: np.ndarray, transposed: bool) -> np.ndarray:
    """The port's view of a (rows, cols) Keras kernel handed over as row-major memory."""
    rows, cols = w.shape
    memory = np.asarray(w, dtype=float).ravel()
    out = np.empty((rows, cols))
    for r in range(rows):
        for c in range(cols):
            # Right: element (r, c) sits at r*cols + c.  Mistake: the port takes the memory for a
            # (cols, rows) matrix and reads its element (c, r), at c*rows + r.
            out[r, c] = memory[c * rows + r] if transposed else memory[r * cols + c]
    return out


class Cell:
    """The port's weights for one cell, cut into gate blocks by the port's own gate letters."""

    def __init__(self, w: dict, units: int, letters: str, m: Mistakes):
        self.u, self.letters, self.m = units, letters, m
        self.kernel = read_matrix(w["kernel"], m.transposed)
        self.recurrent = read_matrix(w["recurrent_kernel"], m.transposed)

    def block(self, matrix: np.ndarray, letter: str) -> np.ndarray:
        g = self.letters.index(letter)
        return matrix[..., g * self.u:(g + 1) * self.u]

    def k(self, letter: str) -> np.ndarray:
        return self.block(self.kernel, letter)

    def r(self, letter: str) -> np.ndarray:
        blk = self.block(self.recurrent, letter)
        return blk.T if self.m.blocks_transposed else blk


def activations(cfg: dict, m: Mistakes) -> tuple[Callable, Callable]:
    act = sigmoid if m.activation_sigmoid else PORT_ACTIVATIONS[cfg["activation"]]
    ract = PORT_ACTIVATIONS[m.recurrent_activation or cfg.get("recurrent_activation", "sigmoid")]
    return act, ract


def lstm_step(cfg: dict, w: dict, m: Mistakes):
    cell = Cell(w, cfg["units"], m.order or "ifco", m)
    bias = np.zeros(4 * cfg["units"]) if m.no_bias or "bias" not in w else np.asarray(w["bias"], float)
    act, ract = activations(cfg, m)

    def step(x_t, states):
        h, c = states
        z = {g: x_t @ cell.k(g) + h @ cell.r(g) + cell.block(bias, g) for g in "ifco"}
        c_new = ract(z["f"]) * c + ract(z["i"]) * act(z["c"])
        h_new = ract(z["o"]) * act(c_new)
        return h_new, [h_new, c_new]
    return step


def gru_step(cfg: dict, w: dict, m: Mistakes):
    u = cfg["units"]
    cell = Cell(w, u, m.order or "zrh", m)
    layer_after = cfg["reset_after"]
    port_after = (not layer_after) if m.gru == "other-variant" else layer_after
    b = np.zeros((2, 3 * u) if layer_after else 3 * u)
    if "bias" in w and not m.no_bias:
        b = np.asarray(w["bias"], float)
    if layer_after and port_after:
        bx, bh = (b[1], b[0]) if m.gru == "rows-swapped" else (b[0], b[1])
        if m.gru == "rows-summed":
            bx, bh = b[0] + b[1], np.zeros(3 * u)
    elif layer_after:  # a reset_after=False port folds the two rows into its one bias
        bx = b[0] + b[1]
    else:
        bx, bh = b, np.zeros(3 * u)  # a reset_after=True port on a (3U,) bias: no recurrent bias
    act, ract = activations(cfg, m)

    def step(x_t, states):
        (h,) = states
        xg = {g: x_t @ cell.k(g) + cell.block(bx, g) for g in "zrh"}
        if port_after:
            hg = {g: h @ cell.r(g) + cell.block(bh, g) for g in "zrh"}
            z, r = ract(xg["z"] + hg["z"]), ract(xg["r"] + hg["r"])
            cand = act(xg["h"] + r * hg["h"])
        else:
            z, r = ract(xg["z"] + h @ cell.r("z")), ract(xg["r"] + h @ cell.r("r"))
            cand = act(xg["h"] + (r * h) @ cell.r("h"))
        h_new = z * h + (1.0 - z) * cand
        return h_new, [h_new]
    return step


def simple_step(cfg: dict, w: dict, m: Mistakes):
    cell = Cell(w, cfg["units"], "h", m)
    bias = 0.0 if m.no_bias or "bias" not in w else np.asarray(w["bias"], float)
    act, _ = activations(cfg, m)

    def step(x_t, states):
        h_new = act(x_t @ cell.k("h") + bias + states[0] @ cell.r("h"))
        return h_new, [h_new]
    return step


STEPS = {"LSTM": lstm_step, "GRU": gru_step, "SimpleRNN": simple_step}
N_STATES = {"LSTM": 2, "GRU": 1, "SimpleRNN": 1}


def time_loop(cfg: dict, x, w, m: Mistakes, mask, init, zero_masked: bool):
    """(sequence in processing order, last output, final states) of one cell, §5-§6."""
    step = STEPS[cfg["class"]](cfg, w, m)
    batch, u = x.shape[0], cfg["units"]
    states = [np.asarray(s, float) for s in init] if init else [np.zeros((batch, u))] * N_STATES[cfg["class"]]
    backwards = cfg["go_backwards"] and not m.run_forward
    prev, seq = np.zeros((batch, u)), []
    for t in (reversed(range(x.shape[1])) if backwards else range(x.shape[1])):
        out, new = step(x[:, t], states)
        if mask is not None and not m.ignore_mask:
            keep = mask[:, t][:, None]
            new = [np.where(keep, n, s) for n, s in zip(new, states)]
            out = np.where(keep, out, 0.0 if zero_masked else prev)
        states, prev = new, out
        seq.append(out)
    return np.stack(seq, axis=1), prev, states


def port(cfg: dict, x, w, m: Mistakes = Mistakes(), mask=None, init=None) -> dict:
    """Everything the fake port returns, by Keras's output names."""
    if cfg["class"] != "Bidirectional":
        seq, last, states = time_loop(cfg, x, w, m, mask, init, cfg["zero_output_for_mask"])
        if m.unreverse_output:
            seq = seq[:, ::-1]
        out = {"output": seq if cfg["return_sequences"] else last}
        names = ["c", "h"] if m.swap_hc else ["h", "c"]
        return {**out, **dict(zip(names, states))} if cfg["return_state"] else out
    inner = cfg["layer"]
    n = N_STATES[inner["class"]]
    seqs = inner["return_sequences"]  # Bidirectional zeroes masked steps exactly then (§4)
    init_f, init_b = (init[:n], init[n:]) if init else (None, None)
    y_f, last_f, st_f = time_loop(inner, x, w["forward"], m, mask, init_f, seqs)
    y_b, last_b, st_b = time_loop({**inner, "go_backwards": True}, x, w["backward"], m, mask, init_b, seqs)
    y_f, y_b = (y_f, y_b if m.backward_unreversed else y_b[:, ::-1]) if seqs else (last_f, last_b)
    if m.swap_halves:
        y_f, y_b, st_f, st_b = y_b, y_f, st_b, st_f
    out = ({"output_fw": y_f, "output_bw": y_b} if cfg["merge_mode"] is None
           else {"output": np.concatenate([y_f, y_b], axis=-1)})
    if inner["return_state"]:
        names = ["h", "c"][:n]
        if m.swap_hc:
            names = names[::-1]
        out.update({f"{s}_fw": v for s, v in zip(names, st_f)})
        out.update({f"{s}_bw": v for s, v in zip(names, st_b)})
    return out


# ---------------------------------------------------------------- helpers

def random_weights(cfg: dict, rng: np.random.Generator, features: int = F) -> dict:
    shapes = layers.weight_shapes(cfg, features)

    def draw(tree):
        return {k: draw(v) if isinstance(v, dict) else rng.uniform(-1.0, 1.0, v) for k, v in tree.items()}
    return draw(shapes)


def diagnose(spec: dict, mistakes: Mistakes = Mistakes(), mask=None, init: bool = False, only=None,
             features: int = F, weights: dict | None = None, seed: int = 0):
    """Run the fake port on random data and diagnose it: (explanations, verdict)."""
    cfg = with_defaults(spec)
    rng = np.random.default_rng(seed)
    w = weights if weights is not None else random_weights(cfg, rng, features)
    x = rng.uniform(-2.0, 2.0, (B, T, features))
    state = [rng.uniform(-1.0, 1.0, (B, u)) for u in layers.state_units(cfg)] if init else None
    outputs = port(cfg, x, w, mistakes, mask, state)
    if only is not None:
        outputs = {k: outputs[k] for k in only}
    found = layouts.explain(cfg, x, w, outputs, TOL, mask=mask, initial_state=state)
    return found, layouts.verdict(found)


def fitting(found) -> list[str]:
    return [e.hypothesis.name for e in found if e.reproduces]


def lstm(**args) -> dict:
    return {"class": "LSTM", "units": U, **args}


def gru(**args) -> dict:
    return {"class": "GRU", "units": U, **args}


def rnn(**args) -> dict:
    return {"class": "SimpleRNN", "units": U, **args}


def bi(layer: dict, **args) -> dict:
    return {"class": "Bidirectional", "layer": layer, **args}


# ---------------------------------------------------------------- the correct port

@pytest.mark.parametrize("spec, mask, init", [
    (lstm(), None, False),
    (lstm(return_sequences=True, return_state=True), MASK, True),
    (gru(), None, False),
    (gru(reset_after=False, return_sequences=True), MASK, False),
    (rnn(go_backwards=True, return_sequences=True, return_state=True), MASK, True),
    (bi(lstm(return_sequences=True, return_state=True)), MASK, True),
    (bi(gru(return_sequences=True), merge_mode=None), None, False),
], ids=["lstm", "lstm-masked-state", "gru", "gru-v1-masked", "rnn-backwards", "bi-lstm", "bi-gru-none"])
def test_correct_port_is_keras_layout_and_nothing_else(spec, mask, init):
    found, text = diagnose(spec, mask=mask, init=init)
    assert fitting(found) == ["keras"]
    assert found[0].max_abs < 1e-12
    assert text.startswith("the port agrees with Keras's layout (max err ")
    assert "indistinguishable" not in text


def test_noise_is_reproduced_by_nothing():
    cfg = with_defaults(lstm(return_sequences=True))
    rng = np.random.default_rng(1)
    w, x = random_weights(cfg, rng), rng.uniform(-2, 2, (B, T, F))
    found = layouts.explain(cfg, x, w, {"output": rng.uniform(-1, 1, (B, T, U))}, TOL)
    assert fitting(found) == []
    assert layouts.verdict(found).startswith("no layout hypothesis reproduces the outputs (closest: ")


# ---------------------------------------------------------------- one planted mistake per family

GATE_CASES = [(cls, "".join(order)) for cls, mine in (("LSTM", "ifco"), ("GRU", "zrh"))
              for order in itertools.permutations(mine) if "".join(order) != mine]


@pytest.mark.parametrize("cls, order", GATE_CASES, ids=[f"{c}-{o}" for c, o in GATE_CASES])
def test_gate_order(cls, order):
    found, text = diagnose({"class": cls, "units": U, "return_sequences": True}, Mistakes(order=order))
    assert fitting(found) == [f"gate-order-{cls.lower()}-{order}"]
    assert text.endswith(f"by gate order [{', '.join(order)}] instead of Keras's [{', '.join(layers.GATES[cls])}]")


def test_gate_order_on_both_directions_of_a_bidirectional_layer():
    found, _ = diagnose(bi(lstm(return_sequences=True)), Mistakes(order="icfo"))
    assert fitting(found) == ["gate-order-lstm-icfo"]


PLANTED = [
    (lstm(), Mistakes(transposed=True), "kernels-transposed"),
    (gru(reset_after=False), Mistakes(transposed=True), "kernels-transposed"),
    (rnn(), Mistakes(transposed=True), "kernels-transposed"),
    (lstm(), Mistakes(blocks_transposed=True), "recurrent-blocks-transposed"),
    (gru(), Mistakes(blocks_transposed=True), "recurrent-blocks-transposed"),
    (bi(gru(return_sequences=True)), Mistakes(blocks_transposed=True), "recurrent-blocks-transposed"),
    (gru(), Mistakes(gru="other-variant"), "gru-reset-before"),
    (gru(reset_after=False), Mistakes(gru="other-variant"), "gru-reset-after"),
    (gru(return_sequences=True), Mistakes(gru="rows-swapped"), "gru-bias-rows-swapped"),
    (gru(return_sequences=True), Mistakes(gru="rows-summed"), "gru-bias-rows-summed"),
    (lstm(), Mistakes(no_bias=True), "bias-dropped"),
    (gru(), Mistakes(no_bias=True), "bias-dropped"),
    (gru(reset_after=False), Mistakes(no_bias=True), "bias-dropped"),
    (rnn(), Mistakes(no_bias=True), "bias-dropped"),
    (rnn(go_backwards=True, return_sequences=True), Mistakes(unreverse_output=True), "go-backwards-output-reversed"),
    (lstm(go_backwards=True), Mistakes(run_forward=True), "go-backwards-ignored"),
    (lstm(), Mistakes(recurrent_activation="keras2-hard-sigmoid"), "hard-sigmoid-keras2"),
    (gru(recurrent_activation="hard_sigmoid"), Mistakes(recurrent_activation="keras2-hard-sigmoid"),
     "hard-sigmoid-keras2"),
    (gru(), Mistakes(recurrent_activation="tanh"), "recurrent-activation-tanh"),
    (rnn(), Mistakes(activation_sigmoid=True), "activation-sigmoid"),
    (lstm(), Mistakes(activation_sigmoid=True), "activation-sigmoid"),
    (lstm(return_sequences=True), Mistakes(ignore_mask=True), "mask-ignored"),
    (bi(gru(return_sequences=True)), Mistakes(ignore_mask=True), "mask-ignored"),
]


@pytest.mark.parametrize("spec, mistakes, expected", PLANTED,
                         ids=[f"{n}-{spec['class']}-{name}" for n, (spec, _, name) in enumerate(PLANTED)])
def test_planted_mistake_is_named_alone(spec, mistakes, expected):
    found, text = diagnose(spec, mistakes, mask=MASK if mistakes.ignore_mask else None)
    assert fitting(found) == [expected]
    assert found[0].hypothesis.name == expected
    assert text.startswith("the outputs are reproduced within tolerance (max err ")


def test_lstm_states_swapped_seen_in_the_states_alone():
    found, _ = diagnose(lstm(return_state=True), Mistakes(swap_hc=True), init=True, only=["h", "c"])
    assert fitting(found) == ["lstm-states-swapped"]


@pytest.mark.parametrize("merge_mode, only", [("concat", None), (None, None),
                                              ("sum", ["h_fw", "c_fw", "h_bw", "c_bw"])])
def test_bidirectional_halves_swapped(merge_mode, only):
    spec = bi(lstm(return_sequences=True, return_state=True), merge_mode=merge_mode)
    found, _ = diagnose(spec, Mistakes(swap_halves=True), only=only)
    assert fitting(found) == ["bidirectional-halves-swapped"]


@pytest.mark.parametrize("merge_mode", ["concat", None])
def test_bidirectional_backward_left_in_processing_order(merge_mode):
    found, _ = diagnose(bi(gru(return_sequences=True), merge_mode=merge_mode), Mistakes(backward_unreversed=True))
    assert fitting(found) == ["bidirectional-backward-unreversed"]


# ---------------------------------------------------------------- data that cannot tell hypotheses apart

def test_zero_bias_cannot_tell_keras_from_the_bias_hypotheses():
    cfg = with_defaults(gru(return_sequences=True))
    w = random_weights(cfg, np.random.default_rng(3))
    w["bias"] = np.zeros_like(w["bias"])  # what a freshly built Keras GRU holds
    found, text = diagnose(gru(return_sequences=True), weights=w)
    assert fitting(found) == ["keras", "gru-bias-rows-swapped", "gru-bias-rows-summed", "bias-dropped"]
    assert text.startswith("the port agrees with Keras's layout (max err ")
    assert "; indistinguishable on this data: GRU bias rows swapped" in text


def test_one_feature_cannot_tell_a_transposed_kernel_from_transposed_blocks():
    # F=1: the (1, U) kernel reads the same either way, and SimpleRNN's one recurrent block is the kernel.
    found, text = diagnose(rnn(return_sequences=True), Mistakes(blocks_transposed=True), features=1)
    assert fitting(found) == ["kernels-transposed", "recurrent-blocks-transposed"]
    assert found[0].ratio == found[1].ratio
    assert text.startswith("2 hypotheses reproduce the outputs, indistinguishable on this data: kernels' memory")


# ---------------------------------------------------------------- the table and bad input

def test_every_gate_permutation_is_tried_once_and_only_where_it_applies():
    def count(spec, family, **given):
        return sum(h.family is family for h in layouts.hypotheses(with_defaults(spec), (B, T, F), **given))

    assert count(lstm(), layouts.Family.GATE_ORDER) == math.factorial(4) - 1
    assert count(gru(), layouts.Family.GATE_ORDER) == math.factorial(3) - 1
    assert count(rnn(), layouts.Family.GATE_ORDER) == 0
    assert count(lstm(), layouts.Family.MASK) == 0
    assert count(lstm(), layouts.Family.MASK, masked=True) == 1
    assert count(lstm(return_sequences=True), layouts.Family.GO_BACKWARDS) == 0
    assert count(lstm(return_sequences=True, go_backwards=True), layouts.Family.GO_BACKWARDS) == 2
    names = [h.name for h in layouts.HYPOTHESES]
    assert len(names) == len(set(names))
    assert names[0] == "keras"


def test_wrong_shape_reproduces_nothing_and_raises_nothing():
    cfg = with_defaults(lstm())
    rng = np.random.default_rng(4)
    w, x = random_weights(cfg, rng), rng.uniform(-2, 2, (B, T, F))
    found = layouts.explain(cfg, x, w, {"output": np.zeros((B, T, U))}, TOL)  # a sequence; the layer returns (B, U)
    assert all(e.ratio == math.inf and e.max_abs == math.inf and not e.reproduces for e in found)
    assert layouts.verdict(found) == (
        "no layout hypothesis reproduces the outputs (closest: Keras's own layout, max err inf)")


def test_an_output_the_layer_does_not_return_is_refused():
    cfg = with_defaults(lstm())
    with pytest.raises(ValueError, match=r"port outputs must be some of \['output'\], got \['h'\]"):
        layouts.explain(cfg, np.zeros((B, T, F)), random_weights(cfg, np.random.default_rng(0)),
                        {"h": np.zeros((B, U))}, TOL)


def row(name: str) -> layouts.Hypothesis:
    return next(h for h in layouts.HYPOTHESES if h.name == name)


def test_verdict_text():
    gate = layouts.Explanation(row("gate-order-lstm-ifoc"), 3e-08, 0.003, True)
    keras = layouts.Explanation(row("keras"), 0.41, 4.1e4, False)
    bias = layouts.Explanation(row("bias-dropped"), 3e-08, 0.003, True)
    assert layouts.verdict((gate, keras)) == (
        "the outputs are reproduced within tolerance (max err 3e-08) by gate order [i, f, o, c] instead of Keras's "
        "[i, f, c, o]")
    assert layouts.verdict((keras,)) == (
        "no layout hypothesis reproduces the outputs (closest: Keras's own layout, max err 0.41)")
    assert layouts.verdict((layouts.Explanation(row("keras"), 1.2e-16, 1e-11, True), bias)) == (
        "the port agrees with Keras's layout (max err 1.2e-16); indistinguishable on this data: "
        "bias dropped (all zeros) (max err 3e-08)")
    assert layouts.verdict((gate, bias, keras)) == (
        "2 hypotheses reproduce the outputs, indistinguishable on this data: gate order [i, f, o, c] instead of "
        "Keras's [i, f, c, o] (max err 3e-08); bias dropped (all zeros) (max err 3e-08)")
