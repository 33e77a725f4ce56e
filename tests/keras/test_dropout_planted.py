"""Training-mode dropout: Keras runs with wrong masks fail, each by the check meant for it.

The planted Keras runs are the real run of a bundled case with its outputs replaced by what a
buggy Keras would return: the recurrent reference driven with the planted masks, row by row,
on the case's own inputs and Keras's weights (a Keras-side equivalent of each bug).
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest

from harness import schema
from harness.case import OutputKey
from harness.keras_api import with_defaults
from harness.reference import recurrent
from harness.reference.recurrent import DropoutMasks
from harness.result import Verdict
from harness.runner import RunOptions, run_case

pytest.importorskip("keras")
TRAINING = Path(__file__).resolve().parents[2] / "cases" / "dropout" / "training.yaml"
CASE_ID = "dropout-training-rates[cpu]"  # SimpleRNN, F = U = 4, rates 0.3 and 0.1, 128 rows


@pytest.fixture(scope="module")
def real():
    case = next(c for c in schema.load_file(TRAINING) if c.id == CASE_ID)
    result = run_case(case, RunOptions(keep=True))
    assert result.verdict == Verdict.PASS, result.message
    return case, result


def mask(gen, rate: float, size: int, keep_scale: float | None = None) -> np.ndarray:
    kept = gen.random(size) >= rate
    return kept / (1.0 - rate) if keep_scale is None else kept * keep_scale


def fake(case, result, masks_of_row):
    cfg = with_defaults(case.layer)
    x = result.arrays.inputs[0]
    rows = [recurrent.forward(cfg, x[b:b + 1], result.keras_run.weights, dropout=masks_of_row(b))[0]["output"]
            for b in range(x.shape[0])]
    outputs = {OutputKey("output"): np.concatenate(rows).astype(np.float32)}
    return dataclasses.replace(result.keras_run, outputs=outputs)


def failed(case, run) -> list[str]:
    verdict = run_case(case, keras_cache={case.id: run})
    return sorted({"dropout row" if re.fullmatch(r"dropout row \d+", c.name) else c.name for c in verdict.failures})


def test_correct_masks_drawn_here_pass(real):
    case, result = real
    gen = np.random.default_rng(1)
    run = fake(case, result, lambda b: DropoutMasks((mask(gen, 0.3, 4),), (mask(gen, 0.1, 4),)))
    assert failed(case, run) == []


def test_rate_used_as_keep_probability_fails_the_rows(real):
    case, result = real
    gen = np.random.default_rng(2)
    # keep with probability p, scale by 1/p: the layer's rate read as a keep probability
    run = fake(case, result, lambda b: DropoutMasks((mask(gen, 0.7, 4, 1 / 0.3),), (mask(gen, 0.9, 4, 1 / 0.1),)))
    assert "dropout row" in failed(case, run)


def test_one_mask_for_every_row_fails_row_independence(real):
    case, result = real
    gen = np.random.default_rng(3)
    shared = DropoutMasks((mask(gen, 0.3, 4),), (mask(gen, 0.1, 4),))
    # (the kept counts are multiples of 128 then, so the rate checks fail too)
    assert "dropout rows independent" in failed(case, fake(case, result, lambda b: shared))


def test_recurrent_mask_copied_from_the_input_mask_fails(real):
    case, result = real
    gen = np.random.default_rng(4)

    def copied(b):
        m = gen.random(4) >= 0.3
        return DropoutMasks((m / 0.7,), (m / 0.9,))  # one draw, both scales right
    assert "dropout masks independent" in failed(case, fake(case, result, copied))


def test_recurrent_mask_drawn_at_the_input_rate_fails_its_rate(real):
    case, result = real
    gen = np.random.default_rng(5)
    run = fake(case, result, lambda b: DropoutMasks((mask(gen, 0.3, 4),), (mask(gen, 0.3, 4, 1 / 0.9),)))
    assert failed(case, run) == ["dropout recurrent rate"]
