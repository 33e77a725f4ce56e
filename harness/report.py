"""Results -> text (CLI rows, pytest failure reports) and JSON.  First line is the verdict."""
from __future__ import annotations

import json
import shlex
from collections import Counter, defaultdict

from . import keras_api as api
from .compare import Comparison, Issue
from .result import CaseResult, Verdict
from .table import format_table
from .tolerances import DEFAULT_TOLERANCE


def reproduce(result: CaseResult) -> str:
    """A command that reruns exactly this case, from the directory the run started in."""
    return f"keras-equiv run {shlex.quote(f'{result.case.path}::{result.case.id}')}"


def problem(comp: Comparison) -> str:
    """What a comparison found wrong, in one line ("" when it passed)."""
    issue, against = comp.issue, comp.against
    if issue == Issue.NOT_NUMBERS:
        return f"{comp.rejected_side} is not an array of real numbers: {comp.rejected_value}"
    if issue == Issue.TOLERANCE:
        return f"invalid tolerance atol={comp.tolerance.atol} rtol={comp.tolerance.rtol}"
    if issue == Issue.SHAPE:
        return f"shape {comp.shape} != {comp.desired_shape} ({against})"
    if issue == Issue.DTYPE:
        return f"dtype {comp.dtype}, expected {comp.expected_dtype}"
    if issue == Issue.POSITIONS:
        got, want = comp.first
        return (f"{comp.special} positions differ at {comp.n_bad} elements, first at {list(comp.worst_index)} "
                f"(actual {got:.7g}, {against} {want:.7g})")
    if issue == Issue.VALUES:
        return (f"{comp.n_bad} / {comp.n_total} elements differ ({100.0 * comp.n_bad / comp.n_total:.1f}%); "
                f"max abs err {comp.max_abs:.3g} ({against})")
    return ""


def error_text(comp) -> str:
    """``err 3.2e-08 / tol 1.0e-05``: a comparison's worst element against what was allowed there."""
    if comp is None or not comp.worst:
        return "-"
    return f"err {comp.worst[0].error:.1e} / tol {comp.worst[0].allowed:.1e}"


def worst_text(result: CaseResult) -> str:
    """error_text of the case's comparison closest to (or furthest over) its tolerance."""
    return error_text(result.worst)


def row(result: CaseResult) -> str:
    """One line per case for the CLI."""
    detail = worst_text(result) if result.verdict in (Verdict.PASS, Verdict.FAIL) else ""
    if result.verdict != Verdict.PASS:
        detail = (detail + "  " if detail and detail != "-" else "") + result.message.splitlines()[0][:160] \
            if result.message else detail
    kernel = f"  [{result.kernel}]" if result.kernel and result.kernel != "generic" else ""
    return f"{result.verdict.value.upper():5} {result.case.id}  {detail}{kernel}  {result.seconds:.2f}s"


def verdict_line(result: CaseResult) -> str:
    """The one-line verdict pytest copies into its short summary."""
    if result.verdict == Verdict.ERROR:
        return f"{result.case.id}: error: {result.message.splitlines()[0]}"
    fails = result.failures
    first = fails[0] if fails else None
    comp = first.comparison if first else None
    if comp is not None and comp.tolerance is not None and comp.n_bad:
        return (f"output '{comp.name}' not close to the {comp.against}: {comp.n_bad} / {comp.n_total} elements "
                f"({100.0 * comp.n_bad / max(comp.n_total, 1):.1f}%); max abs err {comp.max_abs:.2g} > allowed "
                f"(atol={comp.tolerance.atol:g}, rtol={comp.tolerance.rtol:g})")
    return f"{first.name}: {first.detail}" if first else f"{result.verdict}: {result.message}"


def layers_text(case) -> str:
    """The layer (or the Sequential) a case builds, as Keras code."""
    return api.describe_model(case.model) if case.model else api.describe(dict(case.layer))


