"""Case ids (harness/case.py): one word for pytest -k, --lf and junit, with no Keras."""
from __future__ import annotations

from pathlib import Path

import pytest
from _pytest.mark.expression import Expression

from harness import schema
from harness.case import case_id, legacy_point_id, point_id, spell

ROOT = Path(__file__).resolve().parents[2]
POINT = (("layer.units", 5), ("layer.return_state", True))


def test_the_device_is_the_last_part_of_the_bracket():
    assert case_id("lstm-basic", POINT, "cpu") == "lstm-basic[units:5+return_state:true+cpu]"
    assert point_id("lstm-basic", POINT) == "lstm-basic[units:5+return_state:true]"
    assert case_id("lstm-basic", (), "gpu") == "lstm-basic[gpu]"
    assert point_id("lstm-basic", ()) == "lstm-basic"
    # Two swept paths with one last part are labelled in full.
    assert case_id("b", (("layer.units", 2), ("layer.layer.units", 3)), "cpu") == \
        "b[layer.units:2+layer.layer.units:3+cpu]"


@pytest.mark.parametrize("value, text", [
    (None, "null"), (True, "true"), (False, "false"), (0, "0"), (-3, "-3"), (0.25, "0.25"),
    (1e-05, "1e-05"), (1e308, "1e308"), ("mixed_float16", "mixed_float16"),
    ([6, 4, 2, 0], "6-4-2-0"), ({"kind": "right_padded", "lengths": [5, 3]}, "kind-right_padded-lengths-5-3"),
])
def test_values_are_spelled_in_words_pytest_reads_as_one(value, text):
    assert spell(value) == text


@pytest.mark.parametrize("value", ["a]b", "x@cpu", "tanh\n", "two words", "a+b", "k:v", "", [], ["ok", "n o"],
                                   "\u00e9t\u00e9", 1 + 2j])
def test_values_an_id_cannot_hold_have_no_spelling(value):
    assert spell(value) is None


def test_every_bundled_id_is_one_word_of_pytests_k_grammar():
    cases = schema.load_files(schema.find_case_files([ROOT / "cases"]))
    assert len(cases) > 900
    for case in cases:
        # The whole id is one identifier: -k ID selects by it verbatim.
        assert Expression.compile(case.id).idents() == {case.id}, case.id


def test_pytest_reads_the_bracket_as_the_parameters_of_the_nodeid():
    nodeid = pytest.importorskip("_pytest.nodeid")  # pytest 9 parses nodeids it reads back (--lf)
    parsed = nodeid.NodeId.parse("cases/x.yaml::" + case_id("lstm-basic", POINT, "cpu"))
    assert (parsed.names, parsed.params) == (("lstm-basic",), "units:5+return_state:true+cpu")


def test_the_legacy_spelling_is_the_one_keras_equiv_0_1_wrote():
    # As the 0.1 README and the 0.1 golden file (tests/data/golden-0.1.h5) write it.
    assert legacy_point_id("lstm-basic", POINT) == "lstm-basic[units=5,return_state=true]"
    assert legacy_point_id("golden-cells", (("layer.class", "LSTM"),)) == "golden-cells[class=LSTM]"


def test_seeds_are_the_ones_keras_equiv_0_1_recorded():
    # The seeds tests/data/golden-0.1.h5 recorded for these cases (its case JSON), not recomputed here:
    # renaming the ids left every case's random data as it was.
    recorded = {"golden-cells[class:GRU+cpu]": 1258106563, "golden-cells[class:LSTM+cpu]": 1100186354,
                "golden-cells[class:SimpleRNN+cpu]": 1709828740, "golden-gru-reset-before[cpu]": 1111895591,
                "golden-bidirectional-masked[cpu]": 2127720734}
    cases = schema.load_file(ROOT / "cases" / "golden" / "pinned.yaml")
    assert {c.id: c.seed for c in cases if c.id in recorded} == recorded
