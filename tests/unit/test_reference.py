"""The NumPy reference against numbers computed by hand (units 1, features 1, a few steps).

Every expected value below comes from the arithmetic in the comment beside it, never from running
the reference or Keras.  Gate pre-activations are chosen as 0, ln 2, ln 3 so the gates take exact
values: sigmoid(0)=1/2, sigmoid(ln 2)=2/3, sigmoid(ln 3)=3/4, sigmoid(-ln 3)=1/4,
tanh(ln 2)=(4-1)/(4+1)=3/5, tanh(ln 3)=(9-1)/(9+1)=4/5.  Each gate gets a different weight, so a
swapped gate block changes the number.  § refers to docs/semantics.md.
"""
from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness import layers
from harness import reference as ref
from harness.keras_api import with_defaults

LN2, LN3 = math.log(2.0), math.log(3.0)
ROOT = Path(__file__).resolve().parents[2]


def layer(cls: str, **args) -> dict:
    """A layer config with every Keras default filled in, as the runner gives the reference."""
    return with_defaults({"class": cls, "units": 1, **args})


def weights(kernel, recurrent, bias=None) -> dict:
    """Named weights as get_weights() gives them: kernel (F, kU), recurrent_kernel (U, kU), bias."""
    w = {"kernel": np.array(kernel, dtype=float), "recurrent_kernel": np.array(recurrent, dtype=float)}
    if bias is not None:
        w["bias"] = np.array(bias, dtype=float)
    return w


def seq(*rows) -> np.ndarray:
    """(batch, T, 1) input from one list of step values per batch row."""
    return np.array(rows, dtype=float)[..., None]


def close(actual, expected) -> None:
    np.testing.assert_allclose(actual, np.array(expected, dtype=float), rtol=0, atol=1e-12)


