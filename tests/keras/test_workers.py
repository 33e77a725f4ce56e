"""Cases in worker processes (harness/workers.py): a case that kills its process or overruns its
limit is that case's error, and the others still run.  The workers run a fake case function (no
Keras): a planted segfault, a planted hang, and a pass; the last test runs real cases, in workers
and in this process, and compares their reports."""
from __future__ import annotations

import atexit
import json
import os
import signal
import time
from pathlib import Path

from harness import schema
from harness.cli import main
from harness.result import CaseResult, Verdict
from harness.runner import RunOptions
from harness.workers import Pool

ROOT = Path(__file__).resolve().parents[2]

CASES = "cases:\n" + "".join(
    f"  - id: {name}\n    layer: {{class: SimpleRNN, units: 1}}\n    input: {{batch: 1, timesteps: 1, features: 1}}\n"
    for name in ("fine-one", "segfault", "hang", "fine-two", "fine-three"))


def fake_run(case, options):
    """Runs in a worker: crashes, hangs or passes by the case's id."""
    if case.base_id == "segfault":
        os.kill(os.getpid(), signal.SIGSEGV)
    if case.base_id == "hang":
        time.sleep(600)
    return CaseResult(case, Verdict.PASS, message=f"ran in {os.getpid()}")


def test_a_crash_and_a_hang_are_their_cases_errors_and_the_run_goes_on(tmp_path: Path):
    (tmp_path / "c.yaml").write_text(CASES)
    cases = schema.load_file(tmp_path / "c.yaml")
    start = time.monotonic()
    with Pool(2, fake_run, RunOptions(), timeout=3.0) as pool:
        results = dict(pool.results(cases))
    assert time.monotonic() - start < 60
    assert sorted(results) == [0, 1, 2, 3, 4]
    verdicts = {cases[i].base_id: r.verdict for i, r in results.items()}
    assert verdicts == {"fine-one": Verdict.PASS, "segfault": Verdict.ERROR, "hang": Verdict.ERROR,
                        "fine-two": Verdict.PASS, "fine-three": Verdict.PASS}
    assert results[1].message.startswith("the worker process running the case died (killed by signal SIGSEGV)")
    assert results[2].message.startswith("case exceeded its 3 s limit (--timeout)")
    assert {r.message for i, r in results.items() if i in (0, 3, 4)} != {f"ran in {os.getpid()}"}  # not here


def test_a_worker_lost_with_the_last_case_is_not_replaced(tmp_path: Path):
    """No case is left for a new worker: it would import Keras for nothing, so none is started."""
    (tmp_path / "c.yaml").write_text(CASES)
    fine, segfault = schema.load_file(tmp_path / "c.yaml")[:2]
    with Pool(1, fake_run, RunOptions()) as pool:
        results = dict(pool.results([fine, segfault]))
        assert [results[0].verdict, results[1].verdict] == [Verdict.PASS, Verdict.ERROR]
        assert pool.workers == []


def slow_warm_up():
    """Runs in a worker before its first case: as slow as an import of TensorFlow, and leaves a mark."""
    time.sleep(3)
    os.environ["WARMED_UP"] = str(os.getpid())


def reports_its_warm_up(case, options):
    return CaseResult(case, Verdict.PASS, message=f"warmed up: {os.environ.get('WARMED_UP') == str(os.getpid())}")


def test_each_worker_warms_up_first_and_the_timeout_counts_only_the_case(tmp_path: Path):
    """warm (session.keras in the CLI) runs in each worker before its first case, while the caller
    still loads cases; a --timeout shorter than the warm-up stops no case."""
    (tmp_path / "c.yaml").write_text(CASES)
    cases = [c for c in schema.load_file(tmp_path / "c.yaml") if c.base_id.startswith("fine")]
    with Pool(2, reports_its_warm_up, RunOptions(), timeout=2.0, warm=slow_warm_up) as pool:
        results = dict(pool.results(cases))
    assert [results[i].message for i in range(3)] == ["warmed up: True"] * 3


def test_with_fewer_cases_than_workers_the_others_are_stopped_before_the_cases_run(tmp_path: Path):
    """-n 3 for one case: two workers would import Keras for nothing, competing with the one that
    runs it; they are killed as soon as the cases are known."""
    (tmp_path / "c.yaml").write_text(CASES)
    case = schema.load_file(tmp_path / "c.yaml")[0]
    with Pool(3, reports_its_warm_up, RunOptions(), warm=slow_warm_up) as pool:
        processes = [w.process for w in pool.workers]
        results = pool.results([case])
        index, result = next(results)
        assert [p.exitcode for p in processes[1:]] == [-signal.SIGKILL] * 2  # before the case's result came
        assert (index, result.message) == (0, "warmed up: True") and list(results) == []
        assert [w.process for w in pool.workers] == processes[:1]