def failure_text(result: CaseResult) -> str:
    """The full report of a failed case: verdict, where, what, worst elements, how to rerun."""
    case = result.case
    lines = [verdict_line(result),
             f"  case:       {case.path}:{case.line} {case.id}",
             f"  layer:      {layers_text(case)}",
             f"  input:      batch={case.input.batch} timesteps={case.input.timesteps} "
             f"features={case.input.features} data={case.input.data} dtype={case.dtype} seed={case.seed}"]
    if result.verdict == Verdict.ERROR:
        lines.append("  message:    " + result.message.replace("\n", "\n              "))
    for check in result.failures:
        comp = check.comparison
        lines.append(f"  {check.name}: {check.detail}")
        if comp is None or comp.tolerance is None:
            continue
        lines.append(f"    compared:   {check.side} ({comp.dtype}) vs {comp.against} (float64), shape {comp.shape}")
        lines.append(f"    tolerance:  {comp.tolerance}")
        if comp.worst:
            at = list(comp.max_abs_index) if comp.max_abs_index is not None else "-"
            lines.append(f"    max abs:    {comp.max_abs:.3g} at {at}   max rel: {comp.max_rel:.3g}")
            lines.append(f"    worst {len(comp.worst)} of {comp.n_bad or comp.n_total}:")
            lines += worst_table(comp.worst, "      ")
    lines.append(f"  reproduce:  {reproduce(result)}")
    return "\n".join(lines)


def worst_table(worst, indent: str) -> list[str]:
    """The worst elements of a comparison: index, both values and the error against what was allowed."""
    rows = [(str(list(w.index)), w.actual, w.desired, w.error, w.allowed) for w in worst]
    return format_table(("index", "actual", "desired", "abs_err", "allowed"), rows, indent=indent, sci_columns=(3, 4))


def largest_errors(results: list[CaseResult]) -> dict[str, dict]:
    """Per dtype, over passing comparisons with the reference: the largest abs error, and the
    headroom (the largest fraction of its allowed error any element used), each with where."""
    best: dict[str, dict] = {}
    for r in results:
        if r.verdict != Verdict.PASS:
            continue
        for check in r.checks:
            comp = check.comparison
            if comp is None or comp.against != "reference" or not comp.passed:
                continue
            where = f"{r.case.id} {comp.name}"
            entry = best.setdefault(r.case.dtype, {"max_abs": (-1.0, ""), "ratio": (-1.0, "")})
            if comp.max_abs > entry["max_abs"][0]:
                entry["max_abs"] = (comp.max_abs, where)
            if comp.ratio > entry["ratio"][0]:
                entry["ratio"] = (comp.ratio, where)
    return dict(sorted(best.items()))


def summary(results: list[CaseResult], seconds: float) -> str:
    counts = Counter(r.verdict for r in results)
    parts = [f"{counts[v]} {'failed' if v == Verdict.FAIL else v.value}" for v in Verdict if counts[v]]
    text = f"{len(results)} cases: " + ", ".join(parts) + f" in {seconds:.1f}s"
    errs = largest_errors(results)
    if errs:
        text += "\nlargest error vs reference by dtype (passing cases; headroom = worst err / allowed):"
        for dtype, e in errs.items():
            atol, rtol = DEFAULT_TOLERANCE[dtype]
            text += (f"\n  {dtype:15} max abs {e['max_abs'][0]:.2e} ({e['max_abs'][1]}); "
                     f"headroom {e['ratio'][0]:.2f} ({e['ratio'][1]}); table atol={atol:g} rtol={rtol:g}")
    skipped = defaultdict(int)
    for r in results:
        if r.verdict == Verdict.SKIP:
            skipped[r.message] += 1
    for reason, n in skipped.items():
        text += f"\nskipped {n}: {reason}"
    return text


def to_json(results: list[CaseResult]) -> str:
    rows = []
    for r in results:
        worst = r.worst
        rows.append({
            "id": r.case.id, "verdict": r.verdict.value, "message": r.message, "seconds": round(r.seconds, 4),
            "dtype": r.case.dtype, "device": r.device or r.case.device, "kernel": r.kernel,
            "path": r.case.path, "line": r.case.line,
            "worst": None if worst is None else {"output": worst.name, "max_abs": worst.max_abs,
                                                 "max_rel": worst.max_rel, "atol": worst.tolerance.atol,
                                                 "rtol": worst.tolerance.rtol, "source": worst.tolerance.source},
            "checks": [{"name": c.name, "passed": c.passed, "detail": c.detail} for c in r.checks],
            "versions": r.versions,
        })
    return json.dumps({"cases": rows}, indent=2)