def sig(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


# ---------------------------------------------------------------- SimpleRNN (§3: h' = act(xW + b + hR))

def test_simple_rnn_linear_three_steps():
    # W=2, R=0.5, b=1, h0=0, x = 1, 2, 3, linear:
    #   h1 = 2*1 + 1 + 0.5*0    = 3
    #   h2 = 2*2 + 1 + 0.5*3    = 6.5
    #   h3 = 2*3 + 1 + 0.5*6.5  = 10.25
    cfg = layer("SimpleRNN", activation="linear", return_sequences=True, return_state=True)
    out = ref.run(cfg, seq([1, 2, 3]), weights([[2.0]], [[0.5]], [1.0]))
    assert list(out) == ["output", "h"]
    close(out["output"], [[[3.0], [6.5], [10.25]]])
    close(out["h"], [[10.25]])
    last = ref.run(layer("SimpleRNN", activation="linear"), seq([1, 2, 3]), weights([[2.0]], [[0.5]], [1.0]))
    close(last["output"], [[10.25]])  # return_sequences=False: the last step only


def test_simple_rnn_tanh_two_steps():
    # W=2, R=0.5, b=0.25, tanh.  Inputs chosen so the pre-activations are ln 3 then ln 2:
    #   x1 = (ln3 - 0.25)/2:        2*x1 + 0.25 + 0.5*0   = ln3  -> h1 = tanh(ln3) = 4/5
    #   x2 = (ln2 - 0.25 - 0.4)/2:  2*x2 + 0.25 + 0.5*0.8 = ln2  -> h2 = tanh(ln2) = 3/5
    x = seq([(LN3 - 0.25) / 2, (LN2 - 0.65) / 2])
    out = ref.run(layer("SimpleRNN", return_sequences=True), x, weights([[2.0]], [[0.5]], [0.25]))
    close(out["output"], [[[0.8], [0.6]]])


def test_kernel_multiplies_on_the_right():
    # features 2, units 1: kernel (F, U) = [[1], [10]], x = [2, 3] -> h = 2*1 + 3*10 = 32 (linear).
    # A transposed kernel (1, 2) could not even multiply (1, 2) inputs.
    cfg = layer("SimpleRNN", activation="linear")
    out = ref.run(cfg, np.array([[[2.0, 3.0]]]), weights([[1.0], [10.0]], [[0.5]], [0.0]))
    close(out["output"], [[32.0]])


def test_initial_state_enters_the_first_step():
    # linear, W=1, R=0.5, b=0, h0=4, x=1: h = 1 + 0.5*4 = 3 (from zeros it would be 1).
    cfg = layer("SimpleRNN", activation="linear", return_state=True)
    out = ref.run(cfg, seq([1]), weights([[1.0]], [[0.5]], [0.0]), initial_state=[np.array([[4.0]])])
    close(out["h"], [[3.0]])


# ---------------------------------------------------------------- LSTM (§1: gate order [i, f, c, o])

# x = 2, h0 = 1, c0 = 1.  Every gate has its own kernel, recurrent and bias value:
#   W = [0.5, 1.0, 1.5, 2.0], R = [0.25, -0.5, 0.75, -1.0]  ->  2W + R = [1.25, 1.5, 3.75, 3.0]
#   b = target - (2W + R), targets z_i = ln3, z_f = 0, z_c = ln2, z_o = -ln3
#   i = 3/4, f = 1/2, g = tanh(ln2) = 3/5, o = 1/4
#   c1 = f*c0 + i*g = 1/2 + 9/20 = 19/20 = 0.95 ;  h1 = o*tanh(c1) = tanh(0.95)/4
# Read as [i,c,f,o] instead, f = sigmoid(ln2) = 2/3 and g = tanh(0) = 0, so c1 = 2/3.
LSTM_W = weights([[0.5, 1.0, 1.5, 2.0]], [[0.25, -0.5, 0.75, -1.0]],
                 [LN3 - 1.25, 0.0 - 1.5, LN2 - 3.75, -LN3 - 3.0])
LSTM_H1, LSTM_C1 = math.tanh(0.95) / 4, 0.95


def test_lstm_one_step_gate_order():
    cfg = layer("LSTM", return_state=True)
    out = ref.run(cfg, seq([2]), LSTM_W, initial_state=[np.array([[1.0]]), np.array([[1.0]])])
    assert list(out) == ["output", "h", "c"]  # states in Keras order [h, c]
    close(out["output"], [[LSTM_H1]])
    close(out["h"], [[LSTM_H1]])
    close(out["c"], [[LSTM_C1]])


def test_lstm_three_steps_from_zeros():
    # W=[0.5,1,1.5,2], R=[0.25,-0.5,0.75,-1], b=[0.1,0.2,0.3,0.4], x = 1, -1, 0.5, h0=c0=0;
    # the per-step formula of §1 written out with scalars:
    #   z_g = x*W_g + h*R_g + b_g ; c = sig(z_f)*c + sig(z_i)*tanh(z_c) ; h = sig(z_o)*tanh(c)
    W, R, B = (0.5, 1.0, 1.5, 2.0), (0.25, -0.5, 0.75, -1.0), (0.1, 0.2, 0.3, 0.4)
    h = c = 0.0
    expected = []
    for x in (1.0, -1.0, 0.5):
        zi, zf, zc, zo = (x * W[g] + h * R[g] + B[g] for g in range(4))
        c = sig(zf) * c + sig(zi) * math.tanh(zc)
        h = sig(zo) * math.tanh(c)
        expected.append(h)
    cfg = layer("LSTM", return_sequences=True, return_state=True)
    out = ref.run(cfg, seq([1.0, -1.0, 0.5]), weights([W], [R], B))
    close(out["output"], [[[v] for v in expected]])
    close(out["h"], [[h]])
    close(out["c"], [[c]])


def test_lstm_without_bias():
    # use_bias=False: no bias weight; x=1, h0=c0=0, W = [ln3, 5, ln2, ln3] (R unused from h0=0):
    #   i = 3/4, g = 3/5, o = 3/4, c = 0 + 9/20, h = 3/4 * tanh(0.45)
    cfg = layer("LSTM", use_bias=False, return_state=True)
    out = ref.run(cfg, seq([1]), weights([[LN3, 5.0, LN2, LN3]], [[9.0, 9.0, 9.0, 9.0]]))
    close(out["c"], [[0.45]])
    close(out["h"], [[0.75 * math.tanh(0.45)]])


# ---------------------------------------------------------------- GRU (§2: gate order [z, r, h])

def test_gru_reset_after_true():
    # bias (2, 3U): row 0 = input bias b_x, row 1 = recurrent bias b_h.  x = 2, h0 = 1.
    #   W = [0.5, 0.25, 0.75], R = [-1, 0.5, ln2], b_x = [ln3-0.25, -0.75, -1.5], b_h = [0.25, -0.25, ln2]
    #   z: 2*0.5 + (ln3-0.25) + (-1)*1 + 0.25  = ln3 -> z = 3/4
    #   r: 2*0.25 + (-0.75) + 0.5*1 + (-0.25)  = 0   -> r = 1/2
    #   xh = 2*0.75 - 1.5 = 0 ; hh = 1*ln2 + ln2 = 2 ln2 (recurrent bias inside the reset)
    #   h_hat = tanh(xh + r*hh) = tanh(ln2) = 3/5
    #   h' = z*h0 + (1-z)*h_hat = 3/4 + 1/4 * 3/5 = 0.9
    # Reset before the matmul would give tanh(0 + ln2/2 + ln2); bias rows swapped tanh(0.75 + 1.5 ln2);
    # z weighting swapped (1-z)*h0 + z*h_hat = 1/4 + 9/20 = 0.7.
    cfg = layer("GRU", return_state=True)
    assert cfg["reset_after"] is True  # the Keras 3 default
    w = weights([[0.5, 0.25, 0.75]], [[-1.0, 0.5, LN2]], [[LN3 - 0.25, -0.75, -1.5], [0.25, -0.25, LN2]])
    out = ref.run(cfg, seq([2]), w, initial_state=[np.array([[1.0]])])
    close(out["output"], [[0.9]])
    close(out["h"], [[0.9]])


def test_gru_reset_after_false():
    # bias (3U,), no recurrent bias.  x = 2, h0 = 1, W = [0.5, 0.25, 0.75], R = [-1, 0.5, 2 ln2],
    # b = [ln3, -1, -1.5]:
    #   z = sig(1 + ln3 - 1) = 3/4 ; r = sig(0.5 - 1 + 0.5) = 1/2
    #   h_hat = tanh(1.5 - 1.5 + (r*h0) * 2ln2) = tanh(ln2) = 3/5 ;  h' = 3/4 + 1/4*3/5 = 0.9
    cfg = layer("GRU", reset_after=False)
    out = ref.run(cfg, seq([2]), weights([[0.5, 0.25, 0.75]], [[-1.0, 0.5, 2 * LN2]], [LN3, -1.0, -1.5]),
                  initial_state=[np.array([[1.0]])])
    close(out["output"], [[0.9]])


def test_gru_reset_before_matmul_with_two_units():
    # With one unit (r*h)R = r*(hR); two units tell them apart.  F=1, U=2, x=0, h0=[1, 0].
    # Columns [z1 z2 r1 r2 h1 h2]; row 0 of R meets h0[0]=1, row 1 meets 0 (and r*h = [r1, 0]).
    #   b = [ln3, ln3, 0, ln3, 0, 0] -> z = [3/4, 3/4], r = [1/2, 3/4]
    #   R row 0 = [0, 0, 0, 0, 2ln2, 2ln3] -> (r*h0) R_h = r1*[2ln2, 2ln3] = [ln2, ln3]
    #   h_hat = [tanh ln2, tanh ln3] = [3/5, 4/5]
    #   h' = z*h0 + (1-z)*h_hat = [3/4 + 3/20, 0 + 1/5] = [0.9, 0.2]
    # (reset after the matmul would give h_hat2 = tanh(3/4 * 2ln3) instead.)
    cfg = with_defaults({"class": "GRU", "units": 2, "reset_after": False})
    rec = [[0, 0, 0, 0, 2 * LN2, 2 * LN3], [0.3] * 6]
    w = weights([[7.0] * 6], rec, [LN3, LN3, 0.0, LN3, 0.0, 0.0])
    out = ref.run(cfg, np.zeros((1, 1, 1)), w, initial_state=[np.array([[1.0, 0.0]])])
    close(out["output"], [[0.9, 0.2]])


# ---------------------------------------------------------------- go_backwards (§5)

def test_go_backwards_sequence_in_processing_order():
    # linear, W=1, R=0.5, b=0, x = 1, 2, 3 read from the end:
    #   step on x3: 3 ; on x2: 2 + 1.5 = 3.5 ; on x1: 1 + 1.75 = 2.75
    # The sequence stays in processing order [3, 3.5, 2.75] (input order would be [2.75, 3.5, 3]).
    cfg = layer("SimpleRNN", activation="linear", go_backwards=True, return_sequences=True, return_state=True)
    out = ref.run(cfg, seq([1, 2, 3]), weights([[1.0]], [[0.5]], [0.0]))
    close(out["output"], [[[3.0], [3.5], [2.75]]])
    close(out["h"], [[2.75]])


# ---------------------------------------------------------------- masks (§6)

SIMPLE_LINEAR = weights([[1.0]], [[0.5]], [0.0])


def test_masked_steps_keep_state_and_repeat_output_from_zero():
    # linear, W=1, R=0.5, h0=10 for both rows, x = 1, 2, 3.
    # row 0, mask [0, 1, 0]:
    #   t1 masked: state stays 10, output = previous output, which starts at 0 (not h0) -> 0
    #   t2: h = 2 + 0.5*10 = 7 -> 7
    #   t3 masked: state stays 7, output repeats 7
    # row 1, all masked: outputs 0, 0, 0 and h = h0 = 10.
    cfg = layer("SimpleRNN", activation="linear", return_sequences=True, return_state=True)
    mask = np.array([[0, 1, 0], [0, 0, 0]], dtype=bool)
    out = ref.run(cfg, seq([1, 2, 3], [1, 2, 3]), SIMPLE_LINEAR, mask, [np.array([[10.0], [10.0]])])
    close(out["output"], [[[0.0], [7.0], [7.0]], [[0.0], [0.0], [0.0]]])
    close(out["h"], [[7.0], [10.0]])


def test_zero_output_for_mask():
    # Same as above with zero_output_for_mask: masked steps output 0 -> row 0 [0, 7, 0], h still 7.
    cfg = layer("SimpleRNN", activation="linear", return_sequences=True, return_state=True,
                zero_output_for_mask=True)
    mask = np.array([[0, 1, 0]], dtype=bool)
    out = ref.run(cfg, seq([1, 2, 3]), SIMPLE_LINEAR, mask, [np.array([[10.0]])])
    close(out["output"], [[[0.0], [7.0], [0.0]]])
    close(out["h"], [[7.0]])


def test_masked_lstm_step_keeps_h_and_c():
    # The one-step LSTM above (x=2, h0=c0=1 -> h1, c1 = tanh(0.95)/4, 0.95), then a masked step
    # on x=5: both states stay, the output repeats h1.
    cfg = layer("LSTM", return_sequences=True, return_state=True)
    out = ref.run(cfg, seq([2, 5]), LSTM_W, np.array([[1, 0]], dtype=bool),
                  [np.array([[1.0]]), np.array([[1.0]])])
    close(out["output"], [[[LSTM_H1], [LSTM_H1]]])
    close(out["h"], [[LSTM_H1]])
    close(out["c"], [[LSTM_C1]])


def test_mask_with_go_backwards_indexes_input_time():
    # linear, W=1, R=0.5, x = 1, 2, 3, mask [1, 1, 0] (the last input step is padding), backwards:
    #   x3 masked: output 0, state 0 ; x2: 2 -> 2 ; x1: 1 + 0.5*2 = 2 -> 2.  Processing order [0, 2, 2].
    cfg = layer("SimpleRNN", activation="linear", go_backwards=True, return_sequences=True)
    out = ref.run(cfg, seq([1, 2, 3]), SIMPLE_LINEAR, np.array([[1, 1, 0]], dtype=bool))
    close(out["output"], [[[0.0], [2.0], [2.0]]])


# ---------------------------------------------------------------- Bidirectional (§4, §8)

# Forward SimpleRNN (linear, W=1, R=0.5) on x = 1, 2, 3:  1, 2.5, 4.25
# Backward copy (W=2, R=0.25), processing x3, x2, x1:     6, 4 + 1.5 = 5.5, 2 + 1.375 = 3.375
#   -> back in input time order:                          3.375, 5.5, 6
BIDI_W = {"forward": weights([[1.0]], [[0.5]], [0.0]), "backward": weights([[2.0]], [[0.25]], [0.0])}
FW, BW = [1.0, 2.5, 4.25], [3.375, 5.5, 6.0]


def bidi(inner: dict, **args) -> dict:
    return with_defaults({"class": "Bidirectional", "layer": {"units": 1, **inner}, **args})


@pytest.mark.parametrize("mode, expected", [
    ("concat", [[f, b] for f, b in zip(FW, BW)]),  # [[1, 3.375], [2.5, 5.5], [4.25, 6]]
    ("sum", [[f + b] for f, b in zip(FW, BW)]),     # [4.375, 8, 10.25]
    ("ave", [[(f + b) / 2] for f, b in zip(FW, BW)]),
    ("mul", [[f * b] for f, b in zip(FW, BW)]),     # [3.375, 13.75, 25.5]
])
def test_bidirectional_merge_modes_sequences(mode, expected):
    cfg = bidi({"class": "SimpleRNN", "activation": "linear", "return_sequences": True}, merge_mode=mode)
    out = ref.run(cfg, seq([1, 2, 3]), BIDI_W)
    close(out["output"], [expected])


def test_bidirectional_merge_none_and_last_outputs():
    # merge_mode None returns both sequences; without return_sequences each side gives its final
    # output: forward 4.25, backward 3.375 (the backward last step is not re-reversed).
    cfg = bidi({"class": "SimpleRNN", "activation": "linear", "return_sequences": True}, merge_mode=None)
    out = ref.run(cfg, seq([1, 2, 3]), BIDI_W)
    assert list(out) == ["output_fw", "output_bw"]
    close(out["output_fw"], [[[v] for v in FW]])
    close(out["output_bw"], [[[v] for v in BW]])
    last = ref.run(bidi({"class": "SimpleRNN", "activation": "linear"}), seq([1, 2, 3]), BIDI_W)
    close(last["output"], [[4.25, 3.375]])


def test_bidirectional_masked_sequences_output_zero():
    # §4: zero_output_for_mask is forced to return_sequences.  mask [1, 1, 0]:
    #   forward: 1, 2.5, then the masked step outputs 0 (not the repeated 2.5)
    #   backward: x3 masked -> 0 (state 0), x2 -> 4, x1 -> 2 + 0.25*4 = 3; input order [3, 4, 0]
    cfg = bidi({"class": "SimpleRNN", "activation": "linear", "return_sequences": True})
    out = ref.run(cfg, seq([1, 2, 3]), BIDI_W, np.array([[1, 1, 0]], dtype=bool))
    close(out["output"], [[[1.0, 3.0], [2.5, 4.0], [0.0, 0.0]]])


def test_bidirectional_lstm_state_order_and_initial_state_split():
    # initial_state [h_f, c_f, h_b, c_b] = [1, 0.5, -1, -0.5], x = 2, one step.
    # forward: the LSTM weights above: i=3/4, f=1/2, g=3/5, o=1/4 ->
    #   c_fw = 1/2*0.5 + 9/20 = 0.7, h_fw = tanh(0.7)/4
    # backward: W = [1, 0.5, 0.25, 0.125], R = [0.5, 0.25, -0.25, 1] -> 2W - R = [1.5, 0.75, 0.75, -0.75]
    #   b = targets - that, targets [0, ln3, ln3, ln2] -> i=1/2, f=3/4, g=4/5, o=2/3
    #   c_bw = 3/4*(-0.5) + 1/2*4/5 = 0.025, h_bw = 2/3 * tanh(0.025)
    back = weights([[1.0, 0.5, 0.25, 0.125]], [[0.5, 0.25, -0.25, 1.0]],
                   [-1.5, LN3 - 0.75, LN3 - 0.75, LN2 + 0.75])
    cfg = bidi({"class": "LSTM", "return_state": True})
    init = [np.array([[v]]) for v in (1.0, 0.5, -1.0, -0.5)]
    out = ref.run(cfg, seq([2]), {"forward": LSTM_W, "backward": back}, initial_state=init)
    assert list(out) == ["output", "h_fw", "c_fw", "h_bw", "c_bw"]
    h_fw, h_bw = math.tanh(0.7) / 4, 2 / 3 * math.tanh(0.025)
    close(out["h_fw"], [[h_fw]])
    close(out["c_fw"], [[0.7]])
    close(out["h_bw"], [[h_bw]])
    close(out["c_bw"], [[0.025]])
    close(out["output"], [[h_fw, h_bw]])


def test_bidirectional_forward_returns_states_forward_first():
    # forward() hands a stateful layer its states in Keras order: forward h then backward h
    # (SimpleRNN final states 4.25 and 3.375 from above).
    cfg = bidi({"class": "SimpleRNN", "activation": "linear"})
    _, states = ref.forward(cfg, seq([1, 2, 3]), BIDI_W)
    close(np.concatenate(states, axis=-1), [[4.25, 3.375]])


def test_bidirectional_custom_backward_layer():
    # A custom backward_layer (go_backwards=True, as Keras requires) runs with its own config.
    cfg = with_defaults({"class": "Bidirectional",
                         "layer": {"class": "SimpleRNN", "units": 1, "activation": "linear"},
                         "backward_layer": {"class": "SimpleRNN", "units": 1, "activation": "linear",
                                            "go_backwards": True}})
    out = ref.run(cfg, seq([1, 2, 3]), BIDI_W)
    close(out["output"], [[4.25, 3.375]])


# ---------------------------------------------------------------- parameter counts (§1-§4)

@pytest.mark.parametrize("cls, args, features, count", [
    ("LSTM", {"units": 16}, 10, 1728),                                       # 4*(160+256+16)
    ("LSTM", {"units": 16, "use_bias": False}, 10, 1664),                    # 4*(160+256)
    ("GRU", {"units": 3}, 8, 117),                                           # 3*(24+9+6)
    ("GRU", {"units": 3, "reset_after": False}, 8, 108),                     # 3*(24+9+3)
    ("GRU", {"units": 3, "use_bias": False}, 8, 99),                         # 3*(24+9)
    ("SimpleRNN", {"units": 5}, 10, 80),                                     # 50+25+5
])
def test_param_counts(cls, args, features, count):
    cfg = with_defaults({"class": cls, **args})
    assert layers.param_count(cfg, features) == count
    shapes = layers.weight_shapes(cfg, features)
    assert sum(int(np.prod(s)) for s in shapes.values()) == count  # the shapes agree with the formula
    bidir = with_defaults({"class": "Bidirectional", "layer": {"class": cls, **args}})
    assert layers.param_count(bidir, features) == 2 * count  # Bidirectional doubles (3456 for the LSTM)


def test_gru_bias_shape_depends_on_reset_after():
    assert layers.weight_shapes(layer("GRU", units=3), 8)["bias"] == (2, 9)
    assert layers.weight_shapes(layer("GRU", units=3, reset_after=False), 8)["bias"] == (9,)


# ---------------------------------------------------------------- activations (Keras 3 formulas)

# selu constants as printed in the Keras docs (keras.io/api/layers/activations/#selu-function).
SELU_ALPHA, SELU_SCALE = 1.67326324, 1.05070098
# Standard normal CDF at 1, Phi(1) = 0.8413447460685429 (any normal table); gelu(x) = x * Phi(x).
PHI_1 = 0.8413447460685429


@pytest.mark.parametrize("name, x, expected, atol", [
    ("hard_sigmoid", 1.5, 0.75, 1e-15),         # Keras 3: 1.5/6 + 0.5 (Keras 2's 0.2x+0.5 gives 0.8)
    ("hard_sigmoid", -1.5, 0.25, 1e-15),
    ("hard_sigmoid", 4.0, 1.0, 0),              # clipped at 1 (from x = 3)
    ("hard_sigmoid", -4.0, 0.0, 0),
    ("sigmoid", LN3, 0.75, 1e-15),              # 1/(1 + 1/3)
    ("sigmoid", -1000.0, 0.0, 1e-300),          # no overflow
    ("tanh", LN2, 0.6, 1e-15),
    ("hard_silu", 1.5, 1.125, 1e-15),           # 1.5 * 0.75
    ("silu", LN3, 0.75 * LN3, 1e-15),
    ("gelu", 1.0, PHI_1, 1e-15),
    ("gelu", -1.0, -(1 - PHI_1), 1e-15),
    ("selu", 1.0, SELU_SCALE, 1e-8),
    ("selu", -1.0, SELU_SCALE * SELU_ALPHA * (math.exp(-1) - 1), 1e-8),
    ("elu", -1.0, math.exp(-1) - 1, 1e-15),
    ("celu", -1.0, math.exp(-1) - 1, 1e-15),
    ("leaky_relu", -1.0, -0.2, 1e-15),          # Keras 3 negative_slope=0.2
    ("relu", -2.0, 0.0, 0),
    ("relu6", 7.0, 6.0, 0),
    ("softsign", -3.0, -0.75, 1e-15),           # -3 / (1 + 3)
    ("softplus", 0.0, LN2, 1e-15),
    ("log_sigmoid", 0.0, -LN2, 1e-15),
    ("exponential", LN3, 3.0, 1e-14),
    ("mish", 0.0, 0.0, 0),
    ("hard_tanh", 2.0, 1.0, 0),
    ("tanh_shrink", LN2, LN2 - 0.6, 1e-15),
    ("soft_shrink", 1.0, 0.5, 0),
    ("hard_shrink", 0.4, 0.0, 0),
    ("squareplus", 1.5, 2.0, 1e-15),            # (1.5 + sqrt(2.25 + 4)) / 2
    ("sparse_plus", 0.0, 0.25, 0),              # (x+1)^2 / 4
    ("sparse_sigmoid", 0.0, 0.5, 0),
    ("linear", -2.5, -2.5, 0),
])
def test_activation_points(name, x, expected, atol):
    got = ref.activation(name)(np.array([x]))
    np.testing.assert_allclose(got, [expected], rtol=0, atol=atol)


def test_activation_none_is_linear():
    assert ref.activation(None)(np.array([-3.0]))[0] == -3.0


def test_vector_activations():
    close(ref.activation("softmax")(np.array([[2.0, 2.0]])), [[0.5, 0.5]])
    close(ref.activation("log_softmax")(np.array([[0.0, LN3]])), [[math.log(0.25), math.log(0.75)]])
    # sparsemax([0.5, 0]): tau with (0.5 - tau) + (0 - tau) = 1 -> tau = -0.25 -> [0.75, 0.25]
    close(ref.activation("sparsemax")(np.array([[0.5, 0.0]])), [[0.75, 0.25]])
    close(ref.activation("sparsemax")(np.array([[3.0, 0.0]])), [[1.0, 0.0]])


# ---------------------------------------------------------------- independence from Keras

def test_reference_never_imports_keras():
    """Importing and running the reference leaves keras/tensorflow out of sys.modules."""
    code = """
import sys
import numpy as np
import harness.reference as ref
from harness import layers
from harness.keras_api import with_defaults
for cls in ("LSTM", "GRU", "SimpleRNN"):
    cfg = with_defaults({"class": "Bidirectional", "layer": {"class": cls, "units": 2,
                          "return_sequences": True, "return_state": True}})
    shapes = layers.weight_shapes(cfg, 3)
    w = {d: {k: np.full(s, 0.1) for k, s in v.items()} for d, v in shapes.items()}
    ref.run(cfg, np.ones((2, 4, 3)), w, np.ones((2, 4), bool))
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("keras", "tensorflow", "tf_keras", "jax", "torch"))
print("HEAVY", heavy)
"""
    done = subprocess.run([sys.executable, "-c", code], check=False, cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout, done.stdout
