"""first_divergence against planted bugs, without Keras.

"Keras" here is a fake: the reference's own cell with one gate value moved by a planted amount
(composed again in the test from the reference's gate values), or a time loop written in the test
with a planted loop bug.  Expected gates, changes and timesteps are the planted ones, never read off
the code under test.  Forget/update gate biases are set low so that gate + 0.3 stays inside
sigmoid's range [0, 1], and the initial states are large (scale 2) so that c_prev and h_prev matter.
"""
from __future__ import annotations

import numpy as np
import pytest

from harness import layers
from harness.case import OutputKey
from harness.diagnosis import divergence
from harness.diagnosis.divergence import Direction, Divergence, Finding, first_divergence, gate_fits
from harness.keras_api import with_defaults
from harness.reference import recurrent
from harness.tolerances import Tolerance

B, T, F, U = 3, 5, 2, 4
TOL = Tolerance(1e-5, 1e-5, "test")
PLANTED = 0.3


def lstm_weights(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    w = {"kernel": rng.normal(size=(F, 4 * U)) * 0.3, "recurrent_kernel": rng.normal(size=(U, 4 * U)) * 0.3,
         "bias": rng.normal(size=4 * U) * 0.3}
    w["bias"][U:2 * U] = -3.0  # forget gate ~0.05: f + 0.3 stays below 1
    w["bias"][3 * U:] = -3.0  # output gate likewise, for the o test
    return w


def gru_weights(reset_after: bool, seed: int = 1) -> dict:
    rng = np.random.default_rng(seed)
    bias = rng.normal(size=(2, 3 * U) if reset_after else 3 * U) * 0.3
    bias[..., :U] = -3.0  # update gate ~0.05 (both rows for reset_after: z = sigmoid(-6 + ...))
    return {"kernel": rng.normal(size=(F, 3 * U)) * 0.3, "recurrent_kernel": rng.normal(size=(U, 3 * U)) * 0.3,
            "bias": bias}


def data(seed: int = 2, states: int = 2) -> tuple[np.ndarray, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(B, T, F)), [rng.normal(size=(B, U)) * 2.0 for _ in range(states)]


def cell(cfg: dict, w: dict):
    """The reference's cell as a cell_step: (x_t, states) -> (output, states)."""
    step = recurrent.CELLS[cfg["class"]](cfg, w)
    return lambda x_t, states: step(x_t, states)


def lstm_cell_moved(cfg: dict, w: dict, gate: str, by: float):
    """A fake Keras LSTM cell: the reference's gate values, one moved by ``by``, recombined here
    (c' = f*c_prev + i*g, h' = o*tanh(c'))."""
    step = recurrent.CELLS["LSTM"](cfg, w)

    def moved(x_t, states):
        g = step(x_t, states, recurrent.NO_DROPOUT, True)[2]._asdict()
        g[gate] = g[gate] + by
        c = g["f"] * g["c_prev"] + g["i"] * g["c"]
        h = g["o"] * np.tanh(c)
        return h, [h, c]
    return moved


def gru_cell_moved(cfg: dict, w: dict, gate: str, by: float):
    """A fake Keras GRU cell (h' = z*h + (1-z)*hh): z or hh moved, or r moved and hh recomputed here
    from the candidate's weight blocks (§2: reset_after hh = tanh(x W_h + b_x + r*(h R_h + b_h)),
    reset_before hh = tanh(x W_h + b + (r*h) R_h))."""
    step = recurrent.CELLS["GRU"](cfg, w)
    w_h, r_h = w["kernel"][:, 2 * U:], w["recurrent_kernel"][:, 2 * U:]
    b_x, b_h = (w["bias"][0, 2 * U:], w["bias"][1, 2 * U:]) if cfg["reset_after"] else (w["bias"][2 * U:], 0.0)

    def moved(x_t, states):
        (h_prev,) = states
        g = step(x_t, states, recurrent.NO_DROPOUT, True)[2]
        z, hh = g.z, g.h
        if gate == "z":
            z = z + by
        elif gate == "h":
            hh = hh + by
        elif cfg["reset_after"]:
            hh = np.tanh(x_t @ w_h + b_x + (g.r + by) * (h_prev @ r_h + b_h))
        else:
            hh = np.tanh(x_t @ w_h + b_x + ((g.r + by) * h_prev) @ r_h)
        h = z * h_prev + (1.0 - z) * hh
        return h, [h]
    return moved


def unroll(step, x, states, backwards: bool = False, reset_at: int | None = None):
    """A plain time loop written here: outputs in processing order, final states; ``reset_at``
    plants a loop bug (the states zeroed before that processing step)."""
    order = range(x.shape[1] - 1, -1, -1) if backwards else range(x.shape[1])
    outs = []
    for index, t in enumerate(order):
        if index == reset_at:
            states = [np.zeros_like(s) for s in states]
        out, states = step(x[:, t], states)
        outs.append(out)
    return np.stack(outs, axis=1), states


def keras_like(cfg: dict, seq: np.ndarray, states: list[np.ndarray], call: int | None = None) -> dict:
    """The outputs a plain layer returns (layers.output_names), from a processing-order sequence."""
    values = {"output": seq if cfg["return_sequences"] else seq[:, -1]}
    values.update(zip(layers.state_names(cfg["class"]), states))
    return {OutputKey(name, call): values[name] for name in layers.output_names(cfg)}


def lstm(**args) -> dict:
    return with_defaults({"class": "LSTM", "units": U, **args})


# ---------------------------------------------------------------- (a) a gate bug in the cell

@pytest.mark.parametrize("sequences", [True, False])
def test_a_moved_forget_gate_is_named_with_its_size(sequences):
    cfg, w = lstm(return_sequences=sequences, return_state=True), lstm_weights()
    x, init = data()
    fake = lstm_cell_moved(cfg, w, "f", PLANTED)
    outputs = keras_like(cfg, *unroll(fake, x, init))
    (d,) = first_divergence(cfg, x, w, outputs, TOL, initial_state=init, cell_step=fake)
    assert d.finding == Finding.CELL and d.cell_agrees is False
    assert (d.timestep, d.step, d.gate) == (0, 0, "f")
    assert d.gate_change == pytest.approx(PLANTED, abs=1e-3)
    assert "the forget gate would have to change by 0.3 to explain it" in d.text()


def test_a_moved_output_gate_is_the_only_fit_when_c_agrees():
    cfg, w = lstm(return_sequences=True), lstm_weights()
    x, init = data()
    fake = lstm_cell_moved(cfg, w, "o", 0.2)
    (d,) = first_divergence(cfg, x, w, keras_like(cfg, *unroll(fake, x, init)), TOL, initial_state=init,
                            cell_step=fake)
    assert [fit.gate for fit in d.fits] == ["o"]
    assert d.gate_change == pytest.approx(0.2, abs=1e-3)


def test_a_cell_no_single_gate_explains():
    cfg, w = lstm(return_sequences=True), lstm_weights()
    x, init = data()
    step = cell(cfg, w)

    def fake(x_t, states):  # h' moved by 1.5 with c' right: o would have to leave [0, 1]
        h, (_, c) = step(x_t, states)
        return h + 1.5, [h + 1.5, c]
    (d,) = first_divergence(cfg, x, w, keras_like(cfg, *unroll(fake, x, init)), TOL, initial_state=init,
                            cell_step=fake)
    assert (d.finding, d.output, d.gate, d.fits) == (Finding.CELL, "h", None, ())
    assert d.text().endswith("no single gate explains it")


# ---------------------------------------------------------------- (b) a loop bug, the cell right

def test_states_reset_in_the_loop_is_a_sequence_bug_at_that_step():
    cfg, w = lstm(return_sequences=True), lstm_weights()
    x, init = data()
    outputs = keras_like(cfg, *unroll(cell(cfg, w), x, init, reset_at=2))
    (d,) = first_divergence(cfg, x, w, outputs, TOL, initial_state=init, cell_step=cell(cfg, w))
    assert (d.finding, d.cell_agrees, d.timestep, d.step, d.output) == (Finding.SEQUENCE, True, 2, 2, "output")
    assert "a loop, mask, reversal or state-carry bug" in d.text()
    (blind,) = first_divergence(cfg, x, w, outputs, TOL, initial_state=init)  # no cell: cannot say which
    assert (blind.finding, blind.cell_agrees, blind.timestep) == (Finding.OUTPUTS, None, 2)


def test_without_sequences_a_cell_that_agrees_everywhere_leaves_the_final_state():
    cfg, w = lstm(return_state=True), lstm_weights()
    x, init = data()
    outputs = keras_like(cfg, *unroll(cell(cfg, w), x, init, reset_at=T - 1))  # the states zeroed at the last step
    (d,) = first_divergence(cfg, x, w, outputs, TOL, initial_state=init, cell_step=cell(cfg, w))
    assert (d.finding, d.timestep, d.step, d.output) == (Finding.SEQUENCE, None, None, "output")
    assert d.text().startswith("first divergence: the final output, batch row ")


def test_agreement_everywhere_is_no_divergence():
    cfg, w = lstm(return_sequences=True, return_state=True), lstm_weights()
    x, init = data()
    outputs = keras_like(cfg, *unroll(cell(cfg, w), x, init))
    (d,) = first_divergence(cfg, x, w, outputs, TOL, initial_state=init, cell_step=cell(cfg, w))
    assert (d.finding, d.output, d.cell_agrees) == (Finding.NONE, None, True)
    assert d.text() == ("no divergence: Keras agrees with the reference at every step checked, "
                        "and Keras's cell agrees on identical inputs")


def test_a_later_call_of_a_stateful_run_reads_its_own_outputs():
    cfg, w = lstm(return_sequences=True), lstm_weights()
    x, init = data()
    fake = lstm_cell_moved(cfg, w, "f", PLANTED)
    outputs = {**keras_like(cfg, *unroll(cell(cfg, w), x, init), call=1),
               **keras_like(cfg, *unroll(fake, x, init), call=2)}
    (first,) = first_divergence(cfg, x, w, outputs, TOL, initial_state=init, call=1)
    (blind,) = first_divergence(cfg, x, w, outputs, TOL, initial_state=init, call=2)  # from call 2's outputs alone
    (second,) = first_divergence(cfg, x, w, outputs, TOL, initial_state=init, cell_step=fake, call=2)
    assert (first.finding, first.call, blind.finding, blind.timestep) == (Finding.NONE, 1, Finding.OUTPUTS, 0)
    assert (second.finding, second.call, second.gate) == (Finding.CELL, 2, "f")
    assert second.text().startswith("[call 2] first divergence: timestep 0")


# ---------------------------------------------------------------- (c) mask and go_backwards: input time

def test_go_backwards_cell_bug_is_reported_in_input_time():
    cfg, w = lstm(return_sequences=True, go_backwards=True), lstm_weights()
    x, init = data()
    fake = lstm_cell_moved(cfg, w, "f", PLANTED)
    (d,) = first_divergence(cfg, x, w, keras_like(cfg, *unroll(fake, x, init, backwards=True)), TOL,
                            initial_state=init, cell_step=fake)
    assert (d.step, d.timestep, d.gate) == (0, T - 1, "f")  # processed first: the last input step


def test_masked_step_zeroed_with_go_backwards_is_found_at_its_input_timestep():
    cfg, w = lstm(return_sequences=True, go_backwards=True), lstm_weights()
    x, init = data()
    mask = np.ones((B, T), dtype=bool)
    mask[1, 3] = False  # row 1 skips input step 3: processing step 1 (T-1-3)
    # The planted bug: the masked step outputs zero instead of repeating the previous output (§6).
    seq, _, states = recurrent.run_rnn(cfg, x, w, mask, init, zero_output_for_mask=True)
    (d,) = first_divergence(cfg, x, w, keras_like(cfg, seq, states), TOL, mask=mask, initial_state=init,
                            cell_step=cell(cfg, w))
    assert (d.finding, d.timestep, d.step, d.row) == (Finding.SEQUENCE, 3, 1, 1)


# ---------------------------------------------------------------- (d) Bidirectional

@pytest.mark.parametrize("merge_mode, sequences", [("concat", True), (None, False)])
def test_bidirectional_names_the_backward_direction_alone(merge_mode, sequences):
    cfg = with_defaults({"class": "Bidirectional", "merge_mode": merge_mode,
                         "layer": {"class": "LSTM", "units": U, "return_sequences": sequences}})
    fcfg, bcfg = layers.cells(cfg)
    w = {"forward": lstm_weights(0), "backward": lstm_weights(3)}
    x, init = data(states=4)
    fake = lstm_cell_moved(bcfg, w["backward"], "f", PLANTED)
    fw_seq, _ = unroll(cell(fcfg, w["forward"]), x, init[:2])
    bw_seq, _ = unroll(fake, x, init[2:], backwards=True)
    if sequences:
        outputs = {OutputKey("output"): np.concatenate([fw_seq, bw_seq[:, ::-1]], axis=-1)}  # bw in input time
    else:
        outputs = {OutputKey("output_fw"): fw_seq[:, -1], OutputKey("output_bw"): bw_seq[:, -1]}
    cells = {Direction.FORWARD: cell(fcfg, w["forward"]), Direction.BACKWARD: fake}
    fw, bw = first_divergence(cfg, x, w, outputs, TOL, initial_state=init, cell_step=cells)
    assert (fw.direction, fw.finding) == (Direction.FORWARD, Finding.NONE)
    assert (bw.direction, bw.finding, bw.step, bw.timestep, bw.gate) == (
        Direction.BACKWARD, Finding.CELL, 0, T - 1, "f")
    assert bw.text().startswith("[backward direction] first divergence: timestep 4 (processing step 0)")


def test_bidirectional_backward_sequence_bug_in_input_time():
    cfg = with_defaults({"class": "Bidirectional", "merge_mode": None,
                         "layer": {"class": "LSTM", "units": U, "return_sequences": True}})
    fcfg, bcfg = layers.cells(cfg)
    w = {"forward": lstm_weights(0), "backward": lstm_weights(3)}
    x, init = data(states=4)
    fw_seq, _ = unroll(cell(fcfg, w["forward"]), x, init[:2])
    bw_seq, _ = unroll(cell(bcfg, w["backward"]), x, init[2:], backwards=True, reset_at=3)
    outputs = {OutputKey("output_fw"): fw_seq, OutputKey("output_bw"): bw_seq[:, ::-1]}
    cells = {Direction.FORWARD: cell(fcfg, w["forward"]), Direction.BACKWARD: cell(bcfg, w["backward"])}
    fw, bw = first_divergence(cfg, x, w, outputs, TOL, initial_state=init, cell_step=cells)
    assert fw.finding == Finding.NONE
    assert (bw.finding, bw.output, bw.step, bw.timestep) == (Finding.SEQUENCE, "output_bw", 3, 1)


def test_bidirectional_needs_one_cell_per_direction():
    cfg = with_defaults({"class": "Bidirectional", "layer": {"class": "LSTM", "units": U}})
    x, init = data(states=4)
    w = {"forward": lstm_weights(0), "backward": lstm_weights(3)}
    with pytest.raises(ValueError, match="one per direction"):
        first_divergence(cfg, x, w, {}, TOL, cell_step=cell(lstm(), w["forward"]))


# ---------------------------------------------------------------- (e) GRU, both variants

@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_moved_update_gate(reset_after):
    cfg = with_defaults({"class": "GRU", "units": U, "reset_after": reset_after, "return_sequences": True})
    w = gru_weights(reset_after)
    x, init = data(states=1)
    fake = gru_cell_moved(cfg, w, "z", PLANTED)
    (d,) = first_divergence(cfg, x, w, keras_like(cfg, *unroll(fake, x, init)), TOL, initial_state=init,
                            cell_step=fake)
    assert (d.finding, d.timestep, d.gate) == (Finding.CELL, 0, "z")
    assert d.gate_change == pytest.approx(PLANTED, abs=1e-3)
    assert "the update gate would have to change by 0.3" in d.text()


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_moved_reset_gate_is_solved_only_after_the_matmul(reset_after):
    cfg = with_defaults({"class": "GRU", "units": U, "reset_after": reset_after, "return_sequences": True})
    w = gru_weights(reset_after)
    x, init = data(states=1)
    fake = gru_cell_moved(cfg, w, "r", 0.2)
    (d,) = first_divergence(cfg, x, w, keras_like(cfg, *unroll(fake, x, init)), TOL, initial_state=init,
                            cell_step=fake)
    fits = dict(d.fits)
    assert d.finding == Finding.CELL and "h" in fits  # the candidate can always absorb it
    if reset_after:
        assert fits["r"] == pytest.approx(0.2, abs=1e-3)
    else:
        assert "r" not in fits  # r*h inside the matmul: not solvable unit by unit


def test_gate_fits_of_a_step_that_agrees_are_all_zero_changes():
    cfg, w = lstm(), lstm_weights()
    x, init = data()
    _, states, gates = recurrent.CELLS["LSTM"](cfg, w)(x[:, 0], init, recurrent.NO_DROPOUT, True)
    fits = gate_fits(cfg, gates, states, TOL)
    assert {fit.gate for fit in fits} == {"i", "f", "c", "o"}
    assert all(fit.change == 0.0 for fit in fits)


def test_simple_rnn_cell_bug_has_no_gates():
    cfg = with_defaults({"class": "SimpleRNN", "units": U, "return_sequences": True})
    rng = np.random.default_rng(4)
    w = {"kernel": rng.normal(size=(F, U)), "recurrent_kernel": rng.normal(size=(U, U)), "bias": rng.normal(size=U)}
    x, init = data(states=1)
    step = cell(cfg, w)

    def fake(x_t, states):
        h, _ = step(x_t, states)
        return h * 0.5, [h * 0.5]
    (d,) = first_divergence(cfg, x, w, keras_like(cfg, *unroll(fake, x, init)), TOL, initial_state=init,
                            cell_step=fake)
    assert (d.finding, d.timestep, d.gate, d.fits) == (Finding.CELL, 0, None, ())


# ---------------------------------------------------------------- text and ranges

def test_text_is_pinned():
    d = Divergence(direction=Direction.BACKWARD, call=None, timestep=3, step=1, row=1, output="c",
                   cell_agrees=False, gate="f", gate_change=0.21, ratio=42.0)
    assert d.text() == (
        "[backward direction] first divergence: timestep 3 (processing step 1), batch row 1: Keras's cell "
        "disagrees with the reference on identical inputs (c, err/tol 42);\n"
        "  the forget gate would have to change by 0.21 to explain it")
    short = Divergence(None, None, 3, 3, 0, "output", True, None, None, 3.1)
    assert short.text() == ("first divergence: timestep 3 (processing step 3), batch row 0: Keras's cell agrees "
                            "with the reference on identical inputs, yet output differs (err/tol 3.1);\n"
                            "  a loop, mask, reversal or state-carry bug")


def test_activation_ranges_come_from_the_reference_functions():
    assert divergence.activation_range("sigmoid") == (0.0, 1.0)
    assert divergence.activation_range("tanh") == (-1.0, 1.0)
    assert divergence.activation_range("hard_sigmoid") == (0.0, 1.0)
    lo, hi = divergence.activation_range("relu")
    assert lo == 0.0 and hi >= 1e6
