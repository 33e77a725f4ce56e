"""Results -> text (CLI rows, pytest failure reports) and JSON.  First line is the verdict."""
from __future__ import annotations

import json
import math
import shlex
from collections import Counter, defaultdict
from collections.abc import Mapping

import numpy as np

from . import __version__, layers
from . import keras_api as api
from .compare import Comparison, Issue
from .diagnosis import findings
from .result import CaseResult, Pass, Verdict
from .table import format_table
from .tolerances import DEFAULT_TOLERANCE


def reproduce(result: CaseResult) -> str:
    """A command that reruns exactly this case, from the directory the run started in."""
    return result.reproduce or f"keras-equiv run {shlex.quote(f'{result.case.path}::{result.case.id}')}"


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


# ANSI colours of the verdict word on a terminal.
COLORS = {Verdict.PASS: "32", Verdict.FAIL: "31", Verdict.ERROR: "1;31", Verdict.SKIP: "33"}


def _documented(check) -> bool:
    return check.passed and check.how == Pass.DOCUMENTED_MISMATCH


def pass_kind(result: CaseResult) -> Pass | None:
    """Why a passing case passed when Keras did not simply agree: ``Pass.EXPECTED_ERROR`` (Keras
    raised what expect.error names) or ``Pass.DOCUMENTED_MISMATCH`` (an expect.mismatch output still differs);
    None for an ordinary pass and for every other verdict.  Read from the result's checks only."""
    if result.verdict != Verdict.PASS:
        return None
    if any(c.passed and c.how == Pass.EXPECTED_ERROR for c in result.checks):
        return Pass.EXPECTED_ERROR
    if any(_documented(c) for c in result.checks):
        return Pass.DOCUMENTED_MISMATCH
    return None


def pass_label(result: CaseResult) -> str:
    """``raised ValueError as expected`` / ``documented mismatch: h, c``; "" for any other result."""
    kind = pass_kind(result)
    if kind == Pass.EXPECTED_ERROR:
        raised = next(c.raised for c in result.checks if c.passed and c.how == Pass.EXPECTED_ERROR)
        return f"raised {raised} as expected" if raised else "raised as expected"
    if kind == Pass.DOCUMENTED_MISMATCH:
        return "documented mismatch: " + ", ".join(c.name for c in result.checks if _documented(c))
    return ""


def use_color(stream, environ: Mapping[str, str]) -> bool:
    """Colour the verdicts: only on a terminal, and never when NO_COLOR is set (no-color.org) or TERM=dumb."""
    if environ.get("NO_COLOR") or environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _ordinary_worst(result: CaseResult) -> Comparison | None:
    """result.worst over the comparisons that had to agree (documented mismatches left out)."""
    comps = [c.comparison for c in result.checks
             if c.comparison is not None and c.comparison.tolerance and not _documented(c)]
    return max(comps, key=lambda c: c.ratio, default=None)


def row(result: CaseResult, width: int = 0, color: bool = False) -> str:
    """One line per case for the CLI: the verdict, the id padded to ``width``, what it found, the time.

    A pass that is not an agreement says so: ``PASS  id  (raised ValueError as expected)``,
    ``PASS  id  (documented mismatch: h)  err .. / tol ..`` (the error of the other outputs).
    ``color``: the verdict word in ANSI colour (see use_color)."""
    verdict = result.verdict.value.upper()
    word = f"\x1b[{COLORS[result.verdict]}m{verdict}\x1b[0m" if color else verdict
    label = pass_label(result)
    if label:
        worst = _ordinary_worst(result)
        detail = f"({label})" + (f"  {error_text(worst)}" if worst is not None else "")
    else:
        detail = worst_text(result) if result.verdict in (Verdict.PASS, Verdict.FAIL) else ""
    if result.verdict != Verdict.PASS:
        detail = (detail + "  " if detail and detail != "-" else "") + result.message.splitlines()[0][:160] \
            if result.message else detail
    kernel = f"  [{result.kernel}]" if result.kernel and result.kernel != "generic" else ""
    return f"{word}{' ' * (5 - len(verdict))} {result.case.id:<{width}}  {detail}{kernel}  {result.seconds:.2f}s"


