"""``keras-equiv``: run, list, validate and show cases.  Exit codes: see EXIT_CODES."""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from . import __version__, check_model, diff, explain, export, flavours, golden, layers, plot, port, progress, report
from . import schema, session
from . import keras_api as api
from .errors import CaseSchemaError, GoldenError, HarnessError, UsageError
from .markers import MARKERS, markers
from .modes import ALL as ALL_MODES
from .modes import MODES
from .outputs import check_output_path, write_atomic
from .result import Verdict
from .runner import RunOptions, golden_jobs, run_case, run_golden
from .schema import json_schema
from .select import default_case_dirs, select
from .workers import Pool

EXIT_CODES = """\
exit codes:
  0    every case passed (skips allowed)
  1    a case failed or errored
  2    bad input or usage: a bad case file, an unknown id, no case files, an unusable --json/--out path
  130  interrupted (Ctrl-C): the summary of what ran is printed and a --json report is still
       written, marked "complete": false; also a run whose stdout was closed (| head)"""
INTERRUPTED = 130
# Commands whose whole job is their output: a reader that stops early (| head) is no failure.
LISTING = (None, "list", "validate", "show", "schema", "diff")
# Commands that import Keras (the others never do).
KERAS_COMMANDS = ("run", "record", "verify", "check-model")


