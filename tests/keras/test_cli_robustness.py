"""``keras-equiv`` under bad output paths, Ctrl-C, closed pipes, a bare call and empty folders.

Most tests give ``main`` a case runner of their own (no Keras: each returns a hand-made result at
once, one raises KeyboardInterrupt where Ctrl-C would land); the few that run Keras use
one-unit cases whose outcome is known (see tests/keras/test_cli.py), and the pipe and signal
tests run the real command in a subprocess.
"""
from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import __version__, cli, schema, session
from harness.cli import main
from harness.errors import UsageError
from harness.outputs import check_output_path, write_atomic
from harness.result import CaseResult, Verdict
from harness.runner import RunOptions

ROOT = Path(__file__).resolve().parents[2]
POINTS = """\
cases:
  - id: point
    layer: {class: LSTM, units: 3}
    input: {timesteps: 2, features: 2}
    sweep: {layer.units: [1, 2, 3, 4, 5]}
"""
TINY = """\
cases:
  - id: tiny
    layer: {class: SimpleRNN, units: 1, activation: linear}
    input: {data: values, values: [[[1.0], [2.0]]]}
    weights: {kernel: [[0.5]], recurrent_kernel: [[0.25]], bias: [0.125]}
    expect: {values: {output: [[1.28125]]}}
"""
# h2 = 0.5*2 + 0.25*0.625 + 0.125 = 1.28125 (tests/keras/test_cli.py); NaN was "expected" instead
NAN = TINY.replace("id: tiny", "id: tiny-nan").replace("[[1.28125]]", "[[.nan]]")
RAISES = """\
  - id: raises
    about: use_cudnn=True with reset_after=False raises ValueError on any device (cases/gru/errors.yaml)
    layer: {class: GRU, units: 3, use_cudnn: true, reset_after: false}
    input: {batch: 2, timesteps: 3, features: 4}
    requires: {keras: 3, backend: tensorflow}
    expect:
      error: {type: ValueError, match: "use_cudnn=True was specified, but cuDNN is not supported"}
"""
DIFFERS = """\
  - id: differs
    about: unroll + go_backwards + zero_output_for_mask (cases/masking/keras_differs.yaml)
    layer: {class: LSTM, units: 3, unroll: true, go_backwards: true, zero_output_for_mask: true,
            return_sequences: true, return_state: true}
    input: {batch: 3, timesteps: 5, features: 2}
    mask: {kind: right_padded, lengths: [5, 3, 1]}
    expect:
      mismatch: {outputs: [output], reason: Keras zeroes the stacked outputs with the mask in input order}
"""


def case_file(tmp_path: Path, text: str = POINTS, name: str = "points.yaml") -> Path:
    path = tmp_path / "cases" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def passing_runner(calls: list, interrupt_at: int | None = None):
    """A case runner without Keras: every case passes at once; the interrupt_at-th call is Ctrl-C."""
    def runner(case, options):
        calls.append(case.id)
        if len(calls) == interrupt_at:
            raise KeyboardInterrupt
        return CaseResult(case, Verdict.PASS, seconds=0.01, versions={"keras": "3.x", "backend": "fake"})
    return runner


# ------------------------------------------------------------------ output paths


@pytest.mark.parametrize(("make", "says"), [
    (lambda tmp: tmp / "missing" / "r.json", "folder {tmp}/missing does not exist"),
    (lambda tmp: tmp, "is a directory"),
    (lambda tmp: Path(f"{tmp}/new/"), "names a folder, not a file"),
    (lambda tmp: tmp / "cases" / "points.yaml" / "r.json", "{tmp}/cases/points.yaml is not a folder"),
])
def test_a_bad_output_path_stops_before_any_case_runs(tmp_path, capsys, make, says):
    path = case_file(tmp_path)
    bad = str(make(tmp_path)) + ("/" if "names a folder" in says else "")
    expected = says.format(tmp=tmp_path)
    for argv, flag in ((["run", str(path), "--json", bad], "--json"),
                       (["record", str(path), "--out", bad], "--out"),
                       (["verify", str(tmp_path / "nowhere.h5"), "--json", bad], "--json"),
                       (["check-model", str(tmp_path / "nowhere.keras"), "--json", bad], "--json")):
        calls = []
        assert main(argv, runner=passing_runner(calls)) == 2
        captured = capsys.readouterr()
        assert (calls, captured.out) == ([], "")  # not one case ran, not one row printed
        assert captured.err == f"keras-equiv: error: {flag} {bad}: {expected}\n"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only folders")
