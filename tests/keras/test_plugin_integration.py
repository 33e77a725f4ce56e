"""The pytest plugin as a guest in other projects and as a source of results (issue 10).

Which files it claims, its namespaced options and their aliases, junit properties, --tb styles,
the end-of-run summary (with and without xdist) and the per-case time limit.  Runs that execute
real cases go in-process (Keras imported first, as in test_plugin.py); runs that time out, send
signals or use xdist go in subprocesses with a faked runner, so they import no TensorFlow.
"""
from __future__ import annotations

import signal
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness import pytest_files, pytest_items, report, schema
from harness.errors import CaseOverrun
from harness.select import with_device

from test_plugin import PLAIN, TINY, write_cases

# A case file with the top-level 'cases:' key: what the plugin claims.
REAL = PLAIN.format(id="real")  # 8 items
FOREIGN_CONFIG = "name: some other project\nsettings:\n  cases_dir: tests/cases\n  retries: 3\n"
MKDOCS = ("site_name: docs\nmarkdown_extensions:\n  - pymdownx.superfences:\n      custom_fences:\n"
          "        - name: mermaid\n          format: !!python/name:pymdownx.superfences.fence_code_format\n")

# Results without Keras: a real Comparison per case, errors that differ per case, one skip reason.
FAKE_RESULTS = """
import numpy as np
import harness.runner as runner
from harness.compare import compare
from harness.result import CaseResult, Check, Verdict
from harness.tolerances import Tolerance

ERRORS = {"alpha": 2e-6, "beta": 3e-6, "half": 1e-3}


def fake_run_case(case, *args, **kwargs):
    if case.base_id == "skipped":
        return CaseResult(case, Verdict.SKIP, message="not on this machine", seconds=0.25)
    err = ERRORS[case.base_id] * (1 + 0.1 * case.input.batch) * (1.5 if case.device == "gpu" else 1.0)
    allowed = 5e-3 if case.dtype == "float16" else 1e-5
    tol = Tolerance(allowed, allowed, "dtype default " + case.dtype)
    comp = compare("output", np.array([1.0 + err]), np.array([1.0]), tol, "reference")
    verdict = Verdict.PASS if comp.passed else Verdict.FAIL
    return CaseResult(case, verdict, (Check("output", comp.passed, "fake", comp),), seconds=0.25,
                      device=case.device, kernel="generic",
                      versions={"keras": "3.0.0", "backend": "tensorflow", "flavour": "tensorflow"})


runner.run_case = fake_run_case
"""
HALF = """\
cases:
  - id: half
    layer: {class: LSTM, units: 2}
    input: {timesteps: 2, features: 1}
    dtype: float16
  - id: skipped
    layer: {class: LSTM, units: 2}
    input: {timesteps: 2, features: 1}
"""
# Fails every case: a check without a comparison (verdict line "output: planted").
FAKE_FAIL = """
import harness.runner as runner
from harness.result import CaseResult, Check, Verdict

runner.run_case = lambda case, *a, **k: CaseResult(case, Verdict.FAIL, (Check("output", False, "planted"),), "planted")
"""
# Case "hang" sleeps for a minute; case "ctrl-c" sends this process a SIGINT (a user's Ctrl-C).
FAKE_SLOW = """
import os, signal, time
import harness.runner as runner
from harness.result import CaseResult, Verdict


def fake_run_case(case, *args, **kwargs):
    if case.base_id == "hang":
        time.sleep(60)
    if case.base_id == "ctrl-c":
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)
    return CaseResult(case, Verdict.PASS)


runner.run_case = fake_run_case
"""
SLOW_CASES = """\
cases:
  - id: hang
    layer: {class: GRU, units: 1}
    input: {timesteps: 1, features: 1}
  - id: quick
    layer: {class: GRU, units: 1}
    input: {timesteps: 1, features: 1}
"""
CTRL_C_CASES = SLOW_CASES.replace("id: hang", "id: ctrl-c")


@pytest.fixture
def keras_loaded():
    """Keras (and TensorFlow) imported before pytester snapshots sys.modules: list it first, so
    that the snapshot keeps them (importing TensorFlow twice in one process aborts)."""
    pytest.importorskip("keras")


def _items(result) -> list[str]:
    return [line for line in result.stdout.lines if "::" in line]


def _write(pytester: pytest.Pytester, rel: str, text: str) -> Path:
    path = pytester.path / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- which files are case files

