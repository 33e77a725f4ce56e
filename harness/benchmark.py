"""Measure the speed and memory targets of DESIGN.md; prints numbers, asserts nothing.

    python -m harness.benchmark [--cases N] [--memory-cases N] [--skip-xdist]

1. collecting 10,000 expanded cases without importing TensorFlow (schema and pytest);
2. the harness's own overhead per case: everything except Keras's forward call and the reference;
3. resident memory over many cases in one process;
4. ``pytest -n 2`` against ``-n 0`` on the bundled cases;
5. one case from the CLI against a bare ``import tensorflow, keras``, and ``keras-equiv run -n 2`` against
   ``-n 0`` on the whole library;
6. the per-case split (Keras's call, the reference, the harness) per flavour, each in its own process;
7. the whole library on TensorFlow against jax, jax with its compilation cache empty and then filled
   (flavours.jax_cache_settings), each ``keras-equiv run -q -n 2`` in a fresh process.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import flavours, schema, session
from .runner import run_case

SWEEP_10K = """cases:
  - id: bench-collect
    about: 10 x 10 x 10 x 10 sweep points, for collection speed only
    layer: {class: LSTM, units: 4}
    input: {batch: 2, timesteps: 3, features: 2}
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
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
        print(f"schema: {out[0]} expanded cases loaded in {float(out[1]):.2f}s "
              f"(tensorflow imported: {out[2]}, keras imported: {out[3]})")
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                               str(cases_dir)], capture_output=True, text=True, cwd=tmp)
        wall = time.perf_counter() - t
        last = [line for line in proc.stdout.splitlines() if "collected" in line or "tests collected" in line]
        print(f"pytest --collect-only: {last[-1] if last else proc.stdout[-200:]!s} in {wall:.2f}s wall "
              "(including interpreter and pytest start-up)")


def overhead(n_cases: int) -> None:
    keras = session.keras()

    cases = [c for c in schema.load_files(schema.find_case_files(["cases"]))
             if c.device == "cpu" and not c.expect.error][:n_cases]
    forward = {"seconds": 0.0}
    original = keras.layers.Layer.__call__

    def timed_call(self, *args, **kwargs):
        # Only the outermost recurrent layer call counts as "Keras's forward call".
        if type(self).__name__ in ("LSTM", "GRU", "SimpleRNN", "Bidirectional") and not forward.get("inside"):
            forward["inside"] = True
            t0 = time.perf_counter()
            try:
                return original(self, *args, **kwargs)
            finally:
                forward["seconds"] += time.perf_counter() - t0
                forward["inside"] = False
        return original(self, *args, **kwargs)

    run_case(cases[0])  # warm-up: TensorFlow start-up is not per-case overhead
    keras.layers.Layer.__call__ = timed_call
    try:
        t = time.perf_counter()
        results = [run_case(c) for c in cases]
        total = time.perf_counter() - t
    finally:
        keras.layers.Layer.__call__ = original
    ref = sum(r.reference_seconds for r in results)
    harness = total - forward["seconds"] - ref
    print(f"per case over {len(results)} bundled cases: {1000 * total / len(results):.1f} ms total, "
          f"Keras forward call {1000 * forward['seconds'] / len(results):.1f} ms, "
          f"reference {1000 * ref / len(results):.1f} ms, harness overhead "
          f"{1000 * harness / len(results):.1f} ms = {100 * harness / total:.0f}% of case time "
          "(overhead includes building the layer and its weights, clear_session, data, comparisons)")


def memory(n_cases: int) -> None:

    cases = [c for c in schema.load_files(schema.find_case_files(["cases"])) if c.device == "cpu"]
    run_case(cases[0])
    marks = []
    for i in range(n_cases):
        run_case(cases[i % len(cases)])
        if i % max(1, n_cases // 8) == 0 or i == n_cases - 1:
            marks.append((i + 1, _rss_mib()))
    print("resident memory (MiB) after N cases: " + ", ".join(f"{n}: {m:.0f}" for n, m in marks))


def xdist() -> None:
    for n in ("0", "2"):
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", n, "-p", "no:cacheprovider", "cases"],
                              capture_output=True, text=True)
        tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-200:]
        print(f"pytest -n {n} cases: {time.perf_counter() - t:.1f}s wall ({tail})")


