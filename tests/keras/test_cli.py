"""``keras-equiv`` through ``main(argv)`` with capsys (pyupgrade's way), on case files in tmp_path.

Few Keras runs, all on a one-unit linear SimpleRNN whose output is worked out by hand:
    kernel 0.5, recurrent_kernel 0.25, bias 0.125, x = [1, 2], linear activation
    h1 = 0.5*1 + 0.25*0     + 0.125 = 0.625
    h2 = 0.5*2 + 0.25*0.625 + 0.125 = 1.28125   (every number exact in binary)
"""
from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import main
from harness.session import gpu_available

ROOT = Path(__file__).resolve().parents[2]
TINY = """\
  - id: {id}
    about: one-unit linear SimpleRNN, hand-computed output
    layer: {{class: SimpleRNN, units: 1, activation: linear}}
    input: {{data: values, values: [[[1.0], [2.0]]]}}
    weights: {{kernel: [[0.5]], recurrent_kernel: [[0.25]], bias: [0.125]}}
    expect:
      params: 3                      # 1*(F*U + U*U + U) = 1 + 1 + 1
      values: {{output: [[{value}]]}}
"""
SHOWN = """\
  - id: shown-lstm
    layer: {class: LSTM, units: 3}
    input: {timesteps: 2, features: 2}
"""


def cases_dir(tmp_path: Path, *blocks: str) -> Path:
    """tmp_path/cases/tiny.yaml holding the given case blocks."""
    folder = tmp_path / "cases"
    folder.mkdir(exist_ok=True)
    (folder / "tiny.yaml").write_text("cases:\n" + "".join(blocks), encoding="utf-8")
    return folder / "tiny.yaml"


GOOD = TINY.format(id="tiny-right", value="1.28125")
WRONG = TINY.format(id="tiny-wrong", value="1.5")  # deliberately wrong by 0.21875


