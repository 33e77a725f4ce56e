"""Measure the speed and memory targets (issue 14 of the README's performance section); prints
numbers, asserts nothing.

    python -m harness.benchmark [--only PART,...] [--skip PART,...] [--cases N] [--memory-cases N]

Its parts, in the order they run:

  collection  10,000 expanded cases loaded without importing TensorFlow (schema), and collected by pytest
  overhead    the per-case split on the installed flavour: Keras's time (its forward call apart), the
              reference's, the harness's own, and their ratios, over the first --cases bundled cases
  cli         one case from the CLI against a bare ``import tensorflow, keras``; ``keras-equiv run -n 2``
              against ``-n 0`` on the whole library
  flavours    the per-case split per installed flavour, each in its own process
  memory      resident memory over --memory-cases cases in one process
  xdist       ``pytest -n 2`` against ``-n 0`` on the bundled cases, and ``pytest -n 2 tests`` beside them
  library     the whole library on TensorFlow against jax, jax with its compilation cache off, empty
              and filled (flavours.jax_cache_settings), each ``keras-equiv run -q -n 2`` in a fresh process
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

from . import flavours, keras_layer, keras_model, runner, schema, session
from .reference import backward, sequential
from .runner import run_case

# The environment this process started with: every timed command gets it, as a user's shell would
# give it (importing TensorFlow here sets TF_CPP_MIN_LOG_LEVEL, TF2_BEHAVIOR and more in os.environ).
CLEAN_ENV = dict(os.environ)

SWEEP_10K = """cases:
  - id: bench-collect
    about: 10 x 10 x 10 x 10 sweep points, for collection speed only
    layer: {class: LSTM, units: 4}
    input: {batch: 2, timesteps: 3, features: 2}
    limits: {sweep_points: 10000}
    sweep:
      layer.units: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
      input.timesteps: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
      input.batch: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
      input.features: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
"""


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def collection() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cases_dir = Path(tmp) / "cases"
        cases_dir.mkdir()
        (cases_dir / "bench.yaml").write_text(SWEEP_10K)
        code = ("import sys, time; t = time.perf_counter(); from harness import schema; "
                f"cases = schema.load_files(schema.find_case_files([{str(cases_dir)!r}])); "
                "print(len(cases), time.perf_counter() - t, 'tensorflow' in sys.modules, 'keras' in sys.modules)")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env=CLEAN_ENV).stdout.split()
        print(f"schema: {out[0]} expanded cases loaded in {float(out[1]):.2f}s "
              f"(tensorflow imported: {out[2]}, keras imported: {out[3]})")
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                               str(cases_dir)], capture_output=True, text=True, cwd=tmp, env=CLEAN_ENV)
        wall = time.perf_counter() - t
        last = [line for line in proc.stdout.splitlines() if "collected" in line or "tests collected" in line]
        print(f"pytest --collect-only: {last[-1] if last else proc.stdout[-200:]!s} in {wall:.2f}s wall "
              "(including interpreter and pytest start-up)")


class Split(NamedTuple):
    """Where the time of a run of cases went, in seconds."""

    cases: int
    total: float
    forward: float  # Keras's forward call: the outermost call of the recurrent layer
    keras: float  # every call into Keras and its backend, the forward call included (see overhead())
    reference: float  # the NumPy reference: forward and backward passes

    @property
    def harness(self) -> float:
        """What is left: the harness's own Python (data, comparisons, bookkeeping)."""
        return self.total - self.keras - self.reference

    def ms(self, seconds: float) -> float:
        return 1000 * seconds / self.cases


class _Clock:
    """Seconds spent inside the wrapped functions, counted once where they nest."""

    def __init__(self):
        self.seconds, self.depth = 0.0, 0

    def __call__(self, function):
        @functools.wraps(function)
        def timed(*args, **kwargs):
            if self.depth:
                return function(*args, **kwargs)
            self.depth, start = 1, time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start
                self.depth = 0

        return timed

    def region(self, manager):
        """A context-manager function (keras_layer.keras_call), timed as the block it wraps."""
        @contextlib.contextmanager
        def timed(*args, **kwargs):
            outer, start = not self.depth, time.perf_counter()
            self.depth += 1
            try:
                with manager(*args, **kwargs):
                    yield
            finally:
                self.depth -= 1
                if outer:
                    self.seconds += time.perf_counter() - start

        return timed


