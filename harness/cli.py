"""``keras-equiv``: run, list, validate and show cases.  Exit 0 pass, 1 a case failed, 2 bad input."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from collections.abc import Sequence

from . import check_model, flavours, golden, layers, report
from . import keras_api as api
from .errors import CaseSchemaError, GoldenError, HarnessError, UsageError
from .runner import RunOptions, run_case, verify_golden
from .select import select


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="keras-equiv", description=(
        "Prove that Keras recurrent layers compute what an independent NumPy reference says."))
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def selection(p: argparse.ArgumentParser) -> None:
        p.add_argument("targets", nargs="*", metavar="PATH|ID",
                       help="case files, directories or case ids (default: the bundled cases/)")
        p.add_argument("-k", dest="keyword", metavar="EXPR",
                       help="only ids matching this expression (substrings with and/or/not)")
        p.add_argument("--device", choices=("cpu", "gpu", "all"),
                       help="run every case on this device instead of the devices it lists")

    run = sub.add_parser("run", help="run cases and compare Keras with the reference")
    selection(run)
    run.add_argument("--json", metavar="FILE", help="also write every result as JSON")
    run.add_argument("-q", "--quiet", action="store_true", help="print only failures and the summary")
    selection(sub.add_parser("list", help="list expanded case ids (no TensorFlow import)"))
    selection(sub.add_parser("validate", help="check case files (no TensorFlow import)"))
    rec = sub.add_parser("record", help="run cases and write their inputs, weights and outputs to HDF5")
    selection(rec)
    rec.add_argument("--out", required=True, metavar="FILE.h5", help="golden file to write")
    rec.add_argument("--force", action="store_true", help="overwrite an existing file")
    ver = sub.add_parser("verify", help="rerun the cases in a golden file here and compare")
    ver.add_argument("golden", metavar="FILE.h5")
    ver.add_argument("--json", metavar="FILE", help="also write every result as JSON")
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
    check_model.add_arguments(sub.add_parser(
        "check-model", help="check every recurrent layer of a saved model (.keras or legacy .h5)"))
    show = sub.add_parser("show", help="the expanded case, its layer, weight shapes and parameter formula")
    show.add_argument("case_id", metavar="ID")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["run", *(argv or [])])
    try:
        _select_flavour(getattr(args, "keras", None))
        if args.command == "show":
            return _show(args.case_id)
        if args.command == "check-model":
            return check_model.main(args)
        if args.command == "verify":
            start = time.perf_counter()
            results = verify_golden(args.golden)
            for index, result in enumerate(results, start=1):
                print(f"[{index}/{len(results)}] {report.row(result)}")
            return _report(results, args.json, start)
        cases = select(args.targets, args.keyword, args.device)
        options = RunOptions(tf32=getattr(args, "tf32", False), require_gpu=getattr(args, "require_gpu", False))
        if args.command == "validate":
            print(f"ok: {len(cases)} cases")
            return 0
        if args.command == "list":
            for case in cases:
                print(case.id)
            return 0
        if args.command == "record":
            return _record(cases, args.out, args.force, options)
        return _run(cases, args.json, args.quiet, options)
    except CaseSchemaError as exc:
        print(exc, file=sys.stderr)
        return 2
    except HarnessError as exc:  # usage errors, unreadable golden files
        print(f"keras-equiv: error: {exc}", file=sys.stderr)
        return 2


def _select_flavour(flavour: str | None) -> None:
    """--keras: set the environment Keras reads at import; nothing has imported it yet."""
    if flavour is None:
        return
    missing = flavours.missing_package(flavour)
    if missing:
        raise UsageError(missing)
    flavours.select(flavour)


def _run(cases, json_path: str | None, quiet: bool, options: RunOptions) -> int:
    if not cases:
        print("no cases selected", file=sys.stderr)
        return 2
    if json_path and Path(json_path).is_dir():
        raise UsageError(f"--json {json_path}: is a directory")
    start = time.perf_counter()
    results = []
    for index, case in enumerate(cases, start=1):
        result = run_case(case, options)
        results.append(result)
        if not quiet or result.verdict in ("fail", "error"):
            print(f"[{index}/{len(cases)}] {report.row(result)}", flush=True)
    return _report(results, json_path, start)


def _report(results, json_path: str | None, start: float) -> int:
    """Failure details, the summary, the JSON file; the exit code."""
    failed = [r for r in results if r.verdict.failed]
    for result in failed:
        print("\n" + report.failure_text(result))
    print("\n" + report.summary(results, time.perf_counter() - start))
    if json_path:
        Path(json_path).write_text(report.to_json(results), encoding="utf-8")
    return 1 if failed else 0


def _record(cases, out: str, force: bool, options: RunOptions) -> int:
    if Path(out).exists() and not force:
        raise GoldenError(f"{out}: already exists (use --force to overwrite)")
    results = []
    for index, case in enumerate(cases, start=1):
        results.append(run_case(case, options._replace(keep=True)))
        print(f"[{index}/{len(cases)}] {report.row(results[-1])}", flush=True)
    written = golden.record(results, out, force)
    print(f"recorded {written} of {len(cases)} cases to {out}")
    failed = [r for r in results if r.verdict.failed]
    for result in failed:
        print("\n" + report.failure_text(result))
    return 1 if failed else 0


def _show(case_id: str) -> int:
    for case in select([case_id]):
        if case.model:
            print(f"{case.id}  ({case.path}:{case.line})\n  model:     {api.describe_model(case.model)}")
            print(f"  input:     {case.input}\n  expect:    {case.expect}")
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