def test_an_unwritable_folder_is_refused(tmp_path, capsys):
    path, locked = case_file(tmp_path), tmp_path / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        assert main(["run", str(path), "--json", str(locked / "r.json")], runner=passing_runner([])) == 2
    finally:
        locked.chmod(stat.S_IRWXU)
    assert capsys.readouterr().err == (f"keras-equiv: error: --json {locked}/r.json: folder {locked} is not "
                                       "writable (Permission denied)\n")


def test_the_writability_probe_is_what_decides(tmp_path):
    """The probe really creates a file (os.access would say yes to root); any OSError it meets is the message."""
    def refuse(folder):
        raise PermissionError(13, "Permission denied")
    with pytest.raises(UsageError) as info:
        check_output_path("--json", str(tmp_path / "r.json"), probe=refuse)
    assert str(info.value) == f"--json {tmp_path}/r.json: folder {tmp_path} is not writable (Permission denied)"
    check_output_path("--json", str(tmp_path / "r.json"))  # the real probe: tmp_path is writable
    assert list(tmp_path.iterdir()) == []  # and it left nothing behind
    check_output_path("--json", "-")  # stdout
    with pytest.raises(UsageError, match="^--out -: folder . is not writable") as info:
        check_output_path("--out", "-", stdout_ok=False, probe=refuse)  # record's '-' is a file name


def test_a_failed_write_keeps_the_previous_report(tmp_path):
    report = tmp_path / "r.json"
    report.write_text("previous", encoding="utf-8")

    def half_then_disk_full(tmp):
        Path(tmp).write_text('{"cases": [', encoding="utf-8")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        write_atomic(report, half_then_disk_full)
    assert report.read_text(encoding="utf-8") == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]  # the temporary file is gone

    names = []
    write_atomic(report, lambda tmp: (names.append(tmp), Path(tmp).write_text("new", encoding="utf-8")))
    assert report.read_text(encoding="utf-8") == "new"
    assert Path(names[0]).parent == tmp_path and Path(names[0]).name.startswith(".r.json.")  # same folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]
    fresh = tmp_path / "fresh.json"
    write_atomic(fresh, lambda tmp: Path(tmp).write_text("x", encoding="utf-8"))
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~umask  # not mkstemp's private 0600


def test_json_to_stdout_leaves_stdout_valid_json(tmp_path, capsys):
    path = case_file(tmp_path)
    assert main(["run", str(path), "--json", "-"], runner=passing_runner([])) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)  # nothing but the report
    assert (doc["format"], doc["complete"], doc["totals"]["pass"]) == ("keras-equiv-report", True, 5)
    assert re.search(r"^\[1/5\] PASS  point\[units:1\+cpu\]  ", captured.err, re.MULTILINE)  # the rows: stderr
    assert re.search(r"^5 cases: 5 pass in \d+\.\ds$", captured.err, re.MULTILINE)


def test_record_out_is_written_atomically_and_kept_on_ctrl_c(tmp_path, capsys):
    path, out = case_file(tmp_path, TINY, name="tiny.yaml"), tmp_path / "golden.h5"
    assert main(["record", str(path), "--out", str(out)]) == 0  # one real case: there is something to record
    assert f"recorded 1 of 1 cases to {out}" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cases", "golden.h5"]  # no temporary file left
    before = out.read_bytes()
    calls = []
    assert main(["record", str(path), "--out", str(out), "--force"], runner=passing_runner(calls, 1)) == 130
    assert calls == ["tiny[cpu]"] and out.read_bytes() == before
    assert capsys.readouterr().err == f"\ninterrupted: 0 of 1 cases ran; nothing written to {out}\n"