def test_foreign_yaml_is_left_alone_and_case_files_are_collected(pytester):
    _write(pytester, "tests/cases/config.yaml", FOREIGN_CONFIG)  # under a "cases" dir, no cases: key
    _write(pytester, "tests/cases/data.yaml", "cases: [1, 2, 3]\n")  # a cases: key, outside keras_equiv_paths
    _write(pytester, "mkdocs.yml", MKDOCS)
    _write(pytester, "cases/list.yaml", "- a\n- b\n")  # matches the patterns, but a list
    _write(pytester, "cases/nested.yaml", "meta:\n  cases: 3\n")  # cases: only below the top level
    _write(pytester, "cases/broken.yaml", "key: [unclosed\n  other: {\n")  # not YAML, no cases: line
    _write(pytester, "cases/empty.yml", "")
    _write(pytester, "cases/binary.yaml", "").write_bytes(b"\xff\xfe\x00cases:\x00")
    _write(pytester, "cases/real.yaml", REAL)
    result = pytester.runpytest_inprocess("--collect-only", "-q", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert len(_items(result)) == 8 and all(item.startswith("cases/real.yaml::") for item in _items(result))
    assert "error" not in result.stdout.str().lower()


def test_a_claimed_file_with_invalid_content_is_still_a_schema_error(pytester):
    write_cases(pytester, units="cases:\n  - id: c1\n    layer: {class: LSTM, units: \"8\"}\n"
                                "    input: {timesteps: 1, features: 1}\n",
                syntax="about: [unclosed\ncases:\n  - id: c2\n")  # a YAML error before the cases: key
    result = pytester.runpytest_inprocess("--collect-only", "-q", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines([
        "*ERROR collecting cases/syntax.yaml*",
        "cases/syntax.yaml:*: invalid YAML: *",
        "*ERROR collecting cases/units.yaml*",
        "cases/units.yaml:3: case 'c1': layer.units: must be a positive integer, got '8'",
    ])
    assert result.ret == pytest.ExitCode.INTERRUPTED


def test_keras_equiv_paths_chooses_where_case_files_are(pytester):
    _write(pytester, "suites/lstm/a.yaml", PLAIN.format(id="in-suites"))
    _write(pytester, "cases/b.yaml", PLAIN.format(id="in-cases"))
    _write(pytester, "elsewhere/c.yaml", PLAIN.format(id="named"))
    pytester.makeini("[pytest]\nkeras_equiv_paths = suites/**/*.yaml\n")
    items = _items(pytester.runpytest_inprocess("--collect-only", "-q", "-p", "no:cacheprovider"))
    assert len(items) == 8 and all(i.startswith("suites/lstm/a.yaml::in-suites[") for i in items)
    # A file named on the command line needs only the cases: key.
    named = pytester.runpytest_inprocess("--collect-only", "-q", "-p", "no:cacheprovider", "elsewhere/c.yaml")
    assert len(_items(named)) == 8 and all(i.startswith("elsewhere/c.yaml::named[") for i in _items(named))
    foreign = pytester.runpytest_inprocess("--collect-only", "-q", "-p", "no:cacheprovider",
                                           str(_write(pytester, "elsewhere/d.yaml", FOREIGN_CONFIG)))
    # ... and one without it is left alone: pytest's own "not found", as for any file nobody collects
    assert foreign.ret == pytest.ExitCode.USAGE_ERROR and "Traceback" not in foreign.stderr.str()
    foreign.stderr.fnmatch_lines(["ERROR: not found: */elsewhere/d.yaml"])


def test_patterns_are_matched_relative_to_the_rootdir_not_the_absolute_path(pytester):
    """A project that itself lives under a directory named cases/ keeps its own YAML."""
    project = pytester.mkdir("cases") / "project"
    (project / "tests").mkdir(parents=True)
    (project / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    (project / "tests" / "settings.yaml").write_text("cases: [a, b]\n", encoding="utf-8")
    (project / "tests" / "test_ok.py").write_text("def test_ok():\n    pass\n", encoding="utf-8")
    result = pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider", str(project))
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize("pattern, path, matches", [
    ("cases/**/*.yaml", "cases/x.yaml", True),
    ("cases/**/*.yaml", "cases/a/b/x.yaml", True),
    ("cases/**/*.yaml", "tests/cases/x.yaml", False),
    ("cases/**/*.yaml", "cases/x.yml", False),
    ("cases/**/*.yaml", "cases.yaml", False),
    ("cases/*.yaml", "cases/a/x.yaml", False),
    ("**/*.yml", "mkdocs.yml", True),
    ("cases/?.yaml", "cases/a.yaml", True),
    ("cases/[!_]*.yaml", "cases/_private.yaml", False),
    ("cases/[!_]*.yaml", "cases/public.yaml", True),
    ("cases/**", "cases/a/b", True),
    ("a+b/(x).yaml", "a+b/(x).yaml", True),
])
def test_glob_patterns(pattern, path, matches):
    assert bool(pytest_files.glob_regex(pattern).fullmatch(path)) is matches


@pytest.mark.parametrize("text, claimed", [
    ("cases:\n  - id: a\n", True),
    ("about: x\ncases: []\n", True),
    ("{cases: []}\n", True),
    ("'cases': 1\n", True),
    ("meta:\n  cases: 1\n", False),
    ("name: cases\n", False),
    ("- cases\n", False),
    ("cases\n", False),
    ("? [a, b]\n: cases\nx: 1\n", False),
    ("a: !!python/name:os.system\n", False),
    ("x: 1\n---\ncases: []\n", False),
    ("x: [unclosed\n", False),
    ("x: [unclosed\ncases:\n", True),
    ("", False),
])
def test_top_level_cases_key(tmp_path, text, claimed):
    path = tmp_path / "f.yaml"
    path.write_text(text, encoding="utf-8")
    assert pytest_files.has_cases_key(path) is claimed


# ---------------------------------------------------------------- options

def test_long_names_and_short_aliases_set_the_same_options(pytester):
    write_cases(pytester, a=REAL)
    for args in (["--device", "gpu"], ["--keras-equiv-device", "gpu"]):
        items = _items(pytester.runpytest_inprocess("--collect-only", "-q", "-p", "no:cacheprovider", *args))
        assert len(items) == 4 and all(i.endswith("+gpu]") for i in items), args
    bad = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--device", "cuda")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*argument --keras-equiv-device/--device: invalid choice: 'cuda' "
                              "(choose from 'cpu', 'gpu', 'all')"])


def test_keras_and_gpu_aliases_still_work(pytester):
    """What .ci/run, tox.ini and the README type: --keras F, --require-gpu, --tf32 (collection only)."""
    write_cases(pytester, a=REAL)
    for args in (["--keras", "tensorflow", "--require-gpu", "--tf32"],
                 ["--keras-equiv-keras", "tensorflow", "--keras-equiv-require-gpu", "--keras-equiv-tf32"]):
        result = pytester.runpytest_subprocess("--collect-only", "-q", "-p", "no:cacheprovider", *args)
        assert result.ret == pytest.ExitCode.OK and len(_items(result)) == 8, result.stderr.str()
    bad = pytester.runpytest_subprocess("--collect-only", "-p", "no:cacheprovider", "--keras", "pytorch")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*argument --keras-equiv-keras/--keras: invalid choice: 'pytorch' "
                              "(choose from 'tensorflow', 'jax', 'torch', 'tf_keras')"])