def split(cases: list) -> Split:
    """Run the cases here and attribute their time.  Keras's time: every block the harness wraps as
    a Keras call (keras_layer.keras_call: building the layer and its weights, the calls, reading the
    weights, counting the parameters, the gradients), session.fresh (clear_session, the seed) and the
    symbolic shapes (compute_output_spec).  The reference: runner.reference_outputs, the backward
    pass and a model case's reference.  The harness: everything else."""
    keras = session.keras()
    forward, inside_keras, reference = _Clock(), _Clock(), _Clock()
    patches = [(keras.layers.Layer, "__call__", None), (keras_layer, "keras_call", "region"),
               (keras_model, "keras_call", "region"), (session, "fresh", None), (keras_layer, "symbolic_shapes", None),
               (runner, "reference_outputs", None), (backward, "gradients", None), (sequential, "run_model", None)]
    original_call = keras.layers.Layer.__call__
    forward_call = inside_keras(forward(original_call))  # Keras's time too, where no wrapped block holds it

    def layer_call(self, *args, **kwargs):  # only a recurrent layer's outermost call is the forward call
        if type(self).__name__ in ("LSTM", "GRU", "SimpleRNN", "Bidirectional"):
            return forward_call(self, *args, **kwargs)
        return original_call(self, *args, **kwargs)

    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    runner.run_case(cases[0])  # warm-up: TensorFlow's start-up is not a per-case cost
    for owner, name, how in patches:
        clock = reference if owner in (runner, backward, sequential) else inside_keras
        wrapped = layer_call if name == "__call__" else getattr(owner, name)
        setattr(owner, name, clock.region(wrapped) if how == "region" else clock(wrapped))
    try:
        start = time.perf_counter()
        for case in cases:
            runner.run_case(case)
        total = time.perf_counter() - start
    finally:
        for owner, name, value in saved:
            setattr(owner, name, value)
    return Split(len(cases), total, forward.seconds, inside_keras.seconds, reference.seconds)


def overhead(n_cases: int) -> Split:
    """The per-case split over the first ``n_cases`` bundled cpu cases that expect no error."""
    cases = [c for c in schema.load_files(schema.find_case_files(["cases"]))
             if c.device == "cpu" and not c.expect.error][:n_cases]
    got = split(cases)
    outside = got.total - got.forward - got.reference
    print(f"per case over {got.cases} bundled cases: {got.ms(got.total):.1f} ms = Keras {got.ms(got.keras):.1f} ms "
          f"(its forward call {got.ms(got.forward):.1f} ms; building the layer and its weights, clear_session, "
          f"reading the weights {got.ms(got.keras - got.forward):.1f} ms) + reference {got.ms(got.reference):.1f} ms "
          f"+ harness {got.ms(got.harness):.1f} ms")
    print(f"  the harness is {100 * got.harness / got.keras:.1f}% of Keras's time; all but the forward call and "
          f"the reference is {100 * outside / got.forward:.0f}% of the forward call")
    return got


def memory(n_cases: int) -> None:
    """Resident memory over ``n_cases`` bundled cpu cases in this process, the library over and over.
    The first pass loads what each kind of case needs once (modules, XLA's compiler, caches): flat
    memory means no growth over what runs again after it."""
    cases = [c for c in schema.load_files(schema.find_case_files(["cases"])) if c.device == "cpu"]
    run_case(cases[0])
    every = max(1, n_cases // 8)
    marks = []
    for i in range(n_cases):
        run_case(cases[i % len(cases)])
        if (i + 1) % every == 0 or i + 1 in (1, len(cases), n_cases):
            marks.append((i + 1, _rss_mib()))
    print("resident memory (MiB) after N cases: " + ", ".join(f"{n}: {m:.0f}" for n, m in marks))
    firsts = [m for n, m in marks if n == len(cases)]
    if firsts and n_cases > len(cases):
        print(f"  over the {n_cases - len(cases)} cases run a second time (after the first pass of {len(cases)}): "
              f"{marks[-1][1] - firsts[0]:+.0f} MiB")


def _last_line(proc: subprocess.CompletedProcess) -> str:
    """pytest's summary line, or the end of what it wrote to stderr when it printed nothing."""
    return proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-200:]


def xdist() -> None:
    """pytest on the case library with and without two workers, and the harness's own tests beside it."""
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "2", "-p", "no:cacheprovider", "tests"],
                          capture_output=True, text=True, env=CLEAN_ENV)
    tests = time.perf_counter() - t
    tail = _last_line(proc)
    print(f"pytest -n 2 tests (the harness's own tests): {tests:.1f}s wall ({tail})")
    for line in proc.stdout.splitlines():
        if line.startswith(("FAILED", "ERROR")):
            print(f"  {line}")
    cases = {}
    for n in ("0", "2"):
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", n, "-p", "no:cacheprovider", "cases"],
                              capture_output=True, text=True, env=CLEAN_ENV)
        cases[n] = time.perf_counter() - t
        tail = _last_line(proc)
        print(f"pytest -n {n} cases: {cases[n]:.1f}s wall ({tail})")
    for line in xdist_ratios(tests, cases["0"], cases["2"]):
        print(line)


def xdist_ratios(tests: float, cases_n0: float, cases_n2: float) -> list[str]:
    """The xdist part's ratios, from its three wall times."""
    return [f"  pytest -n 2 speed-up over -n 0 on the cases: {cases_n0 / cases_n2:.2f}x",
            f"  the harness's own tests take {tests / cases_n2:.2f}x the time of the case library "
            "(both pytest -n 2; under 1 is faster)"]


