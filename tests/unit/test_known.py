"""Known-differences tables (harness/known.py) and Case.here, with no Keras."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from harness import known, schema
from harness.case import ErrorSpec, MismatchSpec, OutputKey
from harness.expressions import keywords
from harness.errors import CaseSchemaError

ROOT = Path(__file__).resolve().parents[2]

CASES = """\
cases:
  - id: pick
    layer: {class: GRU, units: 2, return_state: true}
    input: {batch: 1, timesteps: 2, features: 1}
    sweep: {dtype: [float32, float64]}
  - id: other
    layer: {class: LSTM, units: 2}
    input: {batch: 1, timesteps: 2, features: 1}
"""

TABLE = """\
known:
  - about: float64 GRUs differ on jax
    flavour: jax
    markers: gru and float64
    mismatch: [output]
  - about: the LSTM raises on torch before 3.10
    flavour: torch
    keras: "<3.10"
    cases: other
    error: {type: ValueError, match: "bad"}
  - about: nothing runs on tf_keras
    flavour: tf_keras
    skip: no such layer there
"""


@pytest.fixture
def library(tmp_path):
    (tmp_path / "known.yaml").write_text(TABLE)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "cases.yaml").write_text(CASES)
    return tmp_path


def by_id(cases):
    return {c.id: c for c in cases}


def test_rows_attach_to_the_cases_they_select_in_their_folder_and_below(library):
    cases = by_id(schema.load_file(library / "sub" / "cases.yaml"))
    assert [k.line for k in cases["pick[dtype:float64+cpu]"].known] == [2, 11]  # the rows start at lines 2, 6, 11
    assert [k.line for k in cases["pick[dtype:float32+cpu]"].known] == [11]
    assert [k.line for k in cases["other[cpu]"].known] == [6, 11]
    # the table is no case file
    assert schema.find_case_files([library]) == [library / "sub" / "cases.yaml"]


def test_a_table_in_a_subfolder_does_not_reach_its_parent(library):
    (library / "sub" / "known.yaml").write_text(TABLE)
    (library / "top.yaml").write_text(CASES.replace("id: pick", "id: pick2").replace("id: other", "id: other2"))
    assert len(schema.load_file(library / "top.yaml")[0].known) == 1  # only the parent's tf_keras row
    assert len(schema.load_file(library / "sub" / "cases.yaml")[-1].known) == 4  # both tables' rows


def test_a_table_is_read_once_for_every_folder_below_it_and_again_when_it_changes(library):
    (library / "sub2").mkdir()
    (library / "sub2" / "more.yaml").write_text(CASES)
    before = known._table.cache_info()
    assert len(known.rows_for(library / "sub" / "cases.yaml")) == 3
    assert len(known.rows_for(library / "sub2" / "more.yaml")) == 3
    after = known._table.cache_info()
    assert (after.misses - before.misses, after.hits - before.hits) == (1, 1)  # one table, two folders
    (library / "known.yaml").write_text(TABLE + "  - about: one more\n    cases: other\n    skip: later\n")
    assert [r.about for r in known.rows_for(library / "sub2" / "more.yaml")][-1] == "one more"


def test_here_applies_the_first_row_that_holds(library):
    cases = by_id(schema.load_file(library / "sub" / "cases.yaml"))
    pick = cases["pick[dtype:float64+cpu]"]
    on_jax = pick.here("jax", "3.15.1")
    assert on_jax.expect.mismatch.outputs == (OutputKey("output"),)
    assert on_jax.expect.mismatch.reason.startswith("float64 GRUs differ on jax (")
    assert pick.here("tensorflow", "3.15.1") is pick
    assert pick.here("tf_keras", "2.21.0").startswith("no such layer there (")
    other = cases["other[cpu]"]
    assert other.here("torch", "3.9.2").expect.error == ErrorSpec("ValueError", "bad")
    assert other.here("torch", "3.15.1") is other  # the version condition no longer holds


def test_an_entry_replaces_both_expectations():
    case = schema.load_file(ROOT / "cases" / "errors" / "keras_raises.yaml")[0]
    assert case.expect.error is not None
    row = known.Row("t.yaml", 3, "differs instead", flavours=("jax",), mismatch=("all",))
    moved = dataclasses.replace(case, known=(row.known(case),)).here("jax", "3.15.1")
    assert moved.expect.error is None and isinstance(moved.expect.mismatch, MismatchSpec)
    agrees = known.Row("t.yaml", 4, "no error there", flavours=("tf_keras",), agree="tf_keras accepts it")
    plain = dataclasses.replace(case, known=(agrees.known(case),)).here("tf_keras", "2.21.0")
    assert plain.expect.error is None and plain.expect.mismatch is None  # an ordinary case there


@pytest.mark.parametrize("row, message", [
    ("  - {about: x, flavor: jax, skip: y}", "t.yaml:2: known[0].flavor: unknown key (expected one of about, "
                                              "flavour, keras, device, dtype, mode, cases, markers, mismatch, error, "
                                              "skip, agree)"),
    ("  - {flavour: jax, skip: y}", "t.yaml:2: known[0].about: is required: what differs and why, naming the "
                                     "Keras source or issue"),
    ("  - {about: x, flavour: jaxx, skip: y}", "t.yaml:2: known[0].flavour: unknown 'jaxx' (expected one of "
                                                "tensorflow, jax, torch, tf_keras)"),
    ("  - {about: x, keras: '>>3', skip: y}", "t.yaml:2: known[0].keras: must be a version specifier such as "
                                               "'>=3.2,<3.5', got '>>3'"),
    ("  - {about: x, cases: 'a=b', skip: y}", "t.yaml:2: known[0].cases: Wrong expression passed to '-k': a=b: "
                                               "at column 2: expected end of input; got ="),
    ("  - {about: x, markers: gruu, skip: y}", "t.yaml:2: known[0].markers: unknown marker(s) in '-m' expression: "
                                                "gruu (did you mean gru?); keras-equiv list --markers lists them"),
    ("  - {about: x, skip: y, mismatch: all}", "t.yaml:2: known[0]: needs exactly one of mismatch, error, skip, "
                                                "agree (got mismatch, skip)"),
    ("  - {about: x, agree: ''}", "t.yaml:2: known[0].agree: must say why Keras matches the reference there"),
    ("  - {about: x, error: ValueError}", "t.yaml:2: known[0].error: must be {type: ExceptionName, match: regex}"),
])
def test_a_bad_row_names_file_line_and_field(tmp_path, row, message):
    (tmp_path / "known.yaml").write_text("known:\n" + row + "\n")
    with pytest.raises(CaseSchemaError) as info:
        known.load_table(tmp_path / "known.yaml", display="t.yaml")
    assert str(info.value) == message


def test_every_row_of_the_bundled_table_selects_a_case():
    """A row that selects nothing (a typo in its expression) would document nothing."""
    rows = known.load_table(ROOT / "cases" / known.TABLE_NAME)
    cases = schema.load_files(schema.find_case_files([ROOT / "cases"]))
    for row in rows:
        assert any(row.selects(keywords(c)) for c in cases), f"known.yaml:{row.line} selects no bundled case"
