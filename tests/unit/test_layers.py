"""Layer facts (harness/layers.py, harness/model_layers.py): counts, names and shapes by hand.

Every expected number is worked out in the comment beside it from the formulas in
docs/semantics.md (§1-§4, §9) or a seed notebook's printed summary; nothing here runs Keras.
"""
from __future__ import annotations

import pytest

from harness import layers, model_layers
from harness.case import OutputKey
from harness.keras_api import with_defaults


def cfg(cls: str, **args) -> dict:
    return with_defaults({"class": cls, "units": 16, **args})


@pytest.mark.parametrize("cls, args, features, count", [
    ("LSTM", {}, 10, 1728),  # 4*(10*16 + 16*16 + 16) = 4*432 (the DESIGN.md example)
    ("GRU", {}, 10, 1344),  # reset_after: 3*(10*16 + 16*16 + 2*16) = 3*448
    ("GRU", {"reset_after": False}, 10, 1296),  # 3*(160 + 256 + 16) = 3*432
    ("SimpleRNN", {}, 10, 432),  # 160 + 256 + 16
    ("LSTM", {"use_bias": False}, 10, 1664),  # 4*(160 + 256)
])
def test_param_formulas(cls, args, features, count):
    assert layers.param_count(cfg(cls, **args), features) == count


def test_bidirectional_counts_both_directions_and_its_own_backward_layer():
    # forward LSTM(16) on F=10: 1728; backward GRU(4): 3*(10*4 + 4*4 + 2*4) = 3*64 = 192
    spec = with_defaults({"class": "Bidirectional", "layer": {"class": "LSTM", "units": 16},
                          "backward_layer": {"class": "GRU", "units": 4, "go_backwards": True}})
    assert layers.param_count(spec, 10) == 1728 + 192
    assert layers.state_units(spec) == [16, 16, 4]  # h_fw, c_fw, h_bw
    assert layers.state_output_names(spec) == ["h_fw", "c_fw", "h_bw"]


def test_weight_shapes_and_gate_blocks():
    assert layers.weight_shapes(cfg("LSTM", units=3), 2) == {
        "kernel": (2, 12), "recurrent_kernel": (3, 12), "bias": (12,)}
    assert layers.weight_shapes(cfg("GRU", units=3), 2)["bias"] == (2, 9)  # reset_after: (2, 3U)
    assert layers.GATES["LSTM"] == ("i", "f", "c", "o") and layers.GATES["GRU"] == ("z", "r", "h")


def test_a_bidirectional_copy_runs_the_other_way():
    spec = with_defaults({"class": "Bidirectional", "layer": {"class": "GRU", "units": 2, "go_backwards": True}})
    forward, backward = layers.cells(spec)
    assert forward["go_backwards"] is True and backward["go_backwards"] is False
    assert layers.cells(cfg("LSTM")) == (cfg("LSTM"), None)


def test_output_keys_per_call_and_shapes():
    spec = cfg("LSTM", units=3, return_state=True, return_sequences=True, stateful=True)
    assert layers.output_keys(spec) == [OutputKey("output"), OutputKey("h"), OutputKey("c")]
    keys = layers.output_keys(spec, calls=2)
    assert keys[3] == OutputKey("output", 2) and str(keys[3]) == "call2.output"
    assert layers.output_shapes(spec, 4, 5) == {"output": (4, 5, 3), "h": (4, 3), "c": (4, 3)}
    none = with_defaults({"class": "Bidirectional", "merge_mode": None, "layer": {"class": "GRU", "units": 2}})
    assert layers.output_names(none) == ["output_fw", "output_bw"]


@pytest.mark.parametrize("cls, dropout, recurrent, masks, bits", [
    ("LSTM", 0.5, 0.0, (1, 0), 2),  # one input mask shared by the gates: F=2 entries
    ("LSTM", 0.5, 0.4, (4, 4), 4 * 2 + 4 * 1),  # per-gate path: 4 input masks (F=2) + 4 recurrent (U=1)
    ("GRU", 0.0, 0.3, (0, 3), 3),
    ("SimpleRNN", 0.5, 0.4, (1, 1), 3),
    ("LSTM", 1.0, 0.0, (0, 0), 0),  # p = 1 is no dropout at all (§9)
])
def test_dropout_masks(cls, dropout, recurrent, masks, bits):
    spec = cfg(cls, units=1, dropout=dropout, recurrent_dropout=recurrent)
    assert layers.dropout_masks(spec) == masks
    assert layers.dropout_mask_bits(spec, 2) == bits


def test_dtype_table():
    assert layers.DTYPES["mixed_float16"] == layers.DtypeFacts("float16", "float32", "mixed_float16")
    assert layers.DTYPES["float64"].feed == "float64"


def test_sequential_shapes_and_formulas():
    # The seed notebook's LSTM(3) -> Dense(10, softmax) on (5, 2): LSTM 4*(2*3 + 9 + 3) = 72, Dense 3*10 + 10
    assert model_layers.output_shape({"class": "LSTM", "units": 3}, (5, 2)) == (3,)
    assert model_layers.param_formula({"class": "Dense", "units": 10}, (3,))[0] == 40
    assert model_layers.param_formula({"class": "LSTM", "units": 3}, (5, 2))[0] == 72
    # Conv1D same padding, stride 2 on 7 steps: ceil(7/2) = 4 steps
    assert model_layers.output_shape({"class": "Conv1D", "filters": 4, "kernel_size": 3, "strides": 2,
                                      "padding": "same"}, (7, 2)) == (4, 4)