def _parser() -> argparse.ArgumentParser:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog="keras-equiv", formatter_class=raw, epilog=EXIT_CODES, description=(
        "Prove that Keras recurrent layers compute what an independent NumPy reference says."))
    parser.add_argument("--version", action="version", version=f"keras-equiv {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, codes: bool = True, **kwargs) -> argparse.ArgumentParser:
        return sub.add_parser(name, formatter_class=raw, epilog=EXIT_CODES if codes else None, **kwargs)

    def selection(p: argparse.ArgumentParser) -> None:
        p.add_argument("targets", nargs="*", metavar="PATH|ID",
                       help="case files, directories or case ids (default: the bundled cases/)")
        p.add_argument("-k", dest="keyword", metavar="EXPR",
                       help="only cases this expression matches: pytest's -k (words matched as substrings "
                            "of the id, its folders and file, and its markers; and, or, not, parentheses)")
        p.add_argument("-m", dest="marks", metavar="MARKEXPR",
                       help="only cases whose markers this expression matches: pytest's -m "
                            "(e.g. 'gru and float64'; list --markers lists the markers)")
        p.add_argument("--device", choices=("cpu", "gpu", "all"),
                       help="run every case on this device instead of the devices it lists")
        p.add_argument("--mode", choices=(*MODES, ALL_MODES),
                       help="run every layer case in this mode instead of the modes it lists (all: every "
                            "mode): eager, function (tf.function, jax.jit), xla (jit_compile=True), "
                            "predict (keras.Model.predict), symbolic (called on keras.Input first)")

    json_help = ("also write every result as JSON to FILE (checked before any case runs; replaced atomically); "
                 "'-' writes the JSON to stdout and the rows and summary to stderr")
    run = command("run", help="run cases and compare Keras with the reference")
    selection(run)
    run.add_argument("--json", metavar="FILE", help=json_help)
    run.add_argument("-q", "--quiet", action="store_true", help="print only failures and the summary")
    run.add_argument("-n", "--workers", type=int, default=1, metavar="N",
                     help="run the cases in N worker processes (default 1): a case that crashes its process or "
                          "overruns --timeout is that case's error and the run goes on; 0: in this process")
    run.add_argument("--timeout", type=float, default=0.0, metavar="SECONDS",
                     help="a case that runs longer is stopped and is an error (needs -n 1 or more; 0: no limit)")
    listing = command("list", help="list expanded case ids (no TensorFlow import)")
    selection(listing)
    listing.add_argument("--markers", action="store_true",
                         help="list the markers -m selects by instead, with how many selected cases have each")
    selection(command("validate", help="check case files (no TensorFlow import)"))
    diff_cmd = command("diff", help="the cases whose verdict or worst error moved between two --json reports")
    diff_cmd.add_argument("first", metavar="A.json")
    diff_cmd.add_argument("second", metavar="B.json")
    schema_cmd = command("schema", codes=False, help="print the JSON Schema of case files, for editors")
    schema_cmd.add_argument("--path", action="store_true", help="print where the installed schema file is instead")
    rec = command("record", help="run cases and write their inputs, weights and outputs to HDF5")
    selection(rec)
    rec.add_argument("--out", required=True, metavar="FILE.h5",
                     help="golden file to write (checked before any case runs; replaced atomically)")
    rec.add_argument("--force", action="store_true", help="overwrite an existing file")
    ver = command("verify", help="rerun the cases in a golden file here and compare")
    ver.add_argument("golden", metavar="FILE.h5")
    ver.add_argument("--case", metavar="ID", help="only this recorded case (its id, or its id without the device)")
    ver.add_argument("--device", choices=("cpu", "gpu"),
                     help="rerun the recorded cases on this device (record on one, verify on the other)")
    ver.add_argument("--json", metavar="FILE", help=json_help)
    for p in (run, ver):
        p.add_argument("--plot", metavar="DIR",
                       help="draw each failing case's error by timestep as DIR/<case>.png (needs keras-equiv[plot])")
    port.add_arguments(command("diagnose", help="does your own port of a recorded case agree with Keras, and if "
                                                "not, where and which layout mistake explains it"))
    export.add_arguments(command("export", help="write a recorded layer's weights in torch, ONNX or npz layout "
                                                "and prove the round trip with the target's own implementation"))
    for p in (run, rec, ver):
        p.add_argument("--keras", choices=flavours.FLAVOURS, metavar="FLAVOUR",
                       help="which Keras runs the cases: tensorflow (default), jax, torch (Keras 3 backends) "
                            "or tf_keras (legacy Keras 2); sets KERAS_BACKEND / TF_USE_LEGACY_KERAS")
    for p in (run, rec):
        p.add_argument("--tf32", action="store_true",
                       help="allow TF32 matmuls on the GPU (off by default); float32 gpu cases then use the "
                            "float32+tf32 tolerance row")
    run.add_argument("--require-gpu", action="store_true",
                     help="fail gpu cases when no GPU is visible instead of skipping them")
    check_model.add_arguments(command(
        "check-model", codes=False, help="check every recurrent layer of a saved model (.keras or legacy .h5)"))
    show = command("show", codes=False, help="the expanded case, its layer, weight shapes and parameter formula, "
                                              "and the weight layout: gate blocks, states, step equations")
    show.add_argument("case_id", metavar="ID")
    show.add_argument("--json", dest="show_json", action="store_true",
                      help="print the layout as strict JSON instead: one object per case, one per line")
    return parser


Runner = Callable[..., object]  # run_case(case, options) -> CaseResult


def main(argv: Sequence[str] | None = None, *, runner: Runner = run_case) -> int:
    """The command line; returns the exit code (EXIT_CODES).  ``runner`` runs one case (tests
    pass their own: one that raises KeyboardInterrupt stands for Ctrl-C)."""
    command = None  # None until parsed: --help into a closed pipe is no failure either
    try:
        parser = _parser()
        args = parser.parse_args(argv)
        command = args.command
        if command is None:  # a bare keras-equiv: say what it takes rather than start a full run
            parser.print_usage(sys.stderr)
            print("keras-equiv: error: a command is required (run, list, validate, show, record, verify, "
                  "check-model, diff, schema); keras-equiv --help says more", file=sys.stderr)
            return 2
        code = _command(args, runner)
        sys.stdout.flush()  # a closed pipe shows here, not in the flush at exit
        return code
    except CaseSchemaError as exc:
        print(exc, file=sys.stderr)
        return 2
    except HarnessError as exc:  # usage errors, unreadable golden files
        print(f"keras-equiv: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # outside a run's loop (importing Keras, verify, check-model)
        print("keras-equiv: interrupted", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:  # the reader went away (keras-equiv list | head -1)
        _silence(sys.stdout)
        return 0 if command in LISTING else INTERRUPTED


def _command(args: argparse.Namespace, runner: Runner) -> int:
    # Output paths first: a typo in --json must not cost a whole run.
    json_path = getattr(args, "json", None)
    if json_path:
        check_output_path("--json", json_path, stdout_ok=args.command != "check-model")
    if args.command in ("record", "export"):
        check_output_path("--out", args.out, stdout_ok=False)
    if args.command == "check-model" and args.record:
        check_output_path("--record", args.record, stdout_ok=False)
    if args.command in KERAS_COMMANDS:
        _select_flavour(getattr(args, "keras", None))
    plot_dir = getattr(args, "plot", None)
    if plot_dir:
        _check_plot_dir(plot_dir)
    if args.command == "show":
        return _show(args.case_id, args.show_json)
    if args.command in ("diagnose", "export"):
        with tempfile.TemporaryDirectory(prefix="keras-equiv-") as workdir:
            if not Path(args.golden).is_file() and not args.golden.endswith((".h5", ".hdf5")):
                args.golden, args.case = _recorded(args.golden, Path(workdir) / "recorded.h5"), None
            return port.main(args, _write_json, plot.plot_case) if args.command == "diagnose" else export.main(args)
    if args.command == "diff":
        return diff.main(args.first, args.second)
    if args.command == "schema":
        sys.stdout.write(f"{json_schema.SHIPPED}\n" if args.path else json_schema.SHIPPED.read_text(encoding="utf-8"))
        return 0
    if args.command == "check-model":
        return check_model.main(args)
    if args.command == "verify":  # the recorded cases, run as a run runs cases (rows, Ctrl-C, progress)
        jobs = {job.case.id: job for job in golden_jobs(args.golden, args.case, args.device,
                                                         getattr(args, "keras", None))}
        out, color = _human_stream(json_path)
        return _run([job.case for job in jobs.values()], json_path, False, RunOptions(),
                    runner=lambda case, options: run_golden(jobs[case.id], options, runner), out=out, color=color,
                    plot_dir=plot_dir)
    _check_targets(args.targets)
    options = RunOptions(tf32=getattr(args, "tf32", False), require_gpu=getattr(args, "require_gpu", False))
    with _workers(args, runner, options) as pool:  # they load Keras while the cases are chosen here
        return _chosen(args, runner, options, pool, json_path, plot_dir)


def _workers(args: argparse.Namespace, runner: Runner, options: RunOptions):
    """``run -n N``: the worker processes, started now so that each imports Keras (seconds) while
    this process loads the case files; an injected runner (tests) runs here, without them."""
    if args.command != "run":
        return contextlib.nullcontext()
    if args.workers < 0 or args.timeout < 0:
        raise UsageError("-n and --timeout take a number of 0 or more")
    if args.timeout and not args.workers:
        raise UsageError("--timeout needs worker processes (-n 1 or more): a case in this process cannot be stopped")
    if not args.workers or runner is not run_case:
        return contextlib.nullcontext()
    return Pool(args.workers, run_case, options, args.timeout, warm=session.keras)


def _chosen(args: argparse.Namespace, runner: Runner, options: RunOptions, pool: Pool | None,
            json_path: str | None, plot_dir: str | None) -> int:
    """The selection commands, on the cases the arguments choose."""
    cases = select(args.targets, args.keyword, args.device, args.marks, args.mode)
    if args.command == "validate":
        print(f"ok: {len(cases)} cases")
        return 0
    if args.command == "list" and args.markers:
        counts = Counter(name for case in cases for name in markers(case))
        width = max(map(len, MARKERS))
        for name, meaning in MARKERS.items():
            print(f"{name:<{width}}  {counts[name]:>5}  {meaning}")
        return 0
    if args.command == "list":
        for case in cases:
            print(case.id)
        return 0
    if args.command == "record":
        return _record(cases, args.out, args.force, options, runner)
    out, color = _human_stream(json_path)
    return _run(cases, json_path, args.quiet, options, runner=runner, out=out, color=color, pool=pool,
                plot_dir=plot_dir)


def _human_stream(json_path: str | None):
    """Where the rows and the summary go (stderr when the JSON report takes stdout), and whether in colour."""
    out = sys.stderr if json_path == "-" else sys.stdout
    return out, report.use_color(out, os.environ)


def _counter(index: int, total: int) -> str:
    """``[ 7/12]``: as wide for every row of the run."""
    return f"[{index:>{len(str(total))}}/{total}]"


def _check_targets(targets: Sequence[str]) -> None:
    """A folder named (or the default cases/) must hold case files: saying so beats 'no cases selected'."""
    for folder in [Path(t) for t in targets] or default_case_dirs():
        if folder.is_dir() and not schema.find_case_files([folder]):
            raise UsageError(f"{folder}: no case files (*.yaml, *.yml) in this folder")



def _check_plot_dir(folder: str) -> None:
    """--plot: matplotlib is installed and DIR is (or can be made) a folder, before any case runs."""
    plot.pyplot()
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise UsageError(f"--plot {folder}: not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--plot {folder}: cannot be made ({exc.strerror})") from None


def _write_json(json_path: str, text: str) -> None:
    if json_path == "-":
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    else:
        write_atomic(json_path, lambda tmp: Path(tmp).write_text(text + "\n", encoding="utf-8"))


def _silence(stream) -> None:
    """Point a closed pipe's file descriptor at /dev/null, so the exit's flush cannot fail again."""
    with contextlib.suppress(AttributeError, OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)


def _select_flavour(flavour: str | None) -> None:
    """The flavour of a command that runs Keras (--keras, else the environment's, else the installed
    default): set the environment Keras reads at import; nothing has imported it yet."""
    flavour = flavour or flavours.requested()
    missing = flavours.missing_package(flavour)
    if missing:
        raise UsageError(missing)
    flavours.select(flavour)


def _in_process(cases, runner: Runner, options: RunOptions):
    """(index, result) of each case, run here one after the other."""
    for index, case in enumerate(cases):
        yield index, runner(case, options)


def _run(cases, json_path: str | None, quiet: bool, options: RunOptions, *, runner: Runner = run_case,
         out=None, color: bool = False, pool: Pool | None = None, plot_dir: str | None = None) -> int:
    """Run the cases with ``runner`` here, or in the ``pool``'s worker processes; a row each as they finish,
    then _report in case order.  Ctrl-C (or stdout closing) stops the loop: the summary covers what
    ran, the JSON says "complete": false, exit 130."""
    out = sys.stdout if out is None else out
    if not cases:
        print("no cases selected", file=sys.stderr)
        return 2
    start = time.perf_counter()
    done: dict[int, object] = {}
    width = max(len(c.id) for c in cases)
    stopped = False
    how = progress.mode(out, quiet, os.environ, len(cases))
    try:
        with progress.Progress(out, len(cases), how, lines_to=sys.stderr, first=cases[0].id) as shown:
            finished = pool.results(cases) if pool is not None else _in_process(cases, runner, options)
            for index, result in finished:
                done[index] = result
                if not quiet or result.verdict.failed:
                    shown.row(f"{_counter(len(done), len(cases))} {report.row(result, width, color)}")
                shown.advance(cases[len(done)].id if len(done) < len(cases) else "")
    except KeyboardInterrupt:
        stopped = True
    except BrokenPipeError:  # | head: nobody reads the rows any more; the JSON file still gets what ran
        _silence(out)
        stopped = True
    results = [done[i] for i in sorted(done)]
    if stopped:
        print(f"\ninterrupted: {len(results)} of {len(cases)} cases ran", file=out)
    code = _report(results, json_path, start, out, complete=not stopped, plot_dir=plot_dir)
    return INTERRUPTED if stopped else code


def _report(results, json_path: str | None, start: float, out=None, complete: bool = True,
            plot_dir: str | None = None) -> int:
    """Failure details (with --plot, each diagnosed failure's picture), the summary, the JSON report; the exit code."""
    out = sys.stdout if out is None else out
    failed = [r for r in results if r.verdict.failed]
    for result in failed:
        print("\n" + report.failure_text(result), file=out)
        if plot_dir and result.findings is not None:
            path = plot.plot_case(plot_dir, result.case.id, result.findings.timesteps, result.findings.first_on_axis)
            print(f"  plot:       {path}", file=out)
    print("\n" + report.summary(results, time.perf_counter() - start), file=out, flush=True)
    if json_path:
        _write_json(json_path, report.to_json(results, complete=complete))
    return 1 if failed else 0


def _record(cases, out: str, force: bool, options: RunOptions, runner: Runner = run_case) -> int:
    if Path(out).exists() and not force:
        raise GoldenError(f"{out}: already exists (use --force to overwrite)")
    results = []
    width = max((len(c.id) for c in cases), default=0)
    color = report.use_color(sys.stdout, os.environ)
    try:
        for index, case in enumerate(cases, start=1):
            results.append(runner(case, options._replace(keep=True)))
            print(f"{_counter(index, len(cases))} {report.row(results[-1], width, color)}", flush=True)
    except KeyboardInterrupt:
        print(f"\ninterrupted: {len(results)} of {len(cases)} cases ran; nothing written to {out}", file=sys.stderr)
        return INTERRUPTED
    written = []
    write_atomic(out, lambda tmp: written.append(golden.record(results, tmp, force=True)))
    print(f"recorded {written[0]} of {len(cases)} cases to {out}")
    failed = [r for r in results if r.verdict.failed]
    for result in failed:
        print("\n" + report.failure_text(result))
    return 1 if failed else 0


def _recorded(case_id: str, out: Path) -> str:
    """``diagnose`` / ``export`` given a case id instead of a golden file: the case run here (Keras, the
    default flavour) and recorded to ``out``, which they then read."""
    cases = select([case_id])
    if len(cases) != 1:
        raise UsageError(f"{case_id}: selects {len(cases)} cases; give one case id (or a golden file)")
    _select_flavour(None)
    result = run_case(cases[0], RunOptions(keep=True))
    if result.verdict != Verdict.PASS:
        raise UsageError(f"{cases[0].id}: did not pass here ({result.verdict}: {result.message.strip()[:200]}), "
                         "so there are no outputs of Keras's to judge against")
    golden.record([result], out, force=True)
    return str(out)


def _show(case_id: str, as_json: bool = False) -> int:
    for case in select([case_id]):
        if as_json:
            print(json.dumps(explain.to_json(explain.explain_case(case)), allow_nan=False))
            continue
        if case.model:
            print(f"{case.id}  ({case.path}:{case.line})\n  model:     {api.describe_model(case.model)}")
            print(f"  input:     {case.input}\n  expect:    {case.expect}")
            print("\n".join(explain.render(explain.explain_case(case))))
            continue
        cfg = api.with_defaults(case.layer)
        count, formula = layers.param_formula(cfg, case.input.features)
        print(f"{case.id}  ({case.path}:{case.line})")
        if case.about:
            print(f"  about:     {case.about}")
        print(f"  layer:     keras.layers.{api.describe(dict(case.layer))}")
        print(f"  input:     {case.input}")
        for key in ("mask", "initial_state", "calls"):
            if getattr(case, key) is not None:
                print(f"  {key + ':':<10} {getattr(case, key)}")
        print(f"  weights:   {case.weights if isinstance(case.weights, str) else 'explicit'}; shapes "
              + json.dumps(layers.weight_shapes(cfg, case.input.features)))
        print("  outputs:   " + json.dumps(layers.output_shapes(cfg, case.input.batch, case.input.timesteps)))
        print(f"  params:    {formula} = {count}")
        print(f"  dtype:     {case.dtype}  device: {case.device}  seed: {case.seed}")
        print(f"  expect:    {case.expect}")
        print("\n".join(explain.render(explain.explain_case(case))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