# ------------------------------------------------------------------ Ctrl-C, closed pipes


def test_ctrl_c_prints_what_ran_writes_a_partial_report_and_exits_130(tmp_path, capsys):
    path, report = case_file(tmp_path), tmp_path / "r.json"
    report.write_text("previous", encoding="utf-8")
    calls = []
    assert main(["run", str(path), "--json", str(report)], runner=passing_runner(calls, interrupt_at=3)) == 130
    assert len(calls) == 3  # the third case was the one interrupted
    out = capsys.readouterr().out
    assert "[2/5] PASS  point[units:2+cpu]  " in out and "[3/5]" not in out
    assert "\ninterrupted: 2 of 5 cases ran\n" in out
    assert re.search(r"^2 cases: 2 pass in \d+\.\ds$", out, re.MULTILINE)
    doc = json.loads(report.read_text(encoding="utf-8"))
    assert doc["complete"] is False and [c["id"] for c in doc["cases"]] == ["point[units:1+cpu]",
                                                                             "point[units:2+cpu]"]
    assert doc["totals"] == {"cases": 2, "pass": 2, "fail": 0, "error": 0, "skip": 0,
                             "pass_documented_mismatch": 0, "pass_expected_error": 0}


def test_ctrl_c_injected_into_run_itself(tmp_path):
    cases = schema.load_file(case_file(tmp_path))
    report = tmp_path / "r.json"
    lines = []

    class Out:
        def write(self, text):
            lines.append(text)

        def flush(self):
            pass

    code = cli._run(cases, str(report), False, RunOptions(), runner=passing_runner([], 1), out=Out())
    assert code == 130 and "interrupted: 0 of 5 cases ran" in "".join(lines)
    assert json.loads(report.read_text(encoding="utf-8"))["cases"] == []


def test_record_interrupted_in_its_first_case_writes_nothing(tmp_path, capsys):
    def interrupted_at_once(case, options):
        raise KeyboardInterrupt
    assert main(["record", str(case_file(tmp_path)), "--out", str(tmp_path / "g.h5")],
                runner=interrupted_at_once) == 130
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cases"]
    with pytest.raises(SystemExit):  # argparse's own exits still pass through main
        main(["run", "--no-such-flag"])
    capsys.readouterr()


def test_a_closed_stdout_stops_the_run_and_keeps_the_report(tmp_path):
    """`keras-equiv run --json r.json | head`: once a row cannot be written the run stops like a Ctrl-C."""
    cases = schema.load_file(case_file(tmp_path))
    report, written = tmp_path / "r.json", []

    class ClosedAfterOneRow:
        def write(self, text):
            if len(written) == 2:  # the first row and its newline went through; the reader left
                written.append("closed")
                raise BrokenPipeError(32, "Broken pipe")
            written.append(text)

        def flush(self):
            pass

    calls = []
    code = cli._run(cases, str(report), False, RunOptions(), runner=passing_runner(calls), out=ClosedAfterOneRow())
    assert code == 130 and len(calls) == 2  # no case ran after the pipe closed
    assert written[0].startswith("[1/5] PASS  point[units:1+cpu]")
    doc = json.loads(report.read_text(encoding="utf-8"))
    assert doc["complete"] is False and len(doc["cases"]) == 2


@pytest.mark.parametrize("buffered", [True, False])
def test_list_into_head_exits_quietly(tmp_path, buffered):
    """More ids than a pipe holds, so `head -1` really closes it while keras-equiv still writes; with
    stdout buffered (as for most users) the exit's own flush must not fail again."""
    units, steps = list(range(1, 26)), list(range(1, 21))  # 8 cases of 500 points: 4000 ids, about 260 kB
    path = case_file(tmp_path, "cases:\n" + "".join(
        f"  - id: many-lstm-points-for-a-long-listing-{i}\n    layer: {{class: LSTM, units: 3}}\n"
        f"    input: {{timesteps: 2, features: 2}}\n    sweep: {{layer.units: {units}, input.timesteps: {steps}}}\n"
        for i in range(8)))
    script = f'"{sys.executable}" -m harness list "{path}" | head -1; echo "rc=${{PIPESTATUS[0]}}" >&2'
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"} if buffered else {
        **os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
                          env=env)
    assert proc.stdout == "many-lstm-points-for-a-long-listing-0[units:1+timesteps:1+cpu]\n"
    assert proc.stderr == "rc=0\n", proc.stderr[-2000:]  # no traceback, no "Exception ignored", no 141


