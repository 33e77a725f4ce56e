"""The training-mode dropout fit (reference/dropout.py) against the recurrent reference itself.

The fit runs the same cells as inference, so: all-kept masks (every entry 1/(1-p)) must be found
for outputs made without dropout but with those scales, a planted mask set must be found exactly,
and outputs no mask set can make must be refused.  No Keras here.
"""
from __future__ import annotations

import numpy as np
import pytest

from harness.keras_api import with_defaults
from harness.layers import weight_shapes
from harness.reference import dropout, recurrent
from harness.reference.recurrent import DropoutMasks


def cfg(cls: str, **args) -> dict:
    return with_defaults({"class": cls, "units": 1, "return_sequences": True, "return_state": True, **args})


def weights(spec: dict, features: int, seed: int = 0) -> dict:
    gen = np.random.default_rng(seed)
    return {k: gen.uniform(-1, 1, s) for k, s in weight_shapes(spec, features).items()}


def test_one_mask_of_ones_is_the_plain_cell():
    # Scale 1 on every entry multiplies by 1.0: exactly the inference equations.
    spec = cfg("GRU", units=2, reset_after=False)
    w, x = weights(spec, 3), np.random.default_rng(1).standard_normal((2, 4, 3))
    ones = DropoutMasks((np.ones((1, 3)),) * 3, (np.ones((1, 2)),) * 3)
    plain, _ = recurrent.forward(spec, x, w)
    masked, _ = recurrent.forward(spec, x, w, dropout=ones)
    for name in plain:
        np.testing.assert_array_equal(plain[name], masked[name])


@pytest.mark.parametrize("cls", ["LSTM", "GRU", "SimpleRNN"])
@pytest.mark.parametrize("recurrent_rate", [0.0, 0.4])
def test_planted_masks_are_found(cls, recurrent_rate):
    spec = cfg(cls, dropout=0.5, recurrent_dropout=recurrent_rate)
    w, x = weights(spec, 2, seed=3), np.random.default_rng(4).standard_normal((3, 5, 2))
    masks, n = dropout.candidates(spec, 2)
    # Row b of "Keras" uses candidate picks[b]: the all-kept set for row 0, others below.
    picks = [n - 1, 0, n // 3]
    rows = []
    for b, pick in enumerate(picks):
        one = DropoutMasks(tuple(m[pick:pick + 1] for m in masks.inputs),
                           tuple(m[pick:pick + 1] for m in masks.recurrent))
        rows.append(recurrent.forward(spec, x[b:b + 1], w, dropout=one)[0])
    keras_like = {name: np.concatenate([r[name] for r in rows]) for name in rows[0]}
    fits = dropout.fit_rows(spec, x, w, keras_like, None, 1e-12, 1e-12)
    assert [f.passed for f in fits] == [True, True, True]
    assert fits[0].kept == 1.0  # candidate n-1 is all ones: every entry kept
    assert fits[1].kept == 0.0  # candidate 0 drops every entry
    assert max(f.error for f in fits) < 1e-12


def test_outputs_no_mask_set_explains_are_refused():
    spec = cfg("LSTM", dropout=0.5)
    w, x = weights(spec, 2, seed=5), np.random.default_rng(6).standard_normal((2, 4, 2))
    plain, _ = recurrent.forward(spec, x, w)
    wrong = {name: value * 1.5 + 0.25 for name, value in plain.items()}
    fits = dropout.fit_rows(spec, x, w, wrong, None, 1e-5, 1e-5)
    assert not any(f.passed for f in fits)
    assert min(f.error for f in fits) > 1e-3


def test_candidate_entries_are_zero_or_the_inverted_scale():
    spec = cfg("SimpleRNN", dropout=0.25, recurrent_dropout=0.5)
    masks, n = dropout.candidates(spec, 2)
    assert n == 2 ** 3  # 2 input entries + 1 recurrent entry
    assert set(np.unique(masks.inputs[0])) == {0.0, 1.0 / 0.75}
    assert set(np.unique(masks.recurrent[0])) == {0.0, 2.0}
