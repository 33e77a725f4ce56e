"""The pytest items: a case file, one case with its time limit, its junit properties and failure
report, and the CaseResults carried back to the end of the run (xdist included)."""
from __future__ import annotations

import base64
import dataclasses
import pickle
import signal
import threading
import time
import traceback
import _thread

import pytest
from _pytest._code.code import ReprExceptionInfo, ReprFileLocation, ReprTraceback

from . import plot, runner, schema
from .errors import CaseFailure, CaseOverrun, CaseSchemaError
from .markers import markers
from .pytest_options import IDS, RESULT, TIMEOUT
from .report import failure_text, reproduce, summary, verdict_line
from .result import CaseResult, Verdict
from .select import with_device, with_mode

# The attribute of a TestReport that carries the case's CaseResult (pickled, base64: a string that
# xdist, and any plugin writing reports as JSON, can carry as it is).
REPORT_ATTR = "keras_equiv_result"


class CaseFile(pytest.File):
    """One YAML case file."""

    def collect(self):
        cases = schema.load_file(self.path, display=self.nodeid)
        problems = self.config.stash[IDS].add(cases)
        if problems:
            raise CaseSchemaError(problems)
        modes = self.config.getoption("keras_equiv_mode")
        for case in with_mode(with_device(cases, self.config.getoption("keras_equiv_device")), modes):
            # The nodeid as a string: pytest parses it (name and [params]) as it parses the ids it
            # reads back for --lf / --ff, so the two compare equal (from the name alone they do not).
            yield CaseItem.from_parent(self, name=case.id, nodeid=f"{self.nodeid}::{case.id}", case=case)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, CaseSchemaError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


