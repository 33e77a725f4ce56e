"""The JSON report, row labels, colours and the NaN headline (harness/report.py): no Keras, no run.

Results are made by hand, their checks by the real check functions (checks.py) wherever a label
depends on how a check words its detail, so the two files cannot drift apart unnoticed.
"""
from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest

from harness import __version__, checks
from harness.case import Case, ErrorSpec, Expect, InputSpec, MismatchSpec, OutputKey
from harness.compare import compare
from harness.errors import KerasRaised
from harness.report import (pass_label, plural, problem, reproduce, row, strict, summary, to_json, use_color,
                            verdict_line)
from harness.result import CaseResult, Check, Verdict
from harness.tolerances import Tolerance

TOL = Tolerance(0.1, 0.0, "case tolerance")
VERSIONS = {"keras": "3.15.1", "backend": "tensorflow", "flavour": "tensorflow"}


def case(base_id: str, **fields) -> Case:
    return Case(base_id=base_id, path="cases/t.yaml", line=3, about="", layer={"class": "GRU", "units": 2},
                input=InputSpec(2, 3, 2), **fields)


def passing(base_id: str = "ok") -> CaseResult:
    # err |1.05 - 1.0| = 0.05 of the allowed 0.1: half its allowance
    comp = compare("output", [1.0, 1.05], [1.0, 1.0], TOL)
    return CaseResult(case(base_id), Verdict.PASS, (Check("output", True, "", comp),), versions=VERSIONS)


def expected_error() -> CaseResult:
    c = case("raises", expect=Expect(error=ErrorSpec("ValueError", "cuDNN")))
    found = checks.expected_error(c, KerasRaised(ValueError("use_cudnn=True: cuDNN is not supported"), "call"))
    return CaseResult(c, Verdict.PASS, tuple(found), versions=VERSIONS)


def documented_mismatch() -> CaseResult:
    c = case("differs", expect=Expect(mismatch=MismatchSpec((OutputKey("output"),), "Keras zeroes the wrong steps")),
             tolerance={"*": {"atol": 0.1, "rtol": 0.0}})
    actual = {OutputKey("output"): np.array([0.0, 2.0], np.float32), OutputKey("h"): np.array([1.02], np.float32)}
    wanted = {OutputKey("output"): np.array([1.0, 2.0]), OutputKey("h"): np.array([1.0])}
    found = checks.outputs(c, actual, wanted, "float32")
    assert [(f.name, f.passed) for f in found] == [("output", True), ("h", True)]
    return CaseResult(c, Verdict.PASS, tuple(found), versions=VERSIONS)


def failing_nan() -> CaseResult:
    comp = compare("output", [1.0, float("nan")], [1.0, 0.5], TOL, against="expected values")
    check = Check("keras output vs expect.values", False, problem(comp), comp)
    return CaseResult(case("nan"), Verdict.FAIL, (check,), check.detail)


def test_labels_come_from_the_checks_checks_py_writes():
    assert [c.detail.split(":")[0] for c in expected_error().checks] == ["Keras raised as expected"]
    assert documented_mismatch().checks[0].detail.startswith("documented mismatch seen: ")
    assert pass_label(expected_error()) == "raised ValueError as expected"
    assert pass_label(documented_mismatch()) == "documented mismatch: output"
    assert pass_label(passing()) == "" and pass_label(failing_nan()) == ""
    # a failed expectation is no labelled pass: Keras raised, but not what the case expects
    c = case("wrong", expect=Expect(error=ErrorSpec("TypeError", "x")))
    wrong = checks.expected_error(c, KerasRaised(ValueError("x"), "call"))
    assert pass_label(CaseResult(c, Verdict.FAIL, tuple(wrong), wrong[0].detail)) == ""


def test_rows_say_how_a_pass_passed_and_align_the_ids():
    results = [passing(), expected_error(), documented_mismatch()]
    width = max(len(r.case.id) for r in results)  # "differs[cpu]", 11
    rows = [row(r, width) for r in results]
    assert rows[0] == "PASS  ok[cpu]       err 5.0e-02 / tol 1.0e-01  0.00s"
    assert rows[1] == "PASS  raises[cpu]   (raised ValueError as expected)  0.00s"
    # the error quoted is that of the outputs that had to agree (h: 0.02 of 0.1), not the mismatch
    assert rows[2] == "PASS  differs[cpu]  (documented mismatch: output)  err 2.0e-02 / tol 1.0e-01  0.00s"
    assert row(passing()) == "PASS  ok[cpu]  err 5.0e-02 / tol 1.0e-01  0.00s"  # width 0: unpadded
    text = summary(results, 1.0)
    assert text.splitlines()[0] == "3 cases: 3 pass (1 documented mismatch, 1 expected error) in 1.0s"