ONE_CASE = "seed-rnn-basic-lstm-seq-state[cpu]"


def _wall(argv: list[str], env: dict | None = None) -> tuple[float, subprocess.CompletedProcess]:
    t = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=CLEAN_ENV if env is None else env)
    return time.perf_counter() - t, proc


def cli() -> None:
    """The CLI's fixed cost, and what worker processes buy."""
    # Each timed twice, the faster kept: the first process to import TensorFlow also warms the file cache.
    bare = min(_wall([sys.executable, "-c", "import tensorflow, keras"])[0] for _ in range(2))
    for workers, how in (("1", "in its worker process, the default"), ("0", "in the CLI's own process, -n 0")):
        runs = [_wall([sys.executable, "-m", "harness", "run", "-q", "-n", workers, ONE_CASE]) for _ in range(2)]
        one, proc = min(runs, key=lambda r: r[0])
        print(f"one case from the CLI ({how}): {one:.1f}s wall against {bare:.1f}s for a bare "
              f"`import tensorflow, keras` ({one / bare:.2f}x; exit {proc.returncode})")
    times = {}
    for n in ("0", "2"):
        times[n], proc = _wall([sys.executable, "-m", "harness", "run", "-q", "-n", n, "cases"])
        summary = [line for line in proc.stdout.splitlines() if " cases: " in line]
        print(f"keras-equiv run -n {n} cases (the whole library): {times[n]:.1f}s wall "
              f"({summary[-1] if summary else '?'})")
    print(f"  -n 2 speed-up over -n 0: {times['0'] / times['2']:.2f}x")


def per_flavour(n_cases: int) -> None:
    """overhead() in a fresh process per installed flavour."""
    for flavour in flavours.FLAVOURS:
        if flavours.missing_package(flavour):
            print(f"per case, {flavour}: not installed")
            continue
        _, proc = _wall([sys.executable, "-m", "harness.benchmark", "--only", "overhead", "--keras", flavour,
                         "--cases", str(n_cases)])
        lines = [line for line in proc.stdout.splitlines() if line.startswith(("per case", "  the harness"))]
        print(f"{flavour}: " + ("\n".join(lines) if lines else proc.stderr[-300:]))


def whole_library(workers: int = 2) -> None:
    """Wall time of the whole library per flavour run, and jax's against TensorFlow's."""
    with tempfile.TemporaryDirectory() as tmp:
        runs = (("tensorflow", "off"), ("jax", "off"), ("jax", f"{tmp}/jax-cache"), ("jax", f"{tmp}/jax-cache"))
        seconds = []
        for (flavour, cache), what in zip(runs, ("", "no cache", "empty cache", "filled cache")):
            env = {**CLEAN_ENV, "KERAS_EQUIV_JAX_CACHE": cache}
            env.pop("JAX_COMPILATION_CACHE_DIR", None)
            t = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "harness", "run", "-q", "-n", str(workers), "--keras",
                                   flavour, "cases"], capture_output=True, text=True, env=env)
            seconds.append(time.perf_counter() - t)
            summary = [line for line in proc.stdout.splitlines() if " cases: " in line]
            ratio = f", {seconds[-1] / seconds[0]:.1f}x TensorFlow's" if flavour == "jax" else ""
            print(f"whole library, {flavour}{' (' + what + ')' if what else ''}, -n {workers}: "
                  f"{seconds[-1]:.0f}s wall{ratio} (exit {proc.returncode}; {summary[-1] if summary else '?'})")


PARTS = ("collection", "overhead", "cli", "flavours", "memory", "xdist", "library")


def _parts(text: str) -> list[str]:
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [part for part in chosen if part not in PARTS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown part {unknown[0]!r}; the parts: {', '.join(PARTS)}")
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.benchmark", description=__doc__.splitlines()[0],
                                     epilog=f"parts: {', '.join(PARTS)}")
    parser.add_argument("--only", type=_parts, metavar="PART,...", help="run only these parts")
    parser.add_argument("--skip", type=_parts, default=[], metavar="PART,...", help="leave these parts out")
    parser.add_argument("--cases", type=int, default=200, help="cases for the per-case split (default 200)")
    parser.add_argument("--memory-cases", type=int, default=1500,
                        help="cases for the memory measurement (default 1500)")
    parser.add_argument("--keras", metavar="FLAVOUR",
                        help="the flavour of the overhead part (default: the installed one)")
    args = parser.parse_args(argv)
    chosen = [part for part in (args.only or PARTS) if part not in args.skip]
    if args.keras:
        flavours.select(args.keras)
    run = {"collection": collection, "overhead": lambda: overhead(args.cases), "cli": cli,
           "flavours": lambda: per_flavour(args.cases), "memory": lambda: memory(args.memory_cases),
           "xdist": xdist, "library": whole_library}
    for part in PARTS:
        if part in chosen:
            start = time.perf_counter()
            print(f"== {part}", flush=True)
            run[part]()
            print(f"   ({time.perf_counter() - start:.0f}s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
