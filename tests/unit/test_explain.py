"""``show``'s weight layout (harness/explain.py), proved without Keras.

The blocks must tile each weight exactly and name layers.GATES's gate; and the layout must be the
one the reference consumes: random weights of the explained shapes, run through a step loop
written here from the explained blocks (by gate letter and ``Use``, with this file's own
sigmoid/tanh), equal harness/reference/recurrent.run on the same weights.  A model case's weights
feed reference/sequential.py and sum to the model_layers formulas.  The text of one small case is
pinned (its expected lines written by hand from the facts in its comment).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness import cli, explain, layers, model_layers, select
from harness.explain import Role, Use
from harness.keras_api import with_defaults
from harness.reference import recurrent, sequential

ROOT = Path(__file__).resolve().parents[2]
RNG_SEED = 1234


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


ACT = {"sigmoid": sigmoid, "tanh": np.tanh, "linear": lambda v: v, None: lambda v: v}


# ---------------------------------------------------------------- an implementation from the explained blocks

def random_weights(cell: explain.Cell, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {w.name: rng.normal(size=w.shape) for w in cell.weights}


class Slices:
    """The explained blocks of one gate, applied: x-term and h-term pieces by ``Use``."""

    def __init__(self, cell: explain.Cell, weights: dict[str, np.ndarray]):
        self.blocks: dict[str, dict[Use, list[np.ndarray]]] = {}
        for w in cell.weights:
            for b in w.blocks:
                self.blocks.setdefault(b.gate, {u: [] for u in Use})[b.use].append(weights[w.name][b.index()])

    def x(self, gate: str, x_t: np.ndarray) -> np.ndarray:
        g = self.blocks[gate]
        return sum(x_t @ k for k in g[Use.INPUT_KERNEL]) + sum(g[Use.INPUT_BIAS], 0.0)

    def h(self, gate: str, h: np.ndarray) -> np.ndarray:
        g = self.blocks[gate]
        return sum(h @ k for k in g[Use.RECURRENT_KERNEL]) + sum(g[Use.RECURRENT_BIAS], 0.0)

    def h_matmul(self, gate: str, h: np.ndarray) -> np.ndarray:
        return sum(h @ k for k in self.blocks[gate][Use.RECURRENT_KERNEL])

    def h_bias(self, gate: str) -> np.ndarray:
        return sum(self.blocks[gate][Use.RECURRENT_BIAS], 0.0)


def step(cfg: dict, s: Slices, x_t: np.ndarray, states: list[np.ndarray]) -> list[np.ndarray]:
    """One step, the Keras equations of docs/semantics.md §1-§3, written here by gate letter."""
    act, ract = ACT[cfg["activation"]], ACT[cfg.get("recurrent_activation")]
    if cfg["class"] == "LSTM":
        h, c = states
        i, f, o = (ract(s.x(g, x_t) + s.h(g, h)) for g in "ifo")
        c_new = f * c + i * act(s.x("c", x_t) + s.h("c", h))
        return [o * act(c_new), c_new]
    (h,) = states
    if cfg["class"] == "SimpleRNN":
        return [act(s.x("h", x_t) + s.h("h", h))]
    z, r = (ract(s.x(g, x_t) + s.h(g, h)) for g in "zr")
    if cfg["reset_after"]:
        cand = act(s.x("h", x_t) + r * (s.h_matmul("h", h) + s.h_bias("h")))
    else:
        cand = act(s.x("h", x_t) + s.h_matmul("h", r * h))
    return [z * h + (1.0 - z) * cand]


def run_cell(cell: explain.Cell, cfg: dict, weights, x, init) -> tuple[np.ndarray, list[np.ndarray]]:
    """The whole sequence in the explained time order: (outputs in processing order, final states)."""
    s, states, outs = Slices(cell, weights), list(init), []
    order = range(x.shape[1] - 1, -1, -1) if cell.go_backwards else range(x.shape[1])
    for t in order:
        states = step(cfg, s, x[:, t], states)
        outs.append(states[0])
    return np.stack(outs, axis=1), states


def case_inputs(layout: explain.Layout, batch: int, steps: int, rng):
    x = rng.normal(size=(batch, steps, layout.features))
    init = [rng.normal(size=(batch, cell.units)) for cell in layout.cells for _ in cell.states]
    return x, init


# ---------------------------------------------------------------- the blocks tile the weights

SPECS = [
    {"class": "LSTM", "units": 3},
    {"class": "LSTM", "units": 2, "use_bias": False},
    {"class": "GRU", "units": 4},
    {"class": "GRU", "units": 4, "reset_after": False},
    {"class": "SimpleRNN", "units": 5},
    {"class": "Bidirectional", "layer": {"class": "LSTM", "units": 3},
     "backward_layer": {"class": "GRU", "units": 2, "go_backwards": True}},
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s["class"] + str(sorted(s))[:40])
def test_blocks_tile_each_weight_once_in_gate_order(spec):
    layout = explain.explain_layer(spec, 7)
    shapes = layers.weight_shapes(with_defaults(spec), 7)
    for cell in layout.cells:
        expected = shapes[cell.weights_key] if cell.weights_key else shapes
        assert {w.name: w.shape for w in cell.weights} == expected
        for w in cell.weights:
            cover = np.zeros(w.shape, dtype=int)
            for b in w.blocks:
                cover[b.index()] += 1
                assert b.stop - b.start == cell.units
            assert (cover == 1).all(), (w.name, cover)  # no gap, no overlap, every element
            rows = [r for r in range(len(w.rows))] or [None]
            for r in rows:  # per bias row, the gates come in layers.GATES's order along the last axis
                along = sorted((b for b in w.blocks if b.row == r), key=lambda b: b.start)
                assert [b.gate for b in along] == list(layers.GATES[cell.layer_class])
                assert [b.meaning for b in along] == [layers.GATE_NAMES[g] for g in layers.GATES[cell.layer_class]]
            assert len(w.rows) in (0, w.shape[0])


# ---------------------------------------------------------------- the layout is the one the reference reads

def test_lstm_one_step_from_the_explained_slices_is_the_reference():
    rng = np.random.default_rng(RNG_SEED)
    spec = {"class": "LSTM", "units": 3, "return_state": True}
    layout = explain.explain_layer(spec, 4)
    (cell,) = layout.cells
    w = random_weights(cell, rng)
    x, (h0, c0) = case_inputs(layout, 5, 1, rng)
    s = Slices(cell, w)
    # By hand from the explained slices: i, f, o = sigmoid(...), g = tanh(...), c1 = f*c0 + i*g, h1 = o*tanh(c1).
    i, f, o = (sigmoid(x[:, 0] @ s.blocks[g][Use.INPUT_KERNEL][0] + h0 @ s.blocks[g][Use.RECURRENT_KERNEL][0]
                       + s.blocks[g][Use.INPUT_BIAS][0]) for g in "ifo")
    g = np.tanh(x[:, 0] @ s.blocks["c"][Use.INPUT_KERNEL][0] + h0 @ s.blocks["c"][Use.RECURRENT_KERNEL][0]
                + s.blocks["c"][Use.INPUT_BIAS][0])
    c1 = f * c0 + i * g
    h1 = o * np.tanh(c1)
    got = recurrent.run(with_defaults(spec), x, w, initial_state=[h0, c0])
    np.testing.assert_allclose(got["output"], h1, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got["h"], h1, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got["c"], c1, rtol=0, atol=1e-12)


@pytest.mark.parametrize("spec", [
    {"class": "GRU", "units": 3, "reset_after": True},
    {"class": "GRU", "units": 3, "reset_after": False},
    {"class": "GRU", "units": 2, "use_bias": False},
    {"class": "LSTM", "units": 2, "go_backwards": True},
    {"class": "SimpleRNN", "units": 3, "go_backwards": True},
], ids=["gru-reset-after", "gru-reset-before", "gru-no-bias", "lstm-go-backwards", "simplernn-go-backwards"])
@pytest.mark.parametrize("steps", [1, 4])
def test_a_sequence_from_the_explained_blocks_is_the_reference(spec, steps):
    rng = np.random.default_rng(RNG_SEED + steps)
    spec = {**spec, "return_sequences": True, "return_state": True}
    cfg = with_defaults(spec)
    layout = explain.explain_layer(spec, 3)
    (cell,) = layout.cells
    w = random_weights(cell, rng)
    x, init = case_inputs(layout, 4, steps, rng)
    seq, states = run_cell(cell, cfg, w, x, init)
    got = recurrent.run(cfg, x, w, initial_state=init)
    np.testing.assert_allclose(got["output"], seq, rtol=0, atol=1e-12)
    for name, state in zip(layout.states, states):
        np.testing.assert_allclose(got[name], state, rtol=0, atol=1e-12)


@pytest.mark.parametrize("spec", [
    {"class": "Bidirectional", "layer": {"class": "LSTM", "units": 3, "return_sequences": True, "return_state": True}},
    {"class": "Bidirectional", "merge_mode": "concat",
     "layer": {"class": "GRU", "units": 2, "return_state": True},
     "backward_layer": {"class": "GRU", "units": 3, "reset_after": False, "go_backwards": True, "return_state": True}},
], ids=["lstm-concat-sequences", "gru-concat-other-backward"])
def test_bidirectional_directions_and_concat_halves_are_the_reference(spec):
    rng = np.random.default_rng(RNG_SEED)
    cfg = with_defaults(spec)
    layout = explain.explain_layer(spec, 3)
    assert [c.role for c in layout.cells] == [Role.FORWARD, Role.BACKWARD]
    w = {cell.weights_key: random_weights(cell, rng) for cell in layout.cells}
    x, init = case_inputs(layout, 2, 4, rng)
    cut = len(layout.cells[0].states)
    forward_cfg, backward_cfg = layers.cells(cfg)
    y, st_f = run_cell(layout.cells[0], forward_cfg, w[layout.cells[0].weights_key], x, init[:cut])
    y_rev, st_b = run_cell(layout.cells[1], backward_cfg, w[layout.cells[1].weights_key], x, init[cut:])
    sequences = cfg["layer"]["return_sequences"]
    y, y_rev = (y, y_rev[:, ::-1]) if sequences else (y[:, -1], y_rev[:, -1])  # §4: flipped back for sequences
    width = sum(c.units for c in layout.cells)
    merged = np.zeros(y.shape[:-1] + (width,))
    halves = {Role.FORWARD: y, Role.BACKWARD: y_rev}
    for part in layout.merge.parts:
        merged[..., part.start:part.stop] = halves[part.role]
    got = recurrent.run(cfg, x, w, initial_state=init)
    np.testing.assert_allclose(got["output"], merged, rtol=0, atol=1e-12)
    for name, state in zip(layout.states, st_f + st_b):
        np.testing.assert_allclose(got[name], state, rtol=0, atol=1e-12)


MODEL = (
    {"class": "Conv1D", "filters": 4, "kernel_size": 2, "activation": "tanh"},
    {"class": "LSTM", "units": 3, "return_sequences": True},
    {"class": "TimeDistributed", "layer": {"class": "Dense", "units": 2}},
    {"class": "Bidirectional", "layer": {"class": "GRU", "units": 2}},
    {"class": "Dense", "units": 1, "use_bias": False},
)


def model_weights(explained: tuple[explain.ModelLayer, ...], rng) -> list[dict]:
    out = []
    for layer in explained:
        if layer.layout is None:
            out.append({w.name: rng.normal(size=w.shape) for w in layer.weights})
        elif layer.layout.merge is None:
            out.append(random_weights(layer.layout.cells[0], rng))
        else:
            out.append({cell.weights_key: random_weights(cell, rng) for cell in layer.layout.cells})
    return out


def test_a_model_cases_layers_have_weights_the_reference_reads_and_the_formulas_count():
    rng = np.random.default_rng(RNG_SEED)
    explained = explain.explain_model(MODEL, (6, 3))
    # Conv1D valid, k=2: 6 -> 5 steps; LSTM(3) and TimeDistributed(Dense(2)) keep them; Bidirectional
    # GRU(2) concat, last step only: (4,); Dense(1): (1,).
    assert [layer.output_shape for layer in explained] == [(5, 4), (5, 3), (5, 2), (4,), (1,)]
    weights = model_weights(explained, rng)
    for layer, w in zip(explained, weights):
        leaves = w.values() if layer.layout is None or layer.layout.merge is None else \
            [a for d in w.values() for a in d.values()]
        assert sum(a.size for a in leaves) == layer.params, layer.call
    x = rng.normal(size=(2, 6, 3))
    outs = sequential.run_model(MODEL, x, weights, "tensorflow")
    assert [o.shape[1:] for o in outs] == [layer.output_shape for layer in explained]
    # The LSTM inside, on the Conv1D's output: its explained blocks give the model's layer output.
    lstm = explained[1].layout
    seq, _ = run_cell(lstm.cells[0], with_defaults(MODEL[1]), weights[1], outs[0], [np.zeros((2, 3))] * 2)
    np.testing.assert_allclose(outs[1], seq, rtol=0, atol=1e-12)


def test_an_embedding_first_model_reads_ids():
    model = ({"class": "Embedding", "input_dim": 7, "output_dim": 4}, {"class": "SimpleRNN", "units": 2})
    explained = explain.explain_model(model, model_layers.input_shape(model, 5, 1))
    assert explained[0].input_shape == (5,)
    assert [w.shape for w in explained[0].weights] == [(7, 4)]  # input_dim*output_dim = 28
    assert explained[1].layout.cells[0].weights[0].shape == (4, 2)  # SimpleRNN kernel (F=4, U=2)
    assert [layer.params for layer in explained] == [28, 4 * 2 + 2 * 2 + 2]


# ---------------------------------------------------------------- text

def test_bidirectional_masked_steps_say_zero_output_with_sequences():
    seqs = explain.explain_layer({"class": "Bidirectional", "layer": {"class": "GRU", "units": 1,
                                                                      "return_sequences": True}}, 1)
    last = explain.explain_layer({"class": "Bidirectional", "layer": {"class": "GRU", "units": 1}}, 1)
    masked = [[e for e in c.equations if e.startswith("masked")] for c in seqs.cells + last.cells]
    # §4: zero_output_for_mask is forced to return_sequences on both directions
    assert masked == [["masked step (mask[b, t] = 0): h keeps its value, output_t = 0"]] * 2 + [
        ["masked step (mask[b, t] = 0): h keeps its value, output_t repeats the previous output_t "
         "(0 before any kept step)"]] * 2
    assert seqs.merge.text == ("concat: backward_layer's sequence is flipped back to input time order first; "
                               "output[..., 0:1] = forward_layer, output[..., 1:2] = backward_layer")


def test_the_text_of_a_small_gru_layout_is_pinned():
    # GRU(units=1) on F=2, reset_after (default): gates [z, r, h], one column each; kernel (2, 3),
    # recurrent_kernel (1, 3), bias (2, 3): row 0 input bias, row 1 recurrent bias (§2).
    spec = {"class": "GRU", "units": 1, "go_backwards": True}
    lines = explain.render(explain.Explained("g[cpu]", "cases/g.yaml", 1, explain.explain_layer(spec, 2)))
    gates = "{w}[{r}0:1] = z (update gate)   {w}[{r}1:2] = r (reset gate)   {w}[{r}2:3] = h (candidate)"
    assert lines == [
        "  layout:    GRU, 1 unit, go_backwards: get_weights() order, gate blocks along the last axis",
        "    kernel            (2, 3)  " + gates.format(w="kernel", r=":, "),
        "    recurrent_kernel  (1, 3)  " + gates.format(w="recurrent_kernel", r=":, "),
        "    bias              (2, 3)  bias[0] = input bias (added to x_t @ kernel)   bias[1] = recurrent bias "
        "(added to h @ recurrent_kernel, inside r * (...) for the candidate)",
        "                              " + gates.format(w="bias", r="0, "),
        "                              " + gates.format(w="bias", r="1, "),
        "    t = T-1, T-2, ..., 0 (go_backwards: reversed time); h: the states before the step "
        "(zeros or initial_state at the first step)",
        "    z = sigmoid(x_t @ kernel[:, 0:1] + bias[0, 0:1] + h @ recurrent_kernel[:, 0:1] + bias[1, 0:1])",
        "    r = sigmoid(x_t @ kernel[:, 1:2] + bias[0, 1:2] + h @ recurrent_kernel[:, 1:2] + bias[1, 1:2])",
        "    h_hat = tanh(x_t @ kernel[:, 2:3] + bias[0, 2:3] + r * (h @ recurrent_kernel[:, 2:3] + bias[1, 2:3]))",
        "    h_t = z * h + (1 - z) * h_hat",
        "    output_t = h_t; then h = h_t",
        "    masked step (mask[b, t] = 0): h keeps its value, output_t repeats the previous output_t "
        "(0 before any kept step)",
        "    output: the last output_t, (B, 1)",
        "  states:    [h] (initial_state order; returned after the output with return_state)",
        "  returns:   [output]",
    ]


# ---------------------------------------------------------------- JSON and the command line

def test_json_is_strict_and_round_trips():
    for explained in (explain.Explained("b", "p", 3, explain.explain_layer(SPECS[-1], 2)),
                      explain.Explained("m", "p", 4, None, explain.explain_model(MODEL, (6, 3)))):
        text = json.dumps(explain.to_json(explained), allow_nan=False)
        back = explain.from_json(json.loads(text))
        assert back == explained
        layouts = [back.layer] if back.layer else [m.layout for m in back.model if m.layout]
        cells = [c for layout in layouts for c in layout.cells]
        # str enums equal their values, so == alone would pass with plain strings read back
        assert all(type(c.role) is Role for c in cells)
        assert all(type(b.use) is Use for c in cells for w in c.weights for b in w.blocks)
        assert all(type(w.shape) is tuple for c in cells for w in c.weights)
    obj = json.loads(json.dumps(explain.to_json(explain.Explained("g", "p", 1, explain.explain_layer(
        {"class": "GRU", "units": 2}, 1)))))
    bias = obj["layer"]["cells"][0]["weights"][2]
    assert bias["shape"] == [2, 6] and bias["blocks"][3] == {
        "axis": 1, "start": 0, "stop": 2, "gate": "z", "meaning": "update gate", "use": "recurrent_bias", "row": 1}


SWEPT = """\
cases:
  - id: shown-gru
    layer: {class: GRU, units: 2}
    input: {timesteps: 3, features: 1}
    sweep:
      layer.reset_after: [true, false]