def test_verdicts_are_coloured_only_when_asked():
    assert row(passing(), color=True).startswith("\x1b[32mPASS\x1b[0m  ok[cpu]  ")
    assert row(failing_nan(), color=True).startswith("\x1b[31mFAIL\x1b[0m  nan[cpu]  ")
    assert "\x1b" not in row(passing())

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert use_color(Terminal(), {}) is True
    assert use_color(Terminal(), {"NO_COLOR": "1"}) is False
    assert use_color(Terminal(), {"NO_COLOR": ""}) is True  # no-color.org: set and not empty
    assert use_color(Terminal(), {"TERM": "dumb"}) is False
    assert use_color(io.StringIO(), {}) is False  # piped
    assert use_color(object(), {}) is False


def test_summary_names_the_share_of_the_allowance_used():
    text = summary([passing()], 1.0)
    assert "headroom" not in text
    assert ("largest error vs reference by dtype (passing cases; allowance used = the largest err / allowed of "
            "any element, 100% = at the limit):") in text
    # 0.05 of 0.1 -> 50%
    assert ("  float32         max abs 5.00e-02 (ok[cpu] output); allowance used 50% (ok[cpu] output); "
            "table atol=1e-05 rtol=1e-05") in text


def test_nan_headline_names_the_nan_not_a_zero_error():
    line = verdict_line(failing_nan())
    assert line == ("output 'output' not close to the expected values: NaN positions differ at 1 / 2 elements, "
                    "first at [1] (actual nan, expected values 0.5)")
    assert "max abs err 0" not in line
    # and a NaN the expectation holds but the output does not
    comp = compare("h", [0.5], [float("nan")], TOL, against="reference")
    result = CaseResult(case("nan2"), Verdict.FAIL, (Check("h", False, problem(comp), comp),), problem(comp))
    assert verdict_line(result) == ("output 'h' not close to the reference: NaN positions differ at 1 / 1 elements, "
                                    "first at [0] (actual 0.5, reference nan)")


def no_constants(name: str):
    raise AssertionError(f"not strict JSON: {name}")


def test_json_report_is_versioned_strict_and_complete():
    results = [passing(), expected_error(), documented_mismatch(), failing_nan(),
               CaseResult(case("gpu"), Verdict.SKIP, message="gpu case: no GPU visible to Keras")]
    text = to_json(results)
    doc = json.loads(text, parse_constant=no_constants)  # NaN / Infinity tokens would raise here
    assert (doc["format"], doc["format_version"], doc["harness"], doc["complete"]) == (
        "keras-equiv-report", 1, __version__, True)
    assert doc["versions"] == VERSIONS  # from the results; the skipped one recorded none
    assert doc["totals"] == {"cases": 5, "pass": 3, "fail": 1, "error": 0, "skip": 1,
                             "pass_documented_mismatch": 1, "pass_expected_error": 1}
    rows = {r["id"]: r for r in doc["cases"]}
    assert list(rows) == ["ok[cpu]", "raises[cpu]", "differs[cpu]", "nan[cpu]", "gpu[cpu]"]
    assert rows["ok[cpu]"]["worst"] == {"output": "output", "against": "reference", "max_abs": pytest.approx(0.05),
                                       "max_rel": pytest.approx(0.05), "index": [1], "max_abs_index": [1],
                                       "allowance_used": pytest.approx(0.5), "atol": 0.1, "rtol": 0.0,
                                       "source": "case tolerance"}
    # quoted: a shell would glob the brackets
    assert rows["ok[cpu]"]["reproduce"] == reproduce(results[0]) == "keras-equiv run 'cases/t.yaml::ok[cpu]'"
    assert rows["raises[cpu]"]["label"] == "raised ValueError as expected" and rows["raises[cpu]"]["worst"] is None
    assert rows["differs[cpu]"]["label"] == "documented mismatch: output"
    # a NaN where 0.5 was due: no finite error to quote, so the allowance used is written "inf"
    nan = rows["nan[cpu]"]
    assert (nan["verdict"], nan["worst"]["index"], nan["worst"]["allowance_used"]) == ("fail", [1], "inf")
    assert json.loads(to_json(results[:2], complete=False))["complete"] is False
    assert json.loads(to_json([]))["totals"]["cases"] == 0


def test_strict_writes_non_finite_numbers_as_strings():
    assert strict({"a": float("nan"), "b": (float("inf"), -math.inf), "c": np.float32(np.nan), "d": np.int64(3),
                   "e": 0.5, "f": None, 1: "x"}) == {"a": "nan", "b": ["inf", "-inf"], "c": "nan", "d": 3,
                                                    "e": 0.5, "f": None, "1": "x"}
    assert json.dumps(strict([np.float64(-np.inf)]), allow_nan=False) == '["-inf"]'


def test_plurals_in_the_summary():
    assert [plural(4, "documented mismatch"), plural(2, "expected error"), plural(1, "documented mismatch")] == [
        "4 documented mismatches", "2 expected errors", "1 documented mismatch"]