def test_run_passing_case(tmp_path, capsys):
    path = cases_dir(tmp_path, GOOD)
    assert main(["run", "-n", "0", str(path)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^\[1/1\] PASS +tiny-right\[cpu\] ", out, re.MULTILINE)
    assert re.search(r"^1 cases: 1 pass in \d+\.\ds$", out, re.MULTILINE)


def test_run_failing_case_explains_itself(tmp_path, capsys, monkeypatch):
    cases_dir(tmp_path, WRONG)
    monkeypatch.chdir(tmp_path)
    assert main(["run", "-n", "0", "cases/tiny.yaml"]) == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert re.match(r"\[1/1\] FAIL +tiny-wrong\[cpu\] ", lines[0])
    # err = 1.5 - 1.28125 = 0.21875; allowed = atol + rtol*|desired| = 1e-5 + 1e-5*1.5 = 2.5e-5
    verdict = ("output 'output' not close to the expected values: 1 / 1 elements (100.0%); "
               "max abs err 0.22 > allowed (atol=1e-05, rtol=1e-05)")
    start = lines.index(verdict)  # the failure text starts with the verdict
    report = lines[start:]
    assert "    tolerance:  atol=1e-05 rtol=1e-05 [dtype default float32]" in report
    assert "    max abs:    0.219 at batch 0, unit 0   max rel: 0.146" in report
    assert "      batch  unit   actual  desired   abs_err   allowed" in report  # widths follow the cells
    assert any(re.fullmatch(r" +0 +0 +1\.28125 +1\.5 +2\.19e-01 +2\.50e-05", line) for line in report)
    reproduce = next(line for line in report if line.startswith("  reproduce:"))
    assert reproduce == "  reproduce:  keras-equiv run 'cases/tiny.yaml::tiny-wrong[cpu]'"
    assert re.search(r"^1 cases: 1 failed in ", out, re.MULTILINE)
    # and the reproduce command does reproduce it (from the directory holding cases/)
    argv = shlex.split(reproduce.split(":", 1)[1])
    assert argv[0] == "keras-equiv" and main([*argv[1:], "-n", "0"]) == 1


def test_json_report_and_device_gpu_skip(tmp_path, capsys):
    path = cases_dir(tmp_path, GOOD, WRONG)
    out_file = tmp_path / "results.json"
    assert main(["run", "-n", "0", "-q", str(path), "--json", str(out_file)]) == 1
    rows = json.loads(out_file.read_text(encoding="utf-8"))["cases"]
    assert {r["id"]: r["verdict"] for r in rows} == {"tiny-right[cpu]": "pass", "tiny-wrong[cpu]": "fail"}
    right = rows[0]
    assert (right["dtype"], right["device"], right["worst"]["atol"]) == ("float32", "cpu", 1e-5)
    assert "PASS" not in capsys.readouterr().out  # -q: only failures get a row

    if gpu_available():
        pytest.skip("a GPU is visible; the no-GPU skip cannot be checked here")
    assert main(["run", "-n", "0", "--device", "gpu", str(path), "-k", "right"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^\[1/1\] SKIP +tiny-right\[gpu\] +gpu case: no GPU visible to Keras", out, re.MULTILINE)
    assert "1 cases: 1 skip in" in out and "skipped 1: gpu case: no GPU visible to Keras" in out


def test_list_validate_and_keyword(tmp_path, capsys):
    path = cases_dir(tmp_path, GOOD, WRONG, SHOWN)
    assert main(["list", str(path)]) == 0
    assert capsys.readouterr().out.splitlines() == ["tiny-right[cpu]", "tiny-wrong[cpu]", "shown-lstm[cpu]"]
    assert main(["validate", str(path)]) == 0
    assert capsys.readouterr().out == "ok: 3 cases\n"
    assert main(["list", "-k", "tiny- and not WRONG", str(path)]) == 0  # -k ignores case, like pytest
    assert capsys.readouterr().out == "tiny-right[cpu]\n"
    assert main(["list", "-k", "(lstm or wrong) and not right", "--device", "all", str(path)]) == 0
    assert capsys.readouterr().out.split() == ["tiny-wrong[cpu]", "tiny-wrong[gpu]", "shown-lstm[cpu]",
                                               "shown-lstm[gpu]"]
    assert main(["list", "-k", "(tiny", str(path)]) == 2
    assert capsys.readouterr().err == ("keras-equiv: error: Wrong expression passed to '-k': (tiny: at column 6: "
                                       "expected right parenthesis; got end of input\n")  # pytest's words
    assert main(["run", "-k", "nothing-matches", str(path)]) == 2  # nothing to run is a usage error
    assert "no cases selected" in capsys.readouterr().err


def test_show_prints_formula_and_weight_shapes(tmp_path, capsys, monkeypatch):
    cases_dir(tmp_path, SHOWN)
    monkeypatch.chdir(tmp_path)
    assert main(["show", "shown-lstm"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("shown-lstm[cpu]  (cases/tiny.yaml:2)\n")
    assert "  layer:     keras.layers.LSTM(units=3)\n" in out
    # LSTM, F=2, U=3: kernel (F, 4U) = (2, 12), recurrent (U, 4U) = (3, 12), bias (4U,) = (12,)
    assert '{"kernel": [2, 12], "recurrent_kernel": [3, 12], "bias": [12]}' in out
    # 4*(F*U + U*U + U) = 4*(6 + 9 + 3) = 72; output (batch 2, units 3)
    assert "  params:    4*(F*U + U*U + U) = 4*(2*3 + 3*3 + 3) = 72\n" in out
    assert '  outputs:   {"output": [2, 3]}\n' in out
    # the layout: LSTM gates [i, f, c, o], U=3 columns each (§1)
    assert ("    kernel            (2, 12)  kernel[:, 0:3] = i (input gate)   kernel[:, 3:6] = f (forget gate)   "
            "kernel[:, 6:9] = c (cell candidate)   kernel[:, 9:12] = o (output gate)\n") in out
    assert "    c_t = f * c + i * c_hat\n    h_t = o * tanh(c_t)\n" in out
    assert "  states:    [h, c] " in out
    assert main(["show", "--json", "shown-lstm"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    obj = json.loads(line)
    assert obj["id"] == "shown-lstm[cpu]" and [w["shape"] for w in obj["layer"]["cells"][0]["weights"]] == [
        [2, 12], [3, 12], [12]]


def test_unknown_id_is_a_usage_error_with_a_suggestion(tmp_path, capsys, monkeypatch):
    cases_dir(tmp_path, GOOD, SHOWN)
    monkeypatch.chdir(tmp_path)
    assert main(["run", "tiny-rigth"]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("keras-equiv: error: no case with id 'tiny-rigth' (did you mean tiny-right")
    assert "Traceback" not in captured.out + captured.err
    assert main(["show", "nope-nothing-like-it"]) == 2
    assert capsys.readouterr().err == "keras-equiv: error: no case with id 'nope-nothing-like-it'\n"
    assert main(["list", "missing.yaml"]) == 2
    assert capsys.readouterr().err == "keras-equiv: error: missing.yaml: no such case file\n"
    # pytest's path::id form names one case of one file
    assert main(["list", "cases/tiny.yaml::shown-lstm"]) == 0
    assert capsys.readouterr().out == "shown-lstm[cpu]\n"


def test_loading_listing_validating_never_import_tensorflow():
    code = (
        "import sys\n"
        "from harness import cli, schema, select\n"
        "cases = schema.load_files(schema.find_case_files(select.default_case_dirs()))\n"
        "assert cases\n"
        "cli.main(['list']); cli.main(['validate'])\n"
        "import harness.pytest_plugin\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf_keras'))\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], check=False, cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stderr.splitlines(), proc.stderr[-2000:]
