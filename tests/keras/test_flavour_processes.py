"""Keras flavours for real: each flavour is imported in a subprocess of its own (a process keeps the
Keras it imported first), one per flavour for all the probes of this file (each test reads its
probe's result), and skips, with the pip command, when that flavour's package is not installed.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness import flavours

ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------- real flavours, one subprocess each

def _needs(flavour: str) -> None:
    missing = flavours.missing_package(flavour)
    if missing:
        pytest.skip(missing)


# One process per flavour runs every probe of it: each probe is a body that sets ``result`` (plain
# JSON values); a probe that raises reports its traceback, and only its test fails.
PROBE_SCRIPT = textwrap.dedent("""
    import json, sys, traceback
    from harness import flavours, schema, runner
    early = [m for m in ("keras", "tensorflow", "tf_keras", "jax", "torch") if m in sys.modules]
    flavours.select(sys.argv[1])
    probes = json.loads(sys.argv[2])
    out = {}
    for name, body in probes.items():
        scope = {"json": json, "sys": sys, "schema": schema, "runner": runner, "early": early}
        try:
            exec(body, scope)
            out[name] = {"result": scope["result"]}
        except Exception:
            out[name] = {"error": traceback.format_exc()}
    print(json.dumps(out))
""")
_RAN: dict[str, dict] = {}  # flavour -> probe name -> {"result": ...} or {"error": traceback}


def _in(flavour: str, name: str):
    """The result of probe ``name`` (PROBES) under ``flavour``: every probe of the flavour runs at its
    first use, in one fresh Python with the flavour selected."""
    _needs(flavour)
    if flavour not in _RAN:
        bodies = {n: textwrap.dedent(b) for n, b in PROBES[flavour].items()}
        env = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "TF_USE_LEGACY_KERAS")}
        done = subprocess.run([sys.executable, "-c", PROBE_SCRIPT, flavour, json.dumps(bodies)], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=600, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        _RAN[flavour] = json.loads(done.stdout.strip().splitlines()[-1])
    got = _RAN[flavour][name]
    assert "error" not in got, got.get("error")
    return got["result"]


RUN_SEED = """
    from harness import session
    cases = schema.load_file("cases/seeds/input_output_lstm.yaml")[:2]
    results = [runner.run_case(c) for c in cases]
    result = {"early": early, "versions": session.versions(), "tf_loaded": "tensorflow" in sys.modules,
              "verdicts": [r.verdict for r in results], "kernels": [r.kernel for r in results],
              "messages": [r.message for r in results]}