def _wall(argv: list[str], env: dict | None = None) -> tuple[float, subprocess.CompletedProcess]:
    t = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env)
    return time.perf_counter() - t, proc


def cli() -> None:
    """The CLI's fixed cost, and what worker processes buy."""
    # Each timed twice, the faster kept: the first process to import TensorFlow also warms the file cache.
    bare = min(_wall([sys.executable, "-c", "import tensorflow, keras"])[0] for _ in range(2))
    runs = [_wall([sys.executable, "-m", "harness", "run", "-q", "-n", "0", "seed-rnn-basic-lstm-seq-state[cpu]"])
            for _ in range(2)]
    one, proc = min(runs, key=lambda r: r[0])
    print(f"one case from the CLI: {one:.1f}s wall against {bare:.1f}s for a bare `import tensorflow, keras` "
          f"({one / bare:.2f}x; exit {proc.returncode})")
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
        _, proc = _wall([sys.executable, "-m", "harness.benchmark", "--overhead-only", "--keras", flavour,
                         "--cases", str(n_cases)])
        lines = [line for line in proc.stdout.splitlines() if line.startswith("per case")]
        print(f"{flavour}: {lines[-1] if lines else proc.stderr[-300:]}")


def whole_library(workers: int = 2) -> None:
    """Wall time of the whole library per flavour run, and jax's against TensorFlow's."""
    with tempfile.TemporaryDirectory() as tmp:
        runs = (("tensorflow", "off"), ("jax", "off"), ("jax", f"{tmp}/jax-cache"), ("jax", f"{tmp}/jax-cache"))
        seconds = []
        for (flavour, cache), what in zip(runs, ("", "no cache", "empty cache", "filled cache")):
            env = {**os.environ, "KERAS_EQUIV_JAX_CACHE": cache}
            env.pop("JAX_COMPILATION_CACHE_DIR", None)
            t = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "harness", "run", "-q", "-n", str(workers), "--keras",
                                   flavour, "cases"], capture_output=True, text=True, env=env)
            seconds.append(time.perf_counter() - t)
            summary = [line for line in proc.stdout.splitlines() if " cases: " in line]
            ratio = f", {seconds[-1] / seconds[0]:.1f}x TensorFlow's" if flavour == "jax" else ""
            print(f"whole library, {flavour}{' (' + what + ')' if what else ''}, -n {workers}: "
                  f"{seconds[-1]:.0f}s wall{ratio} (exit {proc.returncode}; {summary[-1] if summary else '?'})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.benchmark", description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=200, help="cases for the overhead measurement")
    parser.add_argument("--memory-cases", type=int, default=2000, help="cases for the memory measurement")
    parser.add_argument("--skip-xdist", action="store_true", help="skip the pytest -n 0 / -n 2 comparison")
    parser.add_argument("--skip-flavours", action="store_true",
                        help="skip the whole-library runs on TensorFlow and jax (the longest part)")
    parser.add_argument("--only-flavours", action="store_true", help="run only the whole-library runs")
    parser.add_argument("--overhead-only", action="store_true", help="run only the per-case split (with --keras)")
    parser.add_argument("--keras", metavar="FLAVOUR",
                        help="the flavour of --overhead-only (default: the installed one)")
    args = parser.parse_args(argv)
    if args.only_flavours:
        whole_library()
        return 0
    if args.overhead_only:
        flavours.select(args.keras)
        overhead(args.cases)
        return 0
    collection()
    overhead(args.cases)
    cli()
    per_flavour(args.cases)
    memory(args.memory_cases)
    if not args.skip_xdist:
        xdist()
    if not args.skip_flavours:
        whole_library()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