def test_list_into_a_reader_that_left_exits_quietly(tmp_path):
    """A short listing stays in stdout's buffer until the end; the reader (`true`) is gone by then."""
    path = case_file(tmp_path)
    script = f'"{sys.executable}" -m harness list "{path}" | true; echo "rc=${{PIPESTATUS[0]}}" >&2'
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # buffered, as for most users
    proc = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
                          env=env)
    assert proc.stderr == "rc=0\n"  # not 120 with "Exception ignored in: <_io.TextIOWrapper name='<stdout>'"


def test_a_real_ctrl_c_during_a_run(tmp_path):
    """SIGINT to the real command mid-run (Keras imported, cases running): 130, the summary, a partial report."""
    path, report = case_file(tmp_path, TINY.replace("id: tiny", "id: slow").replace(
        "    expect:", "    sweep: {seed: " + str(list(range(400))) + "}\n    expect:")), tmp_path / "r.json"
    proc = subprocess.Popen([sys.executable, "-m", "harness", "run", str(path), "--json", str(report)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "CUDA_VISIBLE_DEVICES": "-1"})
    try:
        first = proc.stdout.readline()  # the first row: Keras is loaded and cases are running
        assert first.startswith("[  1/400] PASS  slow[seed:0+cpu]"), first + proc.stderr.read()[-2000:]
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err[-2000:]
    ran = int(re.search(r"^interrupted: (\d+) of 400 cases ran$", out, re.MULTILINE).group(1))
    assert 1 <= ran < 400 and re.search(rf"^{ran} cases: {ran} pass in ", out, re.MULTILINE)
    assert "Traceback" not in err and "\x1b[" not in first + out  # piped: no colours
    doc = json.loads(report.read_text(encoding="utf-8"))
    assert doc["complete"] is False and len(doc["cases"]) == ran


def _interrupt_while_keras_loads(argv: list[str]) -> subprocess.CompletedProcess:
    """Run ``keras-equiv ARGV`` in a fresh process and send it SIGINT 0.3 s in (TensorFlow takes seconds)."""
    code = f"import sys\nfrom harness import cli\nprint('ready', flush=True)\nsys.exit(cli.main({argv!r}))\n"
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "CUDA_VISIBLE_DEVICES": "-1"})
    try:
        assert proc.stdout.readline() == "ready\n"
        time.sleep(0.3)  # inside main, importing Keras (seconds)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def test_a_real_ctrl_c_while_keras_loads_outside_a_run(tmp_path):
    """SIGINT outside any loop of cases (check-model, while Keras is imported): 130 and one line, no traceback."""
    keras = session.keras()
    model = tmp_path / "m.keras"
    keras.Sequential([keras.Input((3, 2)), keras.layers.LSTM(2)]).save(model)
    proc = _interrupt_while_keras_loads(["check-model", str(model)])
    assert (proc.returncode, proc.stdout) == (130, ""), proc.stderr[-2000:]
    assert proc.stderr.splitlines()[-1] == "keras-equiv: interrupted" and "Traceback" not in proc.stderr


def test_a_real_ctrl_c_in_verify_reports_the_cases_that_ran(tmp_path, capsys):
    """verify runs its cases as run does: SIGINT while the first loads Keras is a run of 0 cases."""
    golden = tmp_path / "tiny.h5"
    assert main(["record", str(case_file(tmp_path, TINY, name="tiny.yaml")), "--out", str(golden)]) == 0
    capsys.readouterr()
    proc = _interrupt_while_keras_loads(["verify", str(golden)])
    assert proc.returncode == 130, proc.stderr[-2000:]
    assert "interrupted: 0 of 1 cases ran" in proc.stdout and "Traceback" not in proc.stderr