def verdict_line(result: CaseResult) -> str:
    """The one-line verdict pytest copies into its short summary."""
    if result.verdict == Verdict.ERROR:
        return f"{result.case.id}: error: {result.message.splitlines()[0]}"
    fails = result.failures
    first = fails[0] if fails else None
    comp = first.comparison if first else None
    if comp is not None and comp.issue == Issue.POSITIONS:  # NaN/Inf: no error to quote (max_abs is 0)
        got, want = comp.first
        return (f"output '{comp.name}' not close to the {comp.against}: {comp.special} positions differ at "
                f"{comp.n_bad} / {comp.n_total} elements, first at {list(comp.worst_index)} "
                f"(actual {got:.7g}, {comp.against} {want:.7g})")
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
            at = where_text(comp.max_abs_index) if comp.max_abs_index is not None else "-"
            lines.append(f"    max abs:    {comp.max_abs:.3g} at {at}   max rel: {comp.max_rel:.3g}")
            lines.append(f"    worst {len(comp.worst)} of {comp.n_bad or comp.n_total}:")
            lines += worst_table(comp.worst, "      ")
    if result.findings is not None:
        lines += ["  " + line for line in findings.lines(result.findings)]
    if result.diagnosis_problem:
        lines.append(f"  diagnosis:  {result.diagnosis_problem}")
    lines.append(f"  reproduce:  {reproduce(result)}")
    return "\n".join(lines)


# Significant digits the values of a worst-elements table get: at least DIGITS, more where two
# values would print alike, up to what a float64 holds.
DIGITS, MAX_DIGITS = 7, 17


def distinguishing_digits(actual: float, desired: float) -> int:
    """The fewest significant digits (DIGITS to MAX_DIGITS) that print ``actual`` and ``desired`` apart."""
    for digits in range(DIGITS, MAX_DIGITS + 1):
        if f"{actual:.{digits}g}" != f"{desired:.{digits}g}":
            return digits
    return DIGITS if actual == desired or not (math.isfinite(actual) and math.isfinite(desired)) else MAX_DIGITS


def where_text(index) -> str:
    """``batch 0, timestep 3, unit 1``: an element's index with its axes named."""
    return ", ".join(f"{axis} {i}" for axis, i in zip(layers.output_axes(len(index)), index))


def worst_table(worst, indent: str) -> list[str]:
    """The worst elements of a comparison: the index, one column per named axis (batch, timestep,
    unit), both values with the digits that tell them apart, and the error against what was allowed."""
    if not worst:
        return []
    axes = layers.output_axes(len(worst[0].index))
    rows = [(*(int(i) for i in w.index), float(w.actual), float(w.desired), float(w.error), float(w.allowed))
            for w in worst]
    digits = max(distinguishing_digits(w.actual, w.desired) for w in worst)
    n = len(axes)
    return format_table((*axes, "actual", "desired", "abs_err", "allowed"), rows, indent=indent, digits=digits,
                        sci_columns=(n + 2, n + 3))


def largest_errors(results: list[CaseResult]) -> dict[str, dict]:
    """Per dtype, over passing comparisons with the reference: the largest abs error (``max_abs``),
    and the largest share of its allowance any element used (``ratio`` = err / allowed at that
    element: 0 exact, 1 at the limit), each with where."""
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


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "es" if word.endswith(("ch", "s")) else "s")


def summary(results: list[CaseResult], seconds: float) -> str:
    counts = Counter(r.verdict for r in results)
    kinds = Counter(pass_kind(r) for r in results)
    how = [plural(kinds[k], k.value) for k in (Pass.DOCUMENTED_MISMATCH, Pass.EXPECTED_ERROR) if kinds[k]]
    parts = []
    for v in Verdict:
        if counts[v]:
            parts.append(f"{counts[v]} {'failed' if v == Verdict.FAIL else v.value}"
                         + (f" ({', '.join(how)})" if v == Verdict.PASS and how else ""))
    text = f"{len(results)} cases: " + ", ".join(parts) + f" in {seconds:.1f}s"
    errs = largest_errors(results)
    if errs:
        text += ("\nlargest error vs reference by dtype (passing cases; allowance used = the largest "
                 "err / allowed of any element, 100% = at the limit):")
        for dtype, e in errs.items():
            atol, rtol = DEFAULT_TOLERANCE[dtype]
            text += (f"\n  {dtype:15} max abs {e['max_abs'][0]:.2e} ({e['max_abs'][1]}); "
                     f"allowance used {100 * e['ratio'][0]:.2g}% ({e['ratio'][1]}); table atol={atol:g} rtol={rtol:g}")
    skipped = defaultdict(int)
    for r in results:
        if r.verdict == Verdict.SKIP:
            skipped[r.message] += 1
    for reason, n in skipped.items():
        text += f"\nskipped {n}: {reason}"
    return text


REPORT_FORMAT = "keras-equiv-report"
REPORT_FORMAT_VERSION = 1  # raised when a field changes meaning or goes away; new fields may appear without