CLASHING_CONFTEST = """
def pytest_addoption(parser):
    parser.addoption("--device", default="cuda")            # no dest: pytest derives "device"
    parser.addoption("--keras", action="store_true")


def pytest_configure(config):
    with open("project.txt", "w") as f:
        f.write(f"device={config.getoption('device')} keras={config.getoption('keras')}")
"""


def test_a_conftest_may_define_the_short_names_itself(pytester):
    write_cases(pytester, a=REAL)
    pytester.makeconftest(CLASHING_CONFTEST)
    result = pytester.runpytest_inprocess("--collect-only", "-q", "-p", "no:cacheprovider",
                                          "--device", "mps", "--keras")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str() + result.stderr.str()
    assert (pytester.path / "project.txt").read_text() == "device=mps keras=True"
    assert len(_items(result)) == 8  # the project's --device did not move the cases
    ours = pytester.runpytest_inprocess("--collect-only", "-q", "-p", "no:cacheprovider", "--keras-equiv-device", "gpu")
    assert (pytester.path / "project.txt").read_text() == "device=cuda keras=False"
    assert len(_items(ours)) == 4 and all(i.endswith("+gpu]") for i in _items(ours))
    bad = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--keras-equiv-device", "mps")
    bad.stderr.fnmatch_lines(["*argument --keras-equiv-device: invalid choice: 'mps' (choose from*"])


