"""Reports from hand-made results (harness/report.py, harness/table.py): no Keras, no run.

Each expected number is worked out in the comment beside it; the comparisons are made with
compare() on arrays written here, so the report is judged on its own.
"""
from __future__ import annotations

import json

from harness.case import Case, InputSpec
from harness.compare import WorstElement, compare
from harness.report import failure_text, problem, row, summary, to_json, verdict_line, where_text, worst_table
from harness.result import CaseResult, Check, Side, Verdict
from harness.table import format_table
from harness.tolerances import Tolerance

CASE = Case(base_id="tiny", path="cases/t.yaml", line=3, about="", layer={"class": "GRU", "units": 2},
            input=InputSpec(2, 3, 2), sweep_point=(("layer.units", 2),))
TOL = Tolerance(0.1, 0.0, "case tolerance")


def failing() -> CaseResult:
    # err = |1.5 - 1.0| = 0.5 > allowed 0.1; the other element is exact
    comp = compare("output", [1.0, 1.5], [1.0, 1.0], TOL, against="expected values")
    check = Check("reference output vs expect.values", comp.passed, problem(comp), comp, Side.REFERENCE)
    return CaseResult(CASE, Verdict.FAIL, (check,), check.detail, seconds=0.25)


def test_the_id_is_built_from_structure():
    assert CASE.id == "tiny[units:2+cpu]" and CASE.point_id == "tiny[units:2]"


def test_verdict_line_names_the_output_and_the_error():
    assert verdict_line(failing()) == ("output 'output' not close to the expected values: 1 / 2 elements (50.0%); "
                                       "max abs err 0.5 > allowed (atol=0.1, rtol=0)")


def test_failure_text_says_which_side_was_judged_and_aligns_the_table():
    text = failure_text(failing())
    assert "    compared:   reference (float64) vs expected values (float64), shape (2,)" in text
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.strip().startswith("axis0"))
    assert lines[header] == "      axis0  actual  desired   abs_err   allowed"  # a flat array: no axis names
    assert lines[header + 1] == "          1     1.5        1  5.00e-01  1.00e-01"
    assert lines[-1] == "  reproduce:  keras-equiv run 'cases/t.yaml::tiny[units:2+cpu]'"


def test_row_summary_and_json():
    result = failing()
    assert row(result).startswith("FAIL  tiny[units:2+cpu]  err 5.0e-01 / tol 1.0e-01")
    skipped = CaseResult(CASE, Verdict.SKIP, message="gpu case: no GPU")
    text = summary([result, skipped], 1.0)
    assert text.splitlines()[0] == "2 cases: 1 failed, 1 skip in 1.0s"
    assert "skipped 1: gpu case: no GPU" in text
    doc = json.loads(to_json([result]))
    assert doc["cases"][0]["verdict"] == "fail" and doc["cases"][0]["worst"]["max_abs"] == 0.5


def test_verdicts_know_what_failed():
    assert [v.failed for v in Verdict] == [False, True, True, False]


def test_table_widths_follow_the_cells():
    assert format_table(("name", "n"), [("a", 1), ("long name", 22)]) == [
        "name        n", "a           1", "long name  22"]


def test_worst_table_names_the_axes_and_prints_the_digits_that_differ():
    # float64 values 1e-10 apart: 7 significant digits would print both as 1; 11 tell them apart.
    worst = [WorstElement((1, 4, 0), 1.0000000001, 1.0, 1e-10, 1e-12), WorstElement((0, 2, 3), 0.5, 0.5, 0.0, 1e-12)]
    assert worst_table(worst, "") == [
        "batch  timestep  unit        actual  desired   abs_err   allowed",
        "    1         4     0  1.0000000001        1  1.00e-10  1.00e-12",
        "    0         2     3           0.5      0.5  0.00e+00  1.00e-12"]
    assert where_text((0, 3, 1)) == "batch 0, timestep 3, unit 1"
    assert where_text((2, 1)) == "batch 2, unit 1"