class Watchdog:
    """Stops the block it guards with ``CaseOverrun`` once ``seconds`` have passed (0: never): a timer
    thread sends SIGINT to the main thread, whose handler (ours while the block runs) raises it.
    Any other SIGINT goes to the handler that was there before (Ctrl-C still interrupts)."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.armed = seconds > 0 and threading.current_thread() is threading.main_thread()
        self.where = ""  # the stack where the block was stopped
        self._lock = threading.Lock()
        self._fired = self._raised = self._left = False

    def __enter__(self):
        if self.armed:
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)
            self._timer = threading.Timer(self.seconds, self._fire)
            self._timer.daemon = True
            self._timer.start()
        return self

    def _fire(self) -> None:
        with self._lock:
            if self._left:
                return
            self._fired = True
        if hasattr(signal, "pthread_kill"):  # a real signal: it also cuts a blocking sleep or read short
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
        else:
            _thread.interrupt_main()

    def _on_sigint(self, signum, frame):
        if self._fired and not self._raised:
            self._raised = True
            self.where = "".join(traceback.format_stack(frame)[-8:])
            raise CaseOverrun
        previous = self._previous
        if callable(previous):
            return previous(signum, frame)
        if previous == signal.SIG_IGN:
            return None
        raise KeyboardInterrupt

    def __exit__(self, *exc_info):
        if not self.armed:
            return False
        with self._lock:
            self._left = True
        self._timer.cancel()
        try:
            deadline = time.monotonic() + 5.0
            while self._fired and not self._raised and time.monotonic() < deadline:
                time.sleep(0.001)  # its SIGINT is on the way: take it here, not later inside pytest
        finally:
            signal.signal(signal.SIGINT, self._previous if self._previous is not None else signal.SIG_DFL)
        return False


def overrun_result(case, seconds: float, limit: float, where: str) -> CaseResult:
    """The error verdict of a case stopped at its time limit."""
    message = f"case exceeded its {limit:g} s limit"
    if where:
        message += "\nstopped in (innermost last):\n" + where.rstrip()
    return CaseResult(case, Verdict.ERROR, message=message, seconds=seconds)


def _number(value) -> str:
    return repr(float(value))


def junit_properties(result: CaseResult) -> list[tuple[str, str]]:
    """The junit ``<properties>`` of a case, all strings; a property without a value is left out.

    ``verdict`` pass|fail|error|skip; ``dtype``; ``device`` where the outputs were (the case's
    device when Keras did not run); ``kernel`` cudnn|fused|generic; ``flavour`` the Keras flavour;
    of the comparison closest to (or furthest over) its tolerance (``CaseResult.worst``):
    ``worst_output`` its output name, ``worst_against`` reference | expected values | ...,
    ``worst_max_abs`` and ``worst_max_rel`` its largest errors, ``worst_allowance_used`` err /
    allowed at its worst element (over 1: failed), ``atol``, ``rtol`` and ``tolerance_source``
    (``dtype default float32``, ``case tolerance for 'h'``, ...); ``versions`` ``name=version``
    pairs (keras, backend, flavour, the backend package), space-separated."""
    props = [("verdict", result.verdict.value), ("dtype", result.case.dtype),
             ("device", result.device or result.case.device), ("kernel", result.kernel),
             ("flavour", result.versions.get("flavour", ""))]
    worst = result.worst
    if worst is not None:
        props += [("worst_output", worst.name), ("worst_against", worst.against),
                  ("worst_max_abs", _number(worst.max_abs)), ("worst_max_rel", _number(worst.max_rel)),
                  ("worst_allowance_used", _number(worst.ratio)), ("atol", _number(worst.tolerance.atol)),
                  ("rtol", _number(worst.tolerance.rtol)), ("tolerance_source", worst.tolerance.source)]
    props.append(("versions", " ".join(f"{k}={v}" for k, v in result.versions.items())))
    return [(name, str(value)) for name, value in props if value != ""]


class CaseItem(pytest.Item):
    """One expanded case on one device."""

    def __init__(self, *, case, **kwargs):
        super().__init__(**kwargs)
        self.case = case
        for name in markers(case):
            self.add_marker(name)

    def runtest(self) -> None:
        options = runner.RunOptions(tf32=self.config.getoption("keras_equiv_tf32"),
                                    require_gpu=self.config.getoption("keras_equiv_require_gpu"))
        limit = self.config.stash[TIMEOUT]
        start = time.perf_counter()
        watchdog = Watchdog(limit)
        try:
            with watchdog:
                result = runner.run_case(self.case, options)
        except CaseOverrun:
            result = overrun_result(self.case, time.perf_counter() - start, limit, watchdog.where)
        self.stash[RESULT] = result
        self.user_properties.extend(junit_properties(result))
        if result.verdict == Verdict.SKIP:
            pytest.skip(result.message)
        if result.verdict.failed:
            folder = self.config.getoption("keras_equiv_plot")
            if folder and result.findings is not None:
                plot.plot_case(folder, self.case.id, result.findings.timesteps, result.findings.first_on_axis)
            raise CaseFailure(result)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, CaseFailure):
            result = excinfo.value.result
            tbstyle = self.config.getoption("tbstyle", "auto")
            if tbstyle == "line":  # pytest prints the crash location of it: path:line: verdict
                return ReprExceptionInfo(reprtraceback=ReprTraceback([], None, "line"),
                                         reprcrash=ReprFileLocation(result.case.path, result.case.line,
                                                                    verdict_line(result)))
            if tbstyle == "short":
                return f"{verdict_line(result)}\n  reproduce:  {reproduce(result)}"
            return failure_text(result)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, self.case.line - 1, f"case: {self.case.id}"


def encode_result(result: CaseResult) -> str:
    """A CaseResult as a string a test report can carry through xdist (the arrays left out)."""
    slim = dataclasses.replace(result, arrays=None, keras_run=None)
    return base64.b64encode(pickle.dumps(slim, protocol=4)).decode("ascii")


def decode_result(text: str) -> CaseResult:
    return pickle.loads(base64.b64decode(text))


class RunSummary:
    """The CaseResults of a run, read from the test reports (in the xdist controller: as the
    workers sent them), and report.summary of them at the end."""

    def __init__(self):
        self.results: dict[str, CaseResult] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """pytest_runtest_logreport: keep the CaseResult a case's report carries."""
        carried = getattr(report, REPORT_ATTR, None)
        if carried:
            self.results[report.nodeid] = decode_result(carried)

    def pytest_terminal_summary(self, terminalreporter) -> None:
        """pytest_terminal_summary: report.summary of the cases that ran: counts, largest error by dtype."""
        if not self.results:
            return
        results = [self.results[nodeid] for nodeid in sorted(self.results)]
        terminalreporter.write_sep("-", "keras-equiv")
        for line in summary(results, sum(r.seconds for r in results)).splitlines():
            terminalreporter.write_line(line)
