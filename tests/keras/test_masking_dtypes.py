"""A mask silently lost under a cast policy fails the bundled half-precision mask cases.

The planted bug is in Keras itself: each recurrent layer's ``call`` drops its mask when the
layer computes in float16 or bfloat16 (what an autocast that forgets ``_keras_mask`` would do).
Every bundled masked half-precision case whose outputs depend on the mask must fail under it,
and pass without it.
"""
from __future__ import annotations

import functools
from pathlib import Path
from unittest import mock

import pytest

from harness import schema
from harness.result import Verdict
from harness.runner import run_case

keras = pytest.importorskip("keras")
CASES = Path(__file__).resolve().parents[2] / "cases" / "masking" / "dtypes.yaml"
HALF = ("float16", "bfloat16")


def masked_half_cases():
    return [c for c in schema.load_file(CASES) if c.expect.mismatch is None]


def _losing(original):
    @functools.wraps(original)  # Keras reads call()'s signature
    def call(self, *args, **kwargs):
        if self.compute_dtype in HALF:
            kwargs["mask"] = None
        return original(self, *args, **kwargs)
    return call


def test_the_cases_pass_and_fail_when_a_cast_policy_loses_the_mask():
    cases = masked_half_cases()
    assert len(cases) >= 30
    control = {c.id: run_case(c).verdict for c in cases}
    assert set(control.values()) == {Verdict.PASS}, control
    with mock.patch.object(keras.layers.LSTM, "call", _losing(keras.layers.LSTM.call)), \
            mock.patch.object(keras.layers.GRU, "call", _losing(keras.layers.GRU.call)), \
            mock.patch.object(keras.layers.SimpleRNN, "call", _losing(keras.layers.SimpleRNN.call)):
        planted = {c.id: run_case(c).verdict for c in cases}
    survivors = [cid for cid, verdict in planted.items() if verdict != Verdict.FAIL]
    assert survivors == []
