"""keras-equiv diff (harness/diff.py): what moved between two --json reports, with no Keras."""
from __future__ import annotations

import json

import pytest

from harness import cli
from harness.diff import Row, compare_reports


def case(case_id, verdict, used=None, label=""):
    worst = None if used is None else {"allowance_used": used}
    return {"id": case_id, "verdict": verdict, "label": label, "worst": worst}


def report(*cases, keras="3.15.1"):
    return {"format": "keras-equiv-report", "format_version": 1, "versions": {"keras": keras}, "cases": list(cases)}


BEFORE = [case("a[cpu]", "pass", 0.1), case("b[cpu]", "pass", 0.1), case("c[cpu]", "fail", 3.0),
          case("d[cpu]", "pass", 0.1), case("gone[cpu]", "skip")]
AFTER = [case("a[cpu]", "pass", 0.15), case("b[cpu]", "pass", 0.5), case("c[cpu]", "pass", 0.2),
         case("d[cpu]", "pass", 0.1, "documented mismatch"), case("new[cpu]", "error")]


def test_verdicts_large_moves_and_cases_in_one_run_only():
    rows = compare_reports({c["id"]: c for c in BEFORE}, {c["id"]: c for c in AFTER})
    assert rows == [  # a moved 1.5x (within 2x): not listed
        Row("b[cpu]", "pass, worst 0.1", "pass, worst 0.5", "worst error moved more than 2x"),
        Row("c[cpu]", "fail, worst 3", "pass, worst 0.2", "verdict changed"),
        Row("d[cpu]", "pass, worst 0.1", "pass (documented mismatch), worst 0.1", "passes another way"),
        Row("gone[cpu]", "skip", "-", "only in the first run"),
        Row("new[cpu]", "-", "error", "only in the second run")]


def test_the_command_exits_1_when_a_verdict_changed(tmp_path, capsys):
    first, second, same = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.json"
    first.write_text(json.dumps(report(*BEFORE)))
    second.write_text(json.dumps(report(*AFTER, keras="3.3.3")))
    same.write_text(json.dumps(report(*BEFORE)))
    assert cli.main(["diff", str(first), str(second)]) == 1
    out = capsys.readouterr().out
    assert "keras=3.3.3" in out and "5 cases moved (4 with another verdict or in one run only)" in out
    assert cli.main(["diff", str(first), str(same)]) == 0
    assert "no case moved" in capsys.readouterr().out


@pytest.mark.parametrize("text, message", [
    ("not json", "not JSON"), ('{"cases": []}', 'not a keras-equiv --json report')])
def test_a_file_that_is_no_report_is_exit_2(tmp_path, capsys, text, message):
    (tmp_path / "x.json").write_text(text)
    (tmp_path / "y.json").write_text(json.dumps(report()))
    assert cli.main(["diff", str(tmp_path / "x.json"), str(tmp_path / "y.json")]) == 2
    assert message in capsys.readouterr().err