def test_a_plugin_loaded_first_keeps_its_short_name(pytester):
    pytester.makepyfile(other_plugin="def pytest_addoption(parser):\n"
                                     "    parser.addoption('--tf32', dest='other_tf32', default='on')\n")
    pytester.syspathinsert()
    write_cases(pytester, a=REAL)
    result = pytester.runpytest_inprocess("--collect-only", "-q", "-p", "no:cacheprovider", "-p", "other_plugin",
                                          "--tf32", "off", "--keras-equiv-tf32")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str() + result.stderr.str()
    assert len(_items(result)) == 8


# ---------------------------------------------------------------- junit properties

def _properties(xml_path: Path) -> dict[str, dict[str, str]]:
    root = ET.parse(xml_path).getroot()
    return {tc.get("name"): {p.get("name"): p.get("value") for p in tc.iter("property")}
            for tc in root.iter("testcase")}


def test_junit_properties_of_real_cases(keras_loaded, pytester):
    write_cases(pytester, x=TINY)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--junitxml=out.xml")
    result.assert_outcomes(passed=2, failed=1)
    props = _properties(pytester.path / "out.xml")
    wrong = next(p for name, p in props.items() if name.startswith("tiny-wrong"))
    assert wrong["verdict"] == "fail"
    assert (wrong["worst_output"], wrong["worst_against"]) == ("output", "expected values")
    assert float(wrong["worst_max_abs"]) == pytest.approx(1.5 - 1.28125)
    assert float(wrong["worst_allowance_used"]) > 1
    assert (wrong["atol"], wrong["rtol"], wrong["tolerance_source"]) == ("1e-05", "1e-05", "dtype default float32")
    assert (wrong["dtype"], wrong["device"], wrong["kernel"]) == ("float32", "cpu", "generic")
    assert wrong["flavour"] == "tensorflow" and wrong["versions"].startswith("keras=3.")
    passed = next(p for name, p in props.items() if name == "tiny[return_state:false+cpu]")
    assert passed["verdict"] == "pass" and float(passed["worst_allowance_used"]) <= 1
    assert all(pytest_items.REPORT_ATTR not in p for p in props.values())


def test_junit_properties_survive_xdist(pytester):
    pytest.importorskip("xdist")
    write_cases(pytester, a=PLAIN.format(id="alpha"), h=HALF)
    pytester.makeconftest(FAKE_RESULTS)
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider", "--junitxml=out.xml")
    result.assert_outcomes(passed=9, skipped=1)
    props = _properties(pytester.path / "out.xml")
    assert len(props) == 10
    half = next(p for name, p in props.items() if name.startswith("half"))
    assert half["tolerance_source"] == "dtype default float16" and half["dtype"] == "float16"
    assert next(p for name, p in props.items() if name.startswith("skipped"))["verdict"] == "skip"


# ---------------------------------------------------------------- --tb styles

def test_tb_line_and_short(keras_loaded, pytester):
    write_cases(pytester, x=TINY)
    verdict = ("output 'output' not close to the expected values: 1 / 1 elements (100.0%); "
               "max abs err 0.22 > allowed (atol=1e-05, rtol=1e-05)")
    line = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--tb=line")
    assert line.stdout.lines.count(f"cases/x.yaml:8: {verdict}") == 1, line.stdout.str()
    assert "reproduce:" not in line.stdout.str() and "case:       " not in line.stdout.str()
    short = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--tb=short")
    short.stdout.fnmatch_lines([verdict, "  reproduce:  keras-equiv run 'cases/x.yaml::tiny-wrong[[]cpu[]]'"])
    assert "compared:" not in short.stdout.str() and "  case:       " not in short.stdout.str()
    full = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    full.stdout.fnmatch_lines([verdict, "  case:       cases/x.yaml:8 tiny-wrong[[]cpu[]]", "*compared:*",
                               "  reproduce:  keras-equiv run 'cases/x.yaml::tiny-wrong[[]cpu[]]'"])


def test_tb_line_under_xdist(pytester):
    pytest.importorskip("xdist")
    write_cases(pytester, a=PLAIN.format(id="alpha"))
    pytester.makeconftest(FAKE_FAIL)
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider", "--tb=line")
    result.assert_outcomes(failed=8)
    assert result.stdout.lines.count("cases/a.yaml:2: output: planted") == 8, result.stdout.str()
    assert "reproduce:" not in result.stdout.str()


# ---------------------------------------------------------------- the end-of-run summary

