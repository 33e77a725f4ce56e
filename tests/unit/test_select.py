"""Selecting cases (harness/select.py): paths, ids, -k and --device, with no Keras."""
from __future__ import annotations

import pytest

from harness.errors import UsageError
from harness.select import keyword_matcher, select, with_device

CASES = """
cases:
  - id: pick-me
    about: two sweep points
    layer: {class: LSTM, units: 2}
    input: {batch: 1, timesteps: 2, features: 1}
    sweep:
      layer.units: [1, 2]
  - id: other
    about: one case on two devices
    layer: {class: GRU, units: 1}
    input: {batch: 1, timesteps: 2, features: 1}
    devices: [cpu, gpu]
"""


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "cases.yaml").write_text(CASES)
    return tmp_path


def ids(cases):
    return [c.id for c in cases]


def test_full_id_point_id_and_base_id_select_the_same_way(folder):
    path = str(folder / "cases.yaml")
    assert ids(select([f"{path}::pick-me[units=2]@cpu"])) == ["pick-me[units=2]@cpu"]
    assert ids(select([f"{path}::pick-me[units=2]"])) == ["pick-me[units=2]@cpu"]
    assert ids(select([f"{path}::pick-me"])) == ["pick-me[units=1]@cpu", "pick-me[units=2]@cpu"]


def test_device_override_keeps_one_case_per_point_and_device(folder):
    cases = select([str(folder)])
    assert ids(with_device(cases, "all")) == ["pick-me[units=1]@cpu", "pick-me[units=1]@gpu",
                                              "pick-me[units=2]@cpu", "pick-me[units=2]@gpu",
                                              "other@cpu", "other@gpu"]
    assert ids(with_device(cases, "gpu"))[-1] == "other@gpu"
    assert len(with_device(cases, "gpu")) == 3  # other@cpu and other@gpu become one gpu case


def test_keyword_grammar():
    match = keyword_matcher("pick and not (units=1 or gpu)")
    assert [match(i) for i in ("pick-me[units=1]@cpu", "pick-me[units=2]@cpu", "pick-me[units=2]@gpu")] == [
        False, True, False]
    with pytest.raises(UsageError, match="unbalanced parentheses"):
        keyword_matcher("(a and b")


def test_unknown_id_suggests_a_close_one(folder):
    with pytest.raises(UsageError, match="did you mean pick-me"):
        select([f"{folder / 'cases.yaml'}::pick-mee"])
