"""jax's persistent compilation cache (flavours.jax_cache_settings) never changes a verdict or a number:
the same cases run with the cache off, into an empty cache and from the filled one give identical
JSON reports (timings aside).  Each run is its own process: the flavour is fixed at Keras's import."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("jax", reason="the jax flavour is not installed (keras-equiv[jax])")

ROOT = Path(__file__).resolve().parents[2]
# A few cases whose programs differ (LSTM, GRU, Bidirectional, a gradient case: the cheapest of each,
# since every case is compiled twice and read back once).
CASES = ["seed-rnn-basic-lstm-seq-state[cpu]", "seed-rnn-basic-gru-seq-state[cpu]",
         "seed-rnn-basic-bidi-seq-state[cpu]", "grad-simple-rnn[activation:tanh+cpu]"]


def run(tmp_path: Path, name: str, cache: str) -> list[dict]:
    out = tmp_path / f"{name}.json"
    env = {**os.environ, "KERAS_EQUIV_JAX_CACHE": cache}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    done = subprocess.run([sys.executable, "-m", "harness", "run", "-q", "-n", "0", "--keras", "jax",
                           "--json", str(out), *CASES], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    cases = json.loads(out.read_text())["cases"]
    for case in cases:
        case.pop("seconds")
    return cases


def test_the_cache_changes_no_verdict_and_no_number(tmp_path):
    cache = tmp_path / "jax-cache"
    off = run(tmp_path, "off", "off")
    cold = run(tmp_path, "cold", str(cache))
    assert any(cache.rglob("*")), "the cache folder stayed empty: the cache was not used"
    warm = run(tmp_path, "warm", str(cache))
    assert [c["verdict"] for c in off] == ["pass"] * len(CASES)
    assert cold == off
    assert warm == off