"""


def test_show_json_prints_one_object_per_case(tmp_path, capsys):
    path = tmp_path / "shown.yaml"
    path.write_text(SWEPT, encoding="utf-8")
    assert cli.main(["show", "--json", f"{path}::shown-gru"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2  # one object per sweep point, one per line
    objs = [json.loads(line) for line in lines]
    assert [o["id"] for o in objs] == ["shown-gru[reset_after:true+cpu]", "shown-gru[reset_after:false+cpu]"]
    # bias (2, 3U) = (2, 6) with reset_after, (3U,) = (6,) without (§2)
    assert [o["layer"]["cells"][0]["weights"][2]["shape"] for o in objs] == [[2, 6], [6]]
    cases = select.select([f"{path}::shown-gru"])
    assert [explain.from_json(o) for o in objs] == [explain.explain_case(c) for c in cases]


def test_show_never_imports_keras():
    code = ("import sys\nfrom harness import cli\n"
            "assert cli.main(['show', 'bidi-lstm-merge']) == 0\n"
            "assert cli.main(['show', '--json', 'model-mix-bidi-gru-simplernn']) == 0\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf_keras'))\n"
            "print('HEAVY', heavy, file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", code], check=False, cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "HEAVY []" in proc.stderr.splitlines(), proc.stderr[-2000:]
    assert "\n  merge:     concat: " in proc.stdout  # the text layout was printed (the JSON has no such line)