def strict(value):
    """``value`` made strict JSON: NaN and infinities as the strings "nan", "inf", "-inf"; tuples as
    lists; NumPy scalars as Python numbers."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, Mapping):
        return {str(k): strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(v) for v in value]
    return value


def _worst_json(comp: Comparison | None) -> dict | None:
    if comp is None:
        return None
    return {"output": comp.name, "against": comp.against, "max_abs": comp.max_abs, "max_rel": comp.max_rel,
            "index": None if comp.worst_index is None else list(comp.worst_index),
            "max_abs_index": None if comp.max_abs_index is None else list(comp.max_abs_index),
            "allowance_used": comp.ratio, "atol": comp.tolerance.atol, "rtol": comp.tolerance.rtol,
            "source": comp.tolerance.source}


def to_json(results: list[CaseResult], complete: bool = True) -> str:
    """The JSON report of a run (``keras-equiv run|verify --json FILE``), one strict JSON object.

    Top level:
      ``format`` ``"keras-equiv-report"``; ``format_version`` 1 (raised when a field changes
      meaning or goes away; new fields may appear without); ``harness`` the keras-equiv version;
      ``complete`` false when the run was interrupted (Ctrl-C): ``cases`` then holds only the
      cases that finished; ``versions`` keras, backend, flavour (and the backend package's
      version) as the results recorded them (the first value met per key; {} when no case
      reached Keras); ``totals``: ``cases``, ``pass``, ``fail``, ``error``, ``skip``, and
      ``pass_documented_mismatch`` / ``pass_expected_error``, the passes that are a documented
      mismatch or an expected error (counted in ``pass`` too).
    Per case (``cases``, in run order):
      ``id``, ``verdict`` (pass | fail | error | skip), ``label`` ("" or the CLI row's
      ``documented mismatch: h`` / ``raised ValueError as expected``), ``message`` (why it failed,
      errored or was skipped), ``seconds``, ``dtype``, ``device`` (where the outputs really were),
      ``kernel`` (cudnn | fused | generic, "" when Keras did not run), ``path``, ``line``,
      ``reproduce`` (a shell command that reruns this case), ``worst`` (null, or the comparison
      closest to or furthest over its tolerance: ``output``, ``against``, ``max_abs``,
      ``max_rel``, ``index`` (its worst element), ``max_abs_index``, ``allowance_used``
      (err / allowed at the worst element; over 1 failed), ``atol``, ``rtol``, ``source``),
      ``checks`` (``name``, ``passed``, ``detail`` of every check), ``diagnosis`` (null, or for a
      failing layer case: ``timesteps`` (per output: ``ratios``, the worst err / allowed at each
      timestep, ``first_over``, ``row``), ``divergences`` (per direction and call: ``timestep``,
      ``step``, ``row``, ``output``, ``finding`` none | cell | sequence | outputs, ``cell_agrees``,
      ``gate``, ``gate_change``, ``fits``), ``layouts`` (the layout hypotheses that reproduce the
      outputs), ``closest_layout``, ``layout_verdict``), ``versions``.
    Numbers that can be non-finite (``max_abs``, ``max_rel``, ``allowance_used``, ``atol``,
    ``rtol``) are then the strings "nan", "inf" or "-inf": the document never holds NaN or Infinity.
    """
    rows, versions = [], {}
    for r in results:
        for key, value in r.versions.items():
            versions.setdefault(key, value)
        rows.append({
            "id": r.case.id, "verdict": r.verdict.value, "label": pass_label(r), "message": r.message,
            "seconds": round(r.seconds, 4), "dtype": r.case.dtype, "device": r.device or r.case.device,
            "kernel": r.kernel, "path": r.case.path, "line": r.case.line, "reproduce": reproduce(r),
            "worst": _worst_json(r.worst),
            "checks": [{"name": c.name, "passed": c.passed, "detail": c.detail} for c in r.checks],
            "diagnosis": findings.to_json(r.findings) if r.findings is not None else None,
            "versions": dict(r.versions),
        })
    counts = Counter(r.verdict for r in results)
    kinds = Counter(pass_kind(r) for r in results)
    totals = {"cases": len(results), **{v.value: counts[v] for v in Verdict},
              "pass_documented_mismatch": kinds[Pass.DOCUMENTED_MISMATCH],
              "pass_expected_error": kinds[Pass.EXPECTED_ERROR]}
    doc = {"format": REPORT_FORMAT, "format_version": REPORT_FORMAT_VERSION, "harness": __version__,
           "complete": complete, "versions": versions, "totals": totals, "cases": rows}
    return json.dumps(strict(doc), indent=2, allow_nan=False)
