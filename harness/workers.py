"""Cases run in worker processes: a case that kills its process (a segfault in a backend kernel) or
overruns its time limit is that case's error verdict, a fresh worker takes the next case, and the
run and its report go on (``keras-equiv run -n N --timeout S``; pytest gets the same from xdist).

Each worker is a spawned process (nothing of the parent's Keras state is inherited; the flavour
comes with the environment) that runs one case at a time and sends its CaseResult back through a
pipe; results arrive as cases finish, each with the index of its case.
"""
from __future__ import annotations

import dataclasses
import multiprocessing
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.connection import Connection, wait

from .case import Case
from .result import CaseResult, Verdict

Run = Callable[..., CaseResult]  # run_case(case, options)


def _serve(conn: Connection, run: Run, options, warm: Callable[[], object] | None) -> None:
    """A worker: ``warm()`` first, then run each case it is sent until it is sent None."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops us
    if warm is not None:
        try:
            warm()
        except Exception:  # noqa: BLE001 - the first case meets the same problem and reports it as its verdict
            pass
    conn.send(None)  # ready: the parent starts the first case's clock (--timeout) now
    while True:
        job = conn.recv()
        if job is None:
            return
        index, case = job
        result = run(case, options)
        conn.send((index, dataclasses.replace(result, arrays=None, keras_run=None)))  # no backend tensors


def died(case: Case, exitcode: int | None, seconds: float) -> CaseResult:
    """The error verdict of a case whose worker process died under it."""
    if exitcode is not None and exitcode < 0:
        try:
            how = f"killed by signal {signal.Signals(-exitcode).name}"
        except ValueError:
            how = f"killed by signal {-exitcode}"
    else:
        how = f"exit code {exitcode}"
    message = (f"the worker process running the case died ({how}): a crash in Keras or its backend; "
               "the run went on in a new worker")
    return CaseResult(case, Verdict.ERROR, message=message, seconds=seconds)


def overran(case: Case, limit: float, seconds: float) -> CaseResult:
    """The error verdict of a case stopped at its time limit (its worker is killed)."""
    return CaseResult(case, Verdict.ERROR, message=f"case exceeded its {limit:g} s limit (--timeout); its "
                                                   "worker process was stopped", seconds=seconds)


class _Worker:
    def __init__(self, context, run: Run, options, warm: Callable[[], object] | None):
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, run, options, warm), daemon=True)
        self.process.start()
        child.close()
        self.job: tuple[int, Case] | None = None
        self.started = 0.0  # when its case's clock started: given it, or the worker became ready
        self.ready = False  # warmed up (until then no case's time runs out)

    def give(self, index: int, case: Case) -> None:
        self.job, self.started = (index, case), time.monotonic()
        self.conn.send((index, case))

    def overran(self, timeout: float, now: float) -> bool:
        return timeout > 0 and self.ready and now - self.started >= timeout

    def warming(self) -> bool:
        """Still importing Keras (it has not said it is ready): it has nothing to finish."""
        return not self.ready and not self.conn.poll()

    def stop(self, kill: bool = False) -> None:
        self.ask_to_stop(kill)
        self.join()

    def ask_to_stop(self, kill: bool = False) -> None:
        if kill:
            self.process.kill()
        else:
            try:
                self.conn.send(None)
            except (BrokenPipeError, OSError):
                pass

    def join(self) -> None:
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)
        self.conn.close()


class Pool:
    """``with Pool(n, run, options, timeout) as pool: for index, result in pool.results(cases)``.

    The workers start on entering, each calling ``warm`` (session.keras: the import of seconds) while
    the caller still loads its cases; a worker that replaces a dead one warms up too."""

    def __init__(self, workers: int, run: Run, options, timeout: float = 0.0,
                 warm: Callable[[], object] | None = None):
        self.size, self.run, self.options, self.timeout = max(1, workers), run, options, timeout
        self.warm = warm
        self.context = multiprocessing.get_context("spawn")
        self.workers: list[_Worker] = []

    def __enter__(self) -> Pool:
        while len(self.workers) < self.size:
            self._spawn()
        return self

    def __exit__(self, *exc_info) -> bool:
        # One still warming up (no case selected, a bad file) is killed at once.
        self._stop(self.workers, kill=exc_info[0] is not None)
        self.workers = []
        return False

    @staticmethod
    def _stop(workers: list[_Worker], kill: bool = False) -> None:
        """Stop ``workers``: those still warming up (or all, with ``kill``) killed, the others asked; all
        told first, then joined, so that they shut their interpreters down side by side."""
        for worker in workers:
            worker.ask_to_stop(kill=kill or worker.warming())
        for worker in workers:
            worker.join()

    def _stop_surplus(self, needed: int) -> None:
        """Fewer cases than workers: the others are stopped now, not left to import Keras for nothing
        beside the ones that run the cases."""
        surplus, self.workers = self.workers[needed:], self.workers[:needed]
        self._stop(surplus)

    def _spawn(self) -> _Worker:
        worker = _Worker(self.context, self.run, self.options, self.warm)
        self.workers.append(worker)
        return worker

    def _replace(self, worker: _Worker, more: bool) -> _Worker:
        """Kill ``worker`` (dead or overrunning) and, if ``more`` cases wait, start a new one in its place
        (else the stopped one is returned: nothing is given to it)."""
        worker.stop(kill=True)
        self.workers.remove(worker)
        return self._spawn() if more else worker

    def results(self, cases: Sequence[Case]) -> Iterator[tuple[int, CaseResult]]:
        """(index, result) of every case, as they finish."""
        todo = list(enumerate(cases))[::-1]
        needed = min(self.size, len(cases))
        while len(self.workers) < needed:  # results() outside a with block
            self._spawn()
        self._stop_surplus(needed)
        for worker in self.workers:
            if todo:
                worker.give(*todo.pop())
        while any(w.job is not None for w in self.workers):
            busy = [w for w in self.workers if w.job is not None]
            wait_for = None
            timed = [w.started + self.timeout for w in busy if w.ready]
            if self.timeout > 0 and timed:
                wait_for = max(0.0, min(timed) - time.monotonic())
            ready = wait([w.conn for w in busy], timeout=wait_for)
            now = time.monotonic()
            for worker in list(busy):
                index, case = worker.job
                if worker.conn in ready:
                    try:
                        got = worker.conn.recv()
                        if got is None:  # warmed up: its case's clock starts now
                            worker.ready, worker.started = True, now
                            continue
                        got_index, result = got
                    except (EOFError, OSError):  # the process died with the case
                        worker.process.join(timeout=5)
                        result, got_index = died(case, worker.process.exitcode, now - worker.started), index
                        worker = self._replace(worker, bool(todo))
                    worker.job = None
                    yield got_index, result
                elif worker.overran(self.timeout, now):
                    seconds = now - worker.started
                    worker = self._replace(worker, bool(todo))
                    yield index, overran(case, self.timeout, seconds)
                else:
                    continue
                if todo:
                    worker.give(*todo.pop())
