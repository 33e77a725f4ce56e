"""``keras-equiv diff A.json B.json``: what moved between two runs of a library (two Keras releases,
two flavours, CPU and GPU): the cases whose verdict changed, whose worst error moved by more than a
factor, and the cases only one run has.  Reads the ``--json`` reports (report.to_json, format 1)."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import NamedTuple

from .errors import UsageError
from .table import format_table

FORMAT = "keras-equiv-report"
# A worst error that moved by more than this factor either way is reported (both runs passing too).
FACTOR = 2.0


class Row(NamedTuple):
    """One case that moved: its id, what each run said, and why it is listed."""

    id: str
    before: str
    after: str
    why: str


def _read(path: str) -> tuple[dict, dict[str, dict]]:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read it ({exc})") from None
    except ValueError as exc:
        raise UsageError(f"{path}: not JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("cases"), list):
        raise UsageError(f"{path}: not a keras-equiv --json report (no \"format\": \"{FORMAT}\" with a cases list)")
    cases = {c["id"]: c for c in doc["cases"] if isinstance(c, dict) and isinstance(c.get("id"), str)}
    return doc, cases


def _worst(case: dict) -> float | None:
    worst = case.get("worst")
    if not isinstance(worst, dict):
        return None
    value = worst.get("allowance_used")
    return float(value) if isinstance(value, (int, float)) else None


def _said(case: dict | None) -> str:
    """``pass (documented mismatch), worst 0.31``: the verdict, its label, the worst err / allowed."""
    if case is None:
        return "-"
    worst = _worst(case)
    label = case.get("label") if isinstance(case.get("label"), str) else ""
    return (case["verdict"] + (f" ({label})" if label else "")
            + (f", worst {worst:.2g}" if worst is not None else ""))


def compare_reports(before: dict[str, dict], after: dict[str, dict], factor: float = FACTOR) -> list[Row]:
    """The cases that moved, in the order of the first run (then the second's new ones)."""
    rows = []
    for case_id in [*before, *(i for i in after if i not in before)]:
        a, b = before.get(case_id), after.get(case_id)
        if a is None or b is None:
            rows.append(Row(case_id, _said(a), _said(b), "only in the second run" if a is None else
                            "only in the first run"))
        elif a["verdict"] != b["verdict"]:
            rows.append(Row(case_id, _said(a), _said(b), "verdict changed"))
        elif a.get("label", "") != b.get("label", ""):  # agreed, or by a documented mismatch or error
            rows.append(Row(case_id, _said(a), _said(b), "passes another way"))
        else:
            wa, wb = _worst(a), _worst(b)
            if wa is not None and wb is not None and max(wa, wb) > 0 and \
                    (min(wa, wb) == 0 or max(wa, wb) / min(wa, wb) > factor) and math.isfinite(max(wa, wb)):
                rows.append(Row(case_id, _said(a), _said(b), f"worst error moved more than {factor:g}x"))
    return rows


def versions_text(doc: dict) -> str:
    versions = doc.get("versions") or {}
    return " ".join(f"{k}={v}" for k, v in versions.items()) if isinstance(versions, dict) else ""


def main(first: str, second: str) -> int:
    """Print what moved; 1 when a verdict changed or a case is in one run only, else 0."""
    doc_a, a = _read(first)
    doc_b, b = _read(second)
    rows = compare_reports(a, b)
    print(f"first:  {first}  ({len(a)} cases; {versions_text(doc_a)})")
    print(f"second: {second}  ({len(b)} cases; {versions_text(doc_b)})")
    if not rows:
        print("no case moved: same verdicts, worst errors within a factor of 2")
        return 0
    for line in format_table(("case", "first", "second", "why"), rows):
        print(line)
    changed = [r for r in rows if not r.why.startswith("worst")]  # the worst error alone: a note
    print(f"{len(rows)} cases moved ({len(changed)} with another verdict or in one run only)")
    return 1 if changed else 0
