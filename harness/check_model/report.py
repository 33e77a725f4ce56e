"""What check-model found: one verdict per recurrent layer call, the parameter counts, Keras's
warnings and where they contradict what was recorded, as text and JSON.

The verdict rows and the worst-elements tables are laid out by harness/table.py (column widths
computed from the cells).  The JSON is strict (harness/report.py ``strict``: NaN and infinities
are the strings "nan", "inf", "-inf").
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..compare import Comparison
from ..report import error_text, plural, problem, strict, worst_table
from ..table import format_table

FROM_MODEL_RUN = "model run"
FROM_FILE = "file"  # Keras could not rebuild the model: each layer alone, from the file's weights


@dataclass(frozen=True)
class LayerResult:
    """The verdict for one recurrent layer (pass, fail, error, unsupported, not called)."""

    path: str
    cls: str
    verdict: str
    comparisons: list[Comparison] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    message: str = ""

    @property
    def worst(self) -> Comparison | None:
        return max((c for c in self.comparisons if c.tolerance), key=lambda c: c.ratio, default=None)


@dataclass(frozen=True)
class Report:
    """Everything check-model found, printable and JSON-able.

    ``params`` is None and ``checked_from`` FROM_FILE when Keras could not rebuild the model and
    each layer was checked alone from the file; ``warnings`` are warned.Warned, ``contradictions``
    warned.Contradiction (their words are among the notes: warned.notes)."""

    model_path: str
    header: str
    input_text: str
    layers: list[LayerResult]
    params: dict[str, Any] | None
    notes: list[str] = field(default_factory=list)
    warnings: list = field(default_factory=list)
    contradictions: list = field(default_factory=list)
    checked_from: str = FROM_MODEL_RUN

    @property
    def passed(self) -> bool:
        return all(r.verdict not in ("fail", "error") for r in self.layers) and \
            (self.params is None or self.params["agree"])

    def text(self) -> str:
        lines = [self.header, f"  input: {self.input_text}"]
        lines += [f"  note:  {n}" for n in self.notes]
        lines += [f"  keras warned: {w.message.splitlines()[0] if w.message else ''} ({w.source}; {w.during}"
                  f"{'' if w.count == 1 else f'; {w.count} times'})" for w in self.warnings]
        lines += verdict_rows(self.layers)
        for r in self.layers:
            if r.verdict in ("fail", "error"):
                lines += failure_lines(r)
        p = self.params
        if p is None:
            lines.append("params: not checked (no model: Keras cannot rebuild it)")
        else:
            lines.append(f"params: count_params() {p['count_params']}, summary \"Total params\" {p['summary']}, "
                         f"formulas {p['formulas']} (recurrent by formula {p['recurrent']} + other layers "
                         f"{p['other']})  {'OK' if p['agree'] else 'MISMATCH'}")
        counts: dict[str, int] = {}
        for r in self.layers:
            counts[r.verdict] = counts.get(r.verdict, 0) + 1
        tally = ", ".join(f"{n} {v}" for v, n in counts.items()) or "none found"
        what = (f"{plural(len(self.layers), 'recurrent layer')} checked from the file" if self.checked_from == FROM_FILE
                else f"{len(self.layers)} recurrent layer calls")
        lines.append(f"{what}: {tally}; {'OK' if self.passed else 'FAILED'}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        """The report as strict JSON data (no NaN or infinities: ``json.dumps(..., allow_nan=False)`` holds)."""
        return strict({
            "model": self.model_path, "header": self.header, "input": self.input_text,
            "checked_from": self.checked_from, "notes": self.notes,
            "keras_warnings": [w.to_json() for w in self.warnings],
            "contradictions": [c.to_json() for c in self.contradictions],
            "params": self.params, "passed": self.passed,
            "layers": [{"path": r.path, "class": r.cls, "verdict": r.verdict, "notes": r.notes,
                        "message": r.message,
                        "outputs": [{"name": c.name, "against": c.against, "passed": c.passed,
                                     "problem": problem(c), "max_abs": c.max_abs,
                                     "atol": c.tolerance.atol if c.tolerance else None,
                                     "rtol": c.tolerance.rtol if c.tolerance else None}
                                    for c in r.comparisons]}
                       for r in self.layers]})


def first_line(exc: BaseException) -> str:
    """``Type: first line`` of an exception; past Keras's "Exception encountered when calling" header."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in str(exc).splitlines()]
    lines = [line for line in lines if line]
    if len(lines) > 1 and lines[0].startswith("Exception encountered when calling"):
        lines = lines[1:]
    return f"{type(exc).__name__}: {lines[0][:300] if lines else ''}"


def detail(r: LayerResult) -> str:
    """The last cell of a verdict row: the worst error against its tolerance (or the message), and the notes."""
    if r.verdict in ("pass", "fail"):
        return "  ".join([error_text(r.worst), *r.notes])
    return "  ".join([r.message.splitlines()[0][:160] if r.message else "", *r.notes])


def verdict_rows(results: list[LayerResult]) -> list[str]:
    """One row per layer call: VERDICT, path, class, detail (no header line)."""
    rows = [(r.verdict.upper(), r.path, r.cls, detail(r)) for r in results]
    return format_table(("",) * 4, rows)[1:]  # blank headers: the widths come from the rows alone


def failure_lines(r: LayerResult) -> list[str]:
    """The block under the verdict rows for a failed or errored layer: the message, each failed output."""
    lines = [f"\n{r.path} ({r.cls}): {r.verdict}"]
    if r.message:
        lines.append("  " + r.message.replace("\n", "\n  "))
    for comp in r.comparisons:
        if comp.passed:
            continue
        lines.append(f"  output '{comp.name}' vs {comp.against}: {problem(comp)}")
        lines.append(f"    shape {comp.shape}, dtype {comp.dtype}, tolerance {comp.tolerance}")
        if comp.worst:
            lines += worst_table(comp.worst, "      ")
    return lines