"""
EXPECTED = {  # flavour -> (backend, Keras major, kernel of an unmasked LSTM on the CPU)
    "tensorflow": ("tensorflow", "3", "generic"),
    "jax": ("jax", "3", "generic"),
    "torch": ("torch", "3", "fused"),
    "tf_keras": ("tensorflow", "2", "generic"),
}


@pytest.mark.parametrize("flavour", flavours.FLAVOURS)
def test_each_flavour_imports_its_own_keras_and_runs_a_seed_case(flavour):
    out = _in(flavour, "seed")
    backend, major, kernel = EXPECTED[flavour]
    assert out["early"] == []  # selecting a flavour imported nothing heavy
    assert (out["versions"]["flavour"], out["versions"]["backend"]) == (flavour, backend)
    assert out["versions"]["keras"].split(".")[0] == major
    assert out["verdicts"] == ["pass", "pass"], out["messages"]
    assert out["kernels"] == [kernel, kernel]
    # Keras 3 on jax or torch never needs TensorFlow, installed or not (keras.utils.set_random_seed
    # would import it to seed it)
    assert out["tf_loaded"] is (backend == "tensorflow")


K3_ONLY = """
    import tempfile, textwrap
    from pathlib import Path
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "k3.yaml"
        path.write_text(textwrap.dedent(\'\'\'\\
            cases:
              - id: k3-seed
                layer: {class: LSTM, units: 2, seed: 3}
                input: {timesteps: 2, features: 2}
              - id: k3-use-cudnn
                layer: {class: GRU, units: 2, use_cudnn: false}
                input: {timesteps: 2, features: 2}
              - id: k3-activation
                layer: {class: SimpleRNN, units: 2, activation: hard_silu}
                input: {timesteps: 2, features: 2}
              - id: k3-only
                layer: {class: SimpleRNN, units: 2}
                input: {timesteps: 2, features: 2}
                requires: {keras: 3}
            \'\'\'), encoding="utf-8")
        result = {r.case.base_id: [r.verdict, r.message] for r in map(runner.run_case, schema.load_file(path))}
"""


def test_tf_keras_skips_what_keras_2_lacks():
    assert _in("tf_keras", "k3-only") == {
        "k3-seed": ["skip", "seed= is a Keras 3 argument; tf_keras layers have none"],
        "k3-use-cudnn": ["skip", "use_cudnn=False is a Keras 3 argument; tf_keras picks its kernel itself"],
        "k3-activation": ["skip", "activation 'hard_silu' does not exist in tf_keras 2.21.0"],
        "k3-only": ["skip", "requires Keras 3 (--keras tensorflow|jax|torch), this is Keras 2.21.0 (tf_keras)"],
    }


TIME_MAJOR = """
    import dataclasses
    base = schema.load_file("cases/seeds/input_output_lstm.yaml")[0]
    layer = {"class": "LSTM", "units": 5, "time_major": True, "return_sequences": True, "return_state": True}
    expect = dataclasses.replace(base.expect, params=None)
    case = dataclasses.replace(base, base_id="time-major", sweep_point=(), layer=layer, expect=expect)
    r = runner.run_case(case)
    result = [r.verdict, r.message]
"""


def test_time_major_runs_on_tf_keras():
    # §10: tf_keras takes (T, B, F) and returns (T, B, U) sequences; the harness feeds and reads
    # them transposed, so the batch-major reference must match.  (The case schema does not accept
    # time_major yet: the Case is built directly here.)
    assert _in("tf_keras", "time-major") == ["pass", ""]


def test_time_major_skips_on_keras_3_in_its_words():
    # Keras 3 removed the argument: a case that sets it (and expects no error) skips, saying so.
    verdict, message = _in("tensorflow", "time-major")
    assert verdict == "skip" and message.startswith("Keras 3.") and "lacks what the case sets" in message
    assert "Unrecognized keyword arguments passed to LSTM" in message and "time_major" in message


def test_jax_repeats_h0_at_leading_masked_steps():
    # The reason flavour-mask-first-output-h0-jax gives: at the masked steps before a row's first
    # valid step JAX outputs h0 (Keras 3.15 keras/src/backend/jax/rnn.py ``rnn``) where the
    # reference (TF's rule) outputs 0.
    out = _in("jax", "h0")
    assert out["verdict"] == "pass" and out["lead_steps"] == 4 and out["err"] == 0.0


def test_torch_dropout_one_output_is_that_of_zero_inputs():
    # The reason flavour-dropout-one-fused gives: torch's fused path ran on all-zero inputs.
    out = _in("torch", "dropout-one")
    assert out["verdict"] == "pass" and out["kernel"] == "fused" and out["err"] < 1e-6


JAX_H0 = """
        import numpy as np
        from harness.case import OutputKey
        case = next(c for c in schema.load_file("cases/flavours/backends.yaml")
                    if c.id == "flavour-mask-first-output-h0-jax[class:LSTM+cpu]")
        r = runner.run_case(case, runner.RunOptions(keep=True))
        h0 = r.arrays.initial_state[0]
        got = r.keras_run.outputs[OutputKey("output")]
        lead = ~r.arrays.mask[2]  # row 2 is left-padded to length 1: steps 0-3 masked
        result = {"verdict": r.verdict, "lead_steps": int(lead.sum()),
                  "err": float(np.abs(got[2][lead] - h0[2].astype(np.float32)).max())}
"""
TORCH_DROPOUT_ONE = """
        import numpy as np
        from harness import reference
        from harness.case import OutputKey
        from harness.keras_api import with_defaults
        case = next(c for c in schema.load_file("cases/flavours/kernels.yaml")
                    if c.id == "flavour-dropout-one-fused[cpu]")
        r = runner.run_case(case, runner.RunOptions(keep=True))
        x = r.arrays.inputs[0]
        zero = reference.run(with_defaults(case.layer), np.zeros_like(x), r.keras_run.weights)
        got = r.keras_run.outputs
        result = {"verdict": r.verdict, "kernel": r.kernel,
                  "err": max(float(np.abs(got[OutputKey(k)] - zero[k]).max()) for k in zero)}
"""
PROBES = {  # flavour -> probe name -> body
    "tensorflow": {"seed": RUN_SEED, "time-major": TIME_MAJOR},
    "jax": {"seed": RUN_SEED, "h0": JAX_H0},
    "torch": {"seed": RUN_SEED, "dropout-one": TORCH_DROPOUT_ONE},
    "tf_keras": {"seed": RUN_SEED, "k3-only": K3_ONLY, "time-major": TIME_MAJOR},
}
