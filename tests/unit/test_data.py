"""Seeded arrays (harness/data.py): by hand where a rule decides them, by seed where it does not."""
from __future__ import annotations

import numpy as np

from harness import data
from harness.case import Case, InputSpec, MaskSpec


def case(**fields) -> Case:
    base = dict(base_id="d", path="d.yaml", line=1, about="", layer={"class": "LSTM", "units": 2},
                input=InputSpec(3, 4, 2), seed=11)
    return Case(**{**base, **fields})


def test_right_and_left_padded_masks_by_hand():
    right = data.make_mask(case(mask=MaskSpec("right_padded", lengths=(4, 2, 0))))
    assert right.astype(int).tolist() == [[1, 1, 1, 1], [1, 1, 0, 0], [0, 0, 0, 0]]
    left = data.make_mask(case(mask=MaskSpec("left_padded", lengths=(4, 2, 0))))
    assert left.astype(int).tolist() == [[1, 1, 1, 1], [0, 0, 1, 1], [0, 0, 0, 0]]


def test_arange_and_one_hot():
    x = data.make_input(case(input=InputSpec(1, 2, 3, data="arange")))
    assert x.tolist() == [[[0, 1, 2], [3, 4, 5]]]
    hot = data.make_input(case(input=InputSpec(2, 3, 4, data="one_hot")))
    assert (hot.sum(axis=-1) == 1).all() and set(np.unique(hot)) == {0.0, 1.0}


def test_a_masking_layer_case_zeroes_exactly_the_masked_steps():
    arrays = data.make_arrays(case(mask=MaskSpec("right_padded", lengths=(4, 2, 1), via="masking_layer")))
    x = arrays.inputs[0]
    assert (x[1, 2:] == 0).all() and (x[2, 1:] == 0).all() and (x[0] != 0).all()


def test_the_same_seed_gives_the_same_arrays_whatever_ran_before():
    a, b = data.make_arrays(case(initial_state="random")), data.make_arrays(case(initial_state="random"))
    np.testing.assert_array_equal(a.inputs[0], b.inputs[0])
    assert [s.shape for s in a.initial_state] == [(3, 2), (3, 2)]  # LSTM [h, c], (batch, units)


def test_round_to_the_compute_dtype():
    # 1/3 in float16 is 0.333251953125 (11 significant bits: 1365/4096)
    assert data.round_to(np.array([1 / 3]), "float16")[0] == 1365 / 4096
    # bfloat16 keeps 8 bits: 1/3 -> 0.333984375 (171/512)
    assert data.round_to(np.array([1 / 3]), "bfloat16")[0] == 171 / 512