def _summary_section(result) -> list[str]:
    lines = result.stdout.lines
    start = next(i for i, line in enumerate(lines) if line.startswith("-") and " keras-equiv " in line)
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("="))
    return lines[start + 1:end]


def _expected_summary(pytester) -> list[str]:
    """report.summary of the same fake results, computed here: what the plugin must print."""
    namespace: dict = {}
    exec(FAKE_RESULTS.replace("runner.run_case = fake_run_case", ""), namespace)
    results = []
    for path in sorted((pytester.path / "cases").glob("*.yaml")):
        display = f"cases/{path.name}"
        for case in with_device(schema.load_file(path, display=display), None):
            results.append((f"{display}::{case.id}", namespace["fake_run_case"](case)))
    ordered = [r for _, r in sorted(results, key=lambda x: x[0])]
    return report.summary(ordered, sum(r.seconds for r in ordered)).splitlines()


def test_summary_at_the_end_with_and_without_xdist(pytester):
    pytest.importorskip("xdist")
    write_cases(pytester, a=PLAIN.format(id="alpha"), b=PLAIN.format(id="beta"), h=HALF)
    pytester.makeconftest(FAKE_RESULTS)
    plain = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    plain.assert_outcomes(passed=17, skipped=1)
    expected = _expected_summary(pytester)
    assert expected[0].startswith("18 cases: ") and "4.5s" in expected[0] and "largest error" in expected[1]
    assert any("float16" in line for line in expected) and expected[-1] == "skipped 1: not on this machine"
    assert _summary_section(plain) == expected
    spread = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    spread.assert_outcomes(passed=17, skipped=1)
    assert _summary_section(spread) == expected


def test_no_summary_without_cases(pytester):
    pytester.makepyfile(test_ok="def test_ok():\n    pass\n")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert " keras-equiv " not in result.stdout.str()


# ---------------------------------------------------------------- per-case time limit

def test_a_hung_case_fails_at_its_limit_and_the_run_goes_on(pytester):
    write_cases(pytester, s=SLOW_CASES)
    pytester.makeconftest(FAKE_SLOW)
    start = time.monotonic()
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--keras-equiv-timeout", "0.5")
    assert time.monotonic() - start < 30
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "hang[[]cpu[]]: error: case exceeded its 0.5 s limit",
        "*message:    case exceeded its 0.5 s limit",
        "*stopped in (innermost last):",
        "*time.sleep(60)",
        "FAILED cases/s.yaml::hang[[]cpu[]] - hang[[]cpu[]]: error: case exceeded its 0.5 s limit",
    ])


def test_the_limit_from_the_ini_option_under_xdist(pytester):
    pytest.importorskip("xdist")
    write_cases(pytester, s=SLOW_CASES)
    pytester.makeconftest(FAKE_SLOW)
    pytester.makeini("[pytest]\nkeras_equiv_timeout = 1\n")
    start = time.monotonic()
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    assert time.monotonic() - start < 30
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["FAILED cases/s.yaml::hang[[]cpu[]] - hang[[]cpu[]]: error: case exceeded its 1 s limit"])


def test_ctrl_c_during_a_limited_case_still_interrupts_the_run(pytester):
    write_cases(pytester, s=CTRL_C_CASES)
    pytester.makeconftest(FAKE_SLOW)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--keras-equiv-timeout", "30")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert "KeyboardInterrupt" in result.stdout.str() and "exceeded" not in result.stdout.str()


@pytest.mark.parametrize("args, ini, message", [
    (["--keras-equiv-timeout", "-1"], "", "--keras-equiv-timeout: expected a number of seconds >= 0 (0: no limit), "
                                          "got -1.0"),
    ([], "keras_equiv_timeout = soon", "ini option keras_equiv_timeout: expected a number of seconds >= 0 "
                                       "(0: no limit), got 'soon'"),
])
def test_a_bad_limit_is_a_usage_error(pytester, args, ini, message):
    pytester.makeini(f"[pytest]\n{ini}\n")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}"])


def test_watchdog_leaves_the_previous_handler_in_place():
    before = signal.getsignal(signal.SIGINT)
    with pytest_items.Watchdog(30):
        assert signal.getsignal(signal.SIGINT) != before
    assert signal.getsignal(signal.SIGINT) == before
    with pytest.raises(CaseOverrun), pytest_items.Watchdog(0.05):
        time.sleep(5)
    assert signal.getsignal(signal.SIGINT) == before
