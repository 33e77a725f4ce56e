"""The Keras session keeps the backend's native log lines off the user's terminal unless asked."""
from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness import session

pytest.importorskip("keras")
ROOT = Path(__file__).resolve().parents[2]
# One case whose run makes TensorFlow log natively (OP_REQUIRES, from its strided_slice kernel), besides the
# lines its import writes (cuInit, absl; oneDNN on some machines).
CASE = (f"{ROOT / 'cases' / 'errors' / 'keras_raises.yaml'}"
        "::error-zero-timesteps[class:LSTM+return_sequences:false+cpu]")
NATIVE = ("oneDNN", "cuInit", "OP_REQUIRES", "absl::InitializeLog")


def _run(extra_env: dict) -> str:
    env = {k: v for k, v in os.environ.items() if k not in (session.VERBOSE_ENV, "TF_CPP_MIN_LOG_LEVEL")}
    done = subprocess.run([sys.executable, "-m", "harness", "run", "-q", CASE], env={**env, **extra_env},
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout + done.stderr


def test_native_logs_are_hidden_by_default_and_shown_when_verbose():
    hidden = _run({})  # once: inside the comprehension it would run once per word
    assert not [word for word in NATIVE if word in hidden]
    shown = _run({session.VERBOSE_ENV: "1"})
    assert "OP_REQUIRES" in shown  # what the case's own run logs, not only the import


def test_what_loading_keras_leaves_is_frozen_out_of_the_collectors_walks():
    """session.keras() freezes the objects its import left (gc.freeze), so that a full collection
    walks only what cases made: the Keras module's own namespace is no longer tracked."""
    module = session.keras()
    assert gc.get_freeze_count() > 0
    assert not any(tracked is vars(module) for tracked in gc.get_objects())
