"""The diagnosis of one case put together (harness/diagnosis/findings.py), on planted ports, no Keras."""
from __future__ import annotations

import json

import numpy as np

from harness.case import OutputKey
from harness.diagnosis import findings
from harness.keras_api import with_defaults
from harness.reference import recurrent
from harness.report import strict
from harness.tolerances import for_row

TOL = for_row("float32")


def setup(spec: dict, batch: int = 3, timesteps: int = 6, features: int = 4, seed: int = 0):
    cfg = with_defaults(spec)
    rng = np.random.default_rng(seed)
    u, k = cfg["units"], {"LSTM": 4, "GRU": 3, "SimpleRNN": 1}[cfg["class"]]
    weights = {"kernel": rng.uniform(-1, 1, (features, k * u)), "recurrent_kernel": rng.uniform(-1, 1, (u, k * u)),
               "bias": rng.uniform(-1, 1, (2, k * u) if cfg["class"] == "GRU" else (k * u,))}
    return cfg, rng.normal(size=(batch, timesteps, features)), weights


def keyed(outputs: dict) -> dict:
    return {OutputKey(k): v for k, v in outputs.items()}


def test_a_port_that_zeroes_the_state_at_step_three_diverges_there_and_no_layout_explains_it():
    cfg, x, w = setup({"class": "GRU", "units": 3, "return_sequences": True})
    right = recurrent.run(cfg, x, w)["output"]
    # The planted port: correct until timestep 3, where it restarts from a zero state.
    restarted = recurrent.run(cfg, x[:, 3:], w)["output"]
    wrong = np.concatenate([right[:, :3], restarted], axis=1)
    found = findings.diagnose(cfg, [x], w, {OutputKey("output"): wrong}, keyed({"output": right}), lambda k: TOL)
    assert found.timesteps[0].first_over == 3
    assert found.first_divergence.timestep == 3 and found.first_on_axis == 3
    assert found.layout_verdict.startswith("no layout hypothesis reproduces the outputs")
    text = findings.lines(found)
    assert text[0] == "error by timestep (worst |err| / allowed; over 1 fails):"
    assert text[1].startswith("  output  err/tol by timestep  t0 0  t1 0  t2 0  t3 ")
    assert any(line.startswith("first divergence: timestep 3 (processing step 3)") for line in text)
    assert "no cell was driven (a port gives outputs only), so a cell bug and a sequence bug look alike" in \
        " ".join(line.strip() for line in text)


def test_go_backwards_marks_the_divergence_on_the_outputs_axis():
    cfg, x, w = setup({"class": "LSTM", "units": 2, "return_sequences": True, "go_backwards": True})
    right = recurrent.run(cfg, x, w)["output"]  # processing order: axis index 1 is input timestep T-2
    wrong = right.copy()
    wrong[:, 1:] += 0.5
    found = findings.diagnose(cfg, [x], w, {OutputKey("output"): wrong}, keyed({"output": right}), lambda k: TOL)
    d = found.first_divergence
    assert (d.step, d.timestep, found.first_on_axis) == (1, x.shape[1] - 2, 1)


def test_a_stateful_port_is_diagnosed_per_call_and_its_layouts_on_the_first():
    cfg, x, w = setup({"class": "SimpleRNN", "units": 3, "return_sequences": True, "stateful": True})
    x2 = x[:, ::-1].copy()
    first, states = recurrent.forward(cfg, x, w)
    second, _ = recurrent.forward(cfg, x2, w, initial_state=states)
    fresh, _ = recurrent.forward(cfg, x2, w)  # the planted port forgets the state between calls
    expected = {OutputKey("output", 1): first["output"], OutputKey("output", 2): second["output"]}
    actual = {OutputKey("output", 1): first["output"], OutputKey("output", 2): fresh["output"]}
    found = findings.diagnose(cfg, [x, x2], w, actual, expected, lambda k: TOL)
    by_call = {d.call: d for d in found.divergences}
    assert by_call[1].output is None
    assert by_call[2].timestep == 0
    assert found.layout_call == 1 and found.layout_verdict.startswith("the port agrees with Keras's layout")
    assert found.first_divergence.call == 2


def test_the_json_is_strict_and_carries_the_reproducing_layouts():
    cfg, x, w = setup({"class": "LSTM", "units": 3, "return_sequences": True, "return_state": True})
    blocks = np.split(w["kernel"], 4, axis=-1)
    swapped = {**w, "kernel": np.concatenate([blocks[1], blocks[0], blocks[2], blocks[3]], axis=-1),
               "recurrent_kernel": np.concatenate(
                   [np.split(w["recurrent_kernel"], 4, axis=-1)[i] for i in (1, 0, 2, 3)], axis=-1),
               "bias": np.concatenate([np.split(w["bias"], 4)[i] for i in (1, 0, 2, 3)])}
    port = recurrent.run(cfg, x, swapped)
    right = recurrent.run(cfg, x, w)
    found = findings.diagnose(cfg, [x], w, keyed(port), keyed(right), lambda k: TOL)
    doc = json.loads(json.dumps(strict(findings.to_json(found)), allow_nan=False))
    assert [fit["name"] for fit in doc["layouts"]] == [found.layouts[0].name]
    assert "gate order [f, i, c, o]" in doc["layout_verdict"]
    assert {r["output"] for r in doc["timesteps"]} == {"output", "h", "c"}
