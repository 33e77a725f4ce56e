"""The pytest plugin, run with pytester on case files written into a scratch directory.

Runs that execute cases go in-process; Keras is imported here first so pytester's sys.modules
snapshot keeps it (re-importing TensorFlow in one process fails).  Collection and xdist runs
go in subprocesses.
"""
from __future__ import annotations

import json

import pytest

# One-unit linear SimpleRNN (hand values in tests/keras/test_cli.py): output = 1.28125.
TINY = """\
cases:
  - id: tiny
    layer: {class: SimpleRNN, units: 1, activation: linear}
    input: {data: values, values: [[[1.0], [2.0]]]}
    weights: {kernel: [[0.5]], recurrent_kernel: [[0.25]], bias: [0.125]}
    sweep:
      layer.return_state: [false, true]
  - id: tiny-wrong
    layer: {class: SimpleRNN, units: 1, activation: linear}
    input: {data: values, values: [[[1.0], [2.0]]]}
    weights: {kernel: [[0.5]], recurrent_kernel: [[0.25]], bias: [0.125]}
    expect:
      values: {output: [[1.5]]}    # deliberately wrong: 1.28125 is right
"""
PLAIN = """\
cases:
  - id: {id}
    layer: {{class: GRU, units: 2}}
    input: {{timesteps: 2, features: 1}}
    devices: [cpu, gpu]
    sweep:
      layer.go_backwards: [false, true]
      input.batch: [1, 3]
"""
# Records, at the end of collection, which heavy frameworks were imported.
HEAVY_PROBE = """
import json, sys

def pytest_collection_finish(session):
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tf_keras"))
    (session.config.rootpath / "heavy.json").write_text(json.dumps(heavy))
"""
# Runs no Keras: every case "passes" at once, so an xdist run costs no TensorFlow import.
FAKE_RUN = """
import harness.runner as runner
from harness.result import CaseResult, Verdict

runner.run_case = lambda case, *args, **kwargs: CaseResult(case, Verdict.PASS)
"""


def write_cases(pytester: pytest.Pytester, **files: str) -> None:
    (pytester.path / "cases").mkdir(exist_ok=True)
    for name, text in files.items():
        (pytester.path / "cases" / f"{name}.yaml").write_text(text, encoding="utf-8")


@pytest.fixture
def keras_loaded():
    """Keras imported before pytester snapshots sys.modules: list it before pytester, or the
    snapshot drops TensorFlow and the next in-process run imports it again (which aborts)."""
    pytest.importorskip("keras")


def test_items_named_by_id_and_failure_starts_with_the_verdict(keras_loaded, pytester):
    write_cases(pytester, x=TINY)
    result = pytester.runpytest_inprocess("-v", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines([
        "cases/x.yaml::tiny[[]return_state:false+cpu[]] PASSED*",
        "cases/x.yaml::tiny[[]return_state:true+cpu[]] PASSED*",
        "cases/x.yaml::tiny-wrong[[]cpu[]] FAILED*",
    ])
    lines = result.stdout.lines
    header = next(i for i, line in enumerate(lines) if "case: tiny-wrong[cpu]" in line and line.startswith("_"))
    # 1.5 - 1.28125 = 0.21875 -> "0.22"
    assert lines[header + 1] == ("output 'output' not close to the expected values: 1 / 1 elements (100.0%); "
                                 "max abs err 0.22 > allowed (atol=1e-05, rtol=1e-05)")
    result.stdout.fnmatch_lines([
        "  reproduce:  keras-equiv run 'cases/x.yaml::tiny-wrong[[]cpu[]]'",
        "FAILED cases/x.yaml::tiny-wrong[[]cpu[]] - output 'output' not close to the exp*",
    ])
    assert "Traceback" not in result.stdout.str() and "runner.py" not in result.stdout.str()
    result.assert_outcomes(passed=2, failed=1)


def test_malformed_file_is_a_collection_error_without_traceback(pytester):
    write_cases(pytester, bad="cases:\n  - id: c1\n    layer: {class: LSTM, units: \"8\"}\n"
                              "    input: {timesteps: 1, features: 1}\n")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines([
        "*ERROR collecting cases/bad.yaml*",
        "cases/bad.yaml:3: case 'c1': layer.units: must be a positive integer, got '8'",
    ])
    out = result.stdout.str()
    assert "Traceback" not in out and "schema.py" not in out and "CaseSchemaError" not in out
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.assert_outcomes(errors=1)


def test_duplicate_ids_across_files_is_a_collection_error(pytester):
    write_cases(pytester, a=PLAIN.format(id="same"), b=PLAIN.format(id="same"))
    result = pytester.runpytest_inprocess("--collect-only", "-q", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines([
        "*ERROR collecting cases/b.yaml*",
        "cases/b.yaml:2: case 'same': id: duplicate id (first defined at cases/a.yaml:2) "
        "(expected an id unique across all case files, got 'same')",
    ])
    assert result.ret == pytest.ExitCode.INTERRUPTED


def _collect(pytester: pytest.Pytester, monkeypatch, seed: str) -> list[str]:
    monkeypatch.setenv("PYTHONHASHSEED", seed)  # set order differs between these processes
    result = pytester.runpytest_subprocess("--collect-only", "-q", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    return [line for line in result.stdout.lines if "::" in line]


def test_collection_is_deterministic_and_imports_no_tensorflow(pytester, monkeypatch):
    write_cases(pytester, a=PLAIN.format(id="alpha"), b=PLAIN.format(id="beta"))
    pytester.makeconftest(HEAVY_PROBE)
    first = _collect(pytester, monkeypatch, "1")
    assert first[:4] == ["cases/a.yaml::alpha[go_backwards:false+batch:1+cpu]",
                         "cases/a.yaml::alpha[go_backwards:false+batch:1+gpu]",
                         "cases/a.yaml::alpha[go_backwards:false+batch:3+cpu]",
                         "cases/a.yaml::alpha[go_backwards:false+batch:3+gpu]"]
    assert len(first) == 16
    assert _collect(pytester, monkeypatch, "2") == first
    assert json.loads((pytester.path / "heavy.json").read_text()) == []


def test_xdist_workers_collect_the_same_items(pytester):
    pytest.importorskip("xdist")
    write_cases(pytester, a=PLAIN.format(id="alpha"), b=PLAIN.format(id="beta"))
    pytester.makeconftest(FAKE_RUN)
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*2 workers [[]16 items[]]*"])
    result.assert_outcomes(passed=16)


def test_xdist_would_catch_ids_that_differ_between_workers(pytester):
    """The control for the test above: ids that depend on the process make xdist refuse to run."""
    pytest.importorskip("xdist")
    write_cases(pytester, a=PLAIN.format(id="alpha"))
    pytester.makeconftest(FAKE_RUN + """
import os
from harness import case

_real = case.case_id
case.case_id = lambda base_id, point, device, mode="eager": _real(base_id, point, device + str(os.getpid()), mode)
""")
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    assert "Different tests were collected between" in result.stdout.str() + result.stderr.str()
    assert result.ret != pytest.ExitCode.OK
