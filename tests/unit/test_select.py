"""Selecting cases (harness/select.py): paths, ids, -k and --device, with no Keras."""
from __future__ import annotations

from pathlib import Path

import pytest
from _pytest.mark import _parse_expression, expression

from harness import known
from harness.errors import UsageError
from harness.expressions import keyword_matcher, keywords, marker_matcher
from harness.select import select, with_device

ROOT = Path(__file__).resolve().parents[2]

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
    assert ids(select([f"{path}::pick-me[units:2+cpu]"])) == ["pick-me[units:2+cpu]"]
    assert ids(select([f"{path}::pick-me[units:2]"])) == ["pick-me[units:2+cpu]"]
    assert ids(select([f"{path}::pick-me"])) == ["pick-me[units:1+cpu]", "pick-me[units:2+cpu]"]


def test_device_override_keeps_one_case_per_point_and_device(folder):
    cases = select([str(folder)])
    assert ids(with_device(cases, "all")) == ["pick-me[units:1+cpu]", "pick-me[units:1+gpu]",
                                              "pick-me[units:2+cpu]", "pick-me[units:2+gpu]",
                                              "other[cpu]", "other[gpu]"]
    assert ids(with_device(cases, "gpu"))[-1] == "other[gpu]"
    assert len(with_device(cases, "gpu")) == 3  # other[cpu] and other[gpu] become one gpu case


def test_keyword_expression_is_pytests_grammar_matched_as_pytest_matches(folder):
    cases = select([str(folder)], device="all")
    # A whole id is one word; words match substrings (any case) of the id, the file name and the markers.
    assert ids(select([str(folder)], keyword="pick-me[units:2+cpu]", device="all")) == ["pick-me[units:2+cpu]"]

    def picked(expr: str) -> list[str]:
        return ids(c for c in cases if keyword_matcher(expr)(keywords(c)))

    assert picked("PICK and not (units:1 or gpu)") == ["pick-me[units:2+cpu]"]
    assert picked("gru and cases.yaml") == ["other[cpu]", "other[gpu]"]
    assert picked("cases.yam and not lstm") == ["other[cpu]", "other[gpu]"]


@pytest.mark.parametrize("expr", ["a=b", "(a and b", "a and", "not", "a b", "units:1)"])
def test_a_malformed_keyword_expression_is_refused_as_pytest_refuses_it(expr):
    # pytest's own message for the same -k, from pytest's own function: the grammar is pytest's.
    with pytest.raises(pytest.UsageError) as theirs:
        _parse_expression(expr, "Wrong expression passed to '-k'")
    with pytest.raises(UsageError) as ours:
        keyword_matcher(expr)
    assert str(ours.value) == str(theirs.value)


def test_markers_select_by_case_traits(folder):
    cases = select([str(folder)], device="all")
    assert ids(c for c in cases if marker_matcher("gru and gpu")(keywords(c))) == ["other[gpu]"]
    assert ids(c for c in cases if marker_matcher("lstm and not gpu")(keywords(c))) == ["pick-me[units:1+cpu]",
                                                                              "pick-me[units:2+cpu]"]
    assert ids(select([str(folder)], marks="float32 and cpu", keyword="pick")) == ["pick-me[units:1+cpu]",
                                                                                  "pick-me[units:2+cpu]"]
    assert not [c for c in cases if marker_matcher("float64 or error")(keywords(c))]


def test_an_unknown_marker_is_refused_not_an_empty_selection():
    with pytest.raises(UsageError, match=r"unknown marker\(s\) in '-m' expression: gruu \(did you mean gru\?\)"):
        marker_matcher("gruu and cpu")


def test_unknown_id_suggests_a_close_one(folder):
    with pytest.raises(UsageError, match="did you mean pick-me"):
        select([f"{folder / 'cases.yaml'}::pick-mee"])


def test_a_matcher_answers_as_pytests_own_evaluation_on_every_bundled_row_and_case(monkeypatch):
    """keyword_matcher and marker_matcher evaluate an expression once per combination of its words'
    truth values (expressions._decided); on every row of the bundled known.yaml, and on expressions
    whose words overlap, each answer is the one pytest's own evaluation gives for that case."""
    monkeypatch.chdir(ROOT)
    every = [keywords(c) for c in select(["cases"])]
    rows = known.load_table("cases/known.yaml")
    by_keyword = {r.cases for r in rows if r.cases} | {"lstm and not (gru or lstm-return)", "GRU or float6 or cpu]"}
    by_marker = {r.markers for r in rows if r.markers} | {"gru and not (float64 or stateful) or lstm"}
    assert len(by_keyword) > 20 and len(by_marker) > 5
    for expr in by_keyword:
        theirs = expression.Expression.compile(expr)
        mine = [keyword_matcher(expr)(kw) for kw in every]
        assert mine == [theirs.evaluate(lambda word, kw=kw: word.lower() in kw.names) for kw in every], expr
        assert any(mine) and not all(mine), expr  # an expression that splits the library
    for expr in by_marker:
        theirs = expression.Expression.compile(expr)
        mine = [marker_matcher(expr)(kw) for kw in every]
        assert mine == [theirs.evaluate(lambda word, kw=kw: word in kw.markers) for kw in every], expr