def endless_warm_up():
    time.sleep(600)


def test_a_worker_still_warming_up_is_stopped_at_once_when_no_case_comes():
    """No case selected (or a bad case file) while the workers import Keras: they are killed, not
    waited for (a polite stop would wait its 5 s join first)."""
    start = time.monotonic()
    with Pool(1, fake_run, RunOptions(), warm=endless_warm_up) as pool:
        process = pool.workers[0].process
    assert process.exitcode == -signal.SIGKILL and time.monotonic() - start < 4


def slow_to_exit():
    """Runs in a worker before its first case: its interpreter's exit then takes 1.5 s (as TensorFlow's
    teardown takes a fraction of a second)."""
    atexit.register(time.sleep, 1.5)


def test_at_the_end_the_workers_are_told_to_stop_together_and_exit_by_themselves(tmp_path: Path):
    (tmp_path / "c.yaml").write_text(CASES)
    cases = [c for c in schema.load_file(tmp_path / "c.yaml") if c.base_id.startswith("fine")]
    with Pool(2, reports_its_warm_up, RunOptions(), warm=slow_to_exit) as pool:
        results = dict(pool.results(cases))
        processes = [w.process for w in pool.workers]
        start = time.monotonic()
    stopping = time.monotonic() - start
    assert sorted(results) == [0, 1, 2]
    assert [p.exitcode for p in processes] == [0, 0]  # stopped politely, not killed
    assert 1.5 <= stopping < 2.7, f"{stopping:.2f} s: one after the other takes 3 s"


def test_the_timeout_needs_worker_processes(tmp_path, capsys):
    (tmp_path / "c.yaml").write_text(CASES)
    assert main(["run", str(tmp_path / "c.yaml"), "-n", "0", "--timeout", "5"]) == 2
    assert capsys.readouterr().err == ("keras-equiv: error: --timeout needs worker processes (-n 1 or more): "
                                       "a case in this process cannot be stopped\n")


# Real cases of each verdict, run on the CPU: passes (seed-input-output-lstm), expected errors on every
# flavour (error-initial-state-*), documented mismatches where the flavour has them (tensorflow, tf_keras;
# torch raises there instead), and a failure (a wrong expect.params, in WRONG).
FILES = ["cases/seeds/input_output_lstm.yaml", "cases/errors/stateful_and_states.yaml",
         "cases/masking/keras_differs.yaml"]
IDS = ["seed-input-output-lstm", "error-initial-state-wrong-units", "error-initial-state-wrong-batch",
       "error-initial-state-missing-c", "mask-unroll-go-backwards-zero-output", "wrong-params"]
WRONG = ("cases:\n  - id: wrong-params\n    layer: {class: LSTM, units: 2}\n"
         "    input: {batch: 2, timesteps: 3, features: 2}\n    expect: {params: 1}\n")


def _report_without_times(path: Path) -> dict:
    doc = json.loads(path.read_text(encoding="utf-8"))
    for case in doc["cases"]:
        case.pop("seconds")
    return doc


def test_a_run_in_worker_processes_reports_what_a_run_in_this_process_reports(tmp_path: Path, capsys):
    """``run -n 2`` (results arriving out of order, from processes that send back no arrays) writes the
    JSON report ``-n 0`` writes: the same cases in the same order, verdicts, numbers and messages."""
    (tmp_path / "wrong.yaml").write_text(WRONG)
    argv = ["run", "-q", "--device", "cpu", *(str(ROOT / f) for f in FILES), str(tmp_path / "wrong.yaml"), *IDS]
    assert main([*argv, "-n", "0", "--json", str(tmp_path / "here.json")]) == 1
    assert main([*argv, "-n", "2", "--json", str(tmp_path / "workers.json")]) == 1
    capsys.readouterr()
    here, workers = _report_without_times(tmp_path / "here.json"), _report_without_times(tmp_path / "workers.json")
    totals = here["totals"]
    assert totals["cases"] == 4 + 3 + 3 + 1
    assert totals["fail"] == 1 and totals["pass_expected_error"] >= 3, totals
    assert workers == here