# ------------------------------------------------------------------ usage


def test_version_bare_call_and_help(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out == f"keras-equiv {__version__}\n"
    calls = []
    assert main([], runner=passing_runner(calls)) == 2 and calls == []  # no longer a full run
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("usage: keras-equiv [-h] [--version] COMMAND ...\n")
    assert captured.err.endswith("keras-equiv: error: a command is required (run, list, validate, show, record, "
                                 "verify, check-model, diff, schema); keras-equiv --help says more\n")
    codes = ["exit codes:", "  0    every case passed (skips allowed)", "  1    a case failed or errored",
             "  2    bad input or usage: a bad case file, an unknown id, no case files, an unusable --json/--out path",
             '  130  interrupted (Ctrl-C): the summary of what ran is printed and a --json report is still']
    for argv in (["--help"], ["run", "--help"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        help_text = capsys.readouterr().out
        assert info.value.code == 0 and all(line in help_text.splitlines() for line in codes), help_text
    assert "'-' writes the JSON to stdout and the rows and summary to stderr" in " ".join(help_text.split())


def test_a_folder_without_case_files_is_bad_input(tmp_path, capsys, monkeypatch):
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "notes.txt").write_text("no cases here", encoding="utf-8")
    for command in ("validate", "list", "run", "record"):
        extra = ["--out", str(tmp_path / "g.h5")] if command == "record" else []
        calls = []
        assert main([command, str(empty), *extra], runner=passing_runner(calls)) == 2 and calls == []
        captured = capsys.readouterr()
        assert (captured.out, captured.err) == ("", f"keras-equiv: error: {empty}: no case files (*.yaml, *.yml) "
                                                    "in this folder\n")
    (tmp_path / "cases").mkdir()  # the default ./cases, empty
    monkeypatch.chdir(tmp_path)
    assert main(["validate"]) == 2
    assert capsys.readouterr().err == "keras-equiv: error: cases: no case files (*.yaml, *.yml) in this folder\n"


# ------------------------------------------------------------------ rows and headlines from real runs


def test_rows_label_expected_errors_and_documented_mismatches(tmp_path, capsys):
    path = case_file(tmp_path, "cases:\n" + RAISES + DIFFERS + TINY.split("cases:\n", 1)[1], name="kinds.yaml")
    assert main(["run", "-n", "0", str(path)]) == 0
    out = capsys.readouterr().out
    # the ids padded to the widest of the run, "differs[cpu]" (11)
    assert re.search(r"^\[1/3\] PASS  raises\[cpu\]   \(raised ValueError as expected\)  \d+\.\d\ds$", out,
                     re.MULTILINE)
    assert re.search(r"^\[2/3\] PASS  differs\[cpu\]  \(documented mismatch: output\)  err \S+ / tol \S+  ", out,
                     re.MULTILINE)
    assert re.search(r"^\[3/3\] PASS  tiny\[cpu\]     err ", out, re.MULTILINE)
    assert re.search(r"^3 cases: 3 pass \(1 documented mismatch, 1 expected error\) in ", out, re.MULTILINE)
    assert "\x1b[" not in out  # not a terminal


def test_a_nan_failure_says_nan(tmp_path, capsys):
    path = case_file(tmp_path, NAN, name="nan.yaml")
    report = tmp_path / "r.json"
    assert main(["run", "-n", "0", str(path), "--json", str(report)]) == 1
    out = capsys.readouterr().out
    assert ("output 'output' not close to the expected values: NaN positions differ at 1 / 1 elements, first at "
            "[0, 0] (actual 1.28125, expected values nan)") in out.splitlines()
    assert "max abs err 0" not in out
    doc = json.loads(report.read_text(encoding="utf-8"), parse_constant=lambda name: pytest.fail(name))
    assert doc["cases"][0]["worst"]["allowance_used"] == "inf"
