"""Keras's own cell, driven from the reference's states, under the flavour this process runs
(``pytest --keras F tests/keras/test_keras_cell.py`` for the others): real layers agree at every step,
and a forget-gate bias planted in Keras alone is named as the forget gate at timestep 0."""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pytest

from harness import keras_cell, keras_layer, layers, session, tolerances
from harness.case import OutputKey
from harness.diagnosis.divergence import Direction, Finding, first_divergence
from harness.keras_api import with_defaults

pytest.importorskip("keras")

B, T, F, U = 3, 4, 2, 3
SEED = 7
TOL = tolerances.for_row("float32")


class Run(NamedTuple):
    """What run_layer did: the diagnosis, the Keras layer, the weights the reference got."""

    divergences: tuple
    layer: Any
    weights: dict


def inputs(cfg: dict) -> tuple[np.ndarray, list[np.ndarray]]:
    """The input and a large random initial state (scale 2, so c_prev matters at step 0)."""
    rng = np.random.default_rng(SEED)
    x = rng.normal(size=(B, T, F)).astype("float32")
    return x, [(rng.normal(size=(B, U)) * 2.0).astype("float32") for _ in layers.state_units(cfg)]


def run_layer(spec: dict, plant=None) -> Run:
    """Build the layer, read the weights the reference gets, let ``plant`` change Keras's copy, call the
    layer from ``inputs``; then diagnose."""
    cfg = with_defaults(spec)
    x, init = inputs(cfg)
    session.fresh("cpu", SEED, False)
    with session.device_scope("cpu"):
        layer = keras_layer.build_layer(spec, "float32", SEED)
        layer.build(x.shape)
        weights = keras_layer.read_weights(layer)
        if plant is not None:
            plant(layer, weights)
        result = layer(session.to_tensor(x), initial_state=[session.to_tensor(s) for s in init])
        result = result if isinstance(result, (list, tuple)) else [result]
        outputs = {OutputKey(name): session.to_numpy(v) for name, v in zip(layers.output_names(cfg), result)}
        steps = ({d: keras_cell.cell_step(layer, d) for d in Direction} if layers.is_bidirectional(cfg)
                 else keras_cell.cell_step(layer))
        return Run(first_divergence(cfg, x, weights, outputs, TOL, initial_state=init, cell_step=steps), layer, weights)


@pytest.mark.parametrize("spec", [
    {"class": "LSTM", "units": U, "return_sequences": True, "return_state": True},
    {"class": "GRU", "units": U, "return_sequences": True},
    {"class": "GRU", "units": U, "reset_after": False},
    {"class": "SimpleRNN", "units": U, "return_sequences": True, "go_backwards": True},
    {"class": "Bidirectional", "layer": {"class": "LSTM", "units": U, "return_sequences": True}},
], ids=lambda spec: spec["class"] + ("-" + spec["layer"]["class"] if "layer" in spec else ""))
def test_real_cells_agree_with_the_reference_at_every_step(spec):
    divergences = run_layer(spec).divergences
    assert len(divergences) == (2 if spec["class"] == "Bidirectional" else 1)
    for d in divergences:
        assert (d.finding, d.cell_agrees) == (Finding.NONE, True), d.text()


def test_a_forget_bias_planted_in_keras_is_the_forget_gate_at_timestep_0():
    def plant(layer, weights):
        bias = np.array(weights["bias"])
        bias[U:2 * U] += 0.5  # the forget block (layers.GATES["LSTM"][1]), in Keras only
        keras_layer.set_weights(layer, {"bias": bias})

    assert layers.GATES["LSTM"][1] == "f"
    spec = {"class": "LSTM", "units": U, "return_sequences": True}
    run = run_layer(spec, plant)
    (d,) = run.divergences
    assert (d.finding, d.timestep, d.gate) == (Finding.CELL, 0, "f"), d.text()
    # The forget gate's move at step 0, worked out here: z_f = x0 W_f + h0 R_f + b_f, and Keras's
    # sigmoid(z_f + 0.5) against sigmoid(z_f) (at most sigmoid(0.25) - sigmoid(-0.25) = 0.124).
    x, (h0, _) = inputs(with_defaults(spec))
    w, block = run.weights, slice(U, 2 * U)
    z_f = x[:, 0] @ w["kernel"][:, block] + h0 @ w["recurrent_kernel"][:, block] + w["bias"][block]
    moved = 1 / (1 + np.exp(-(z_f.astype(float) + 0.5))) - 1 / (1 + np.exp(-z_f.astype(float)))
    assert d.gate_change == pytest.approx(moved.max(), abs=1e-4)


def test_a_bidirectional_cell_needs_its_direction():
    layer = run_layer({"class": "Bidirectional", "layer": {"class": "GRU", "units": U}}).layer
    with pytest.raises(ValueError, match="direction must be given"):
        keras_cell.cell_step(layer)
    assert callable(keras_cell.cell_step(layer, "backward"))
