"""Which cases a command or a pytest run means: paths, ids, -k expressions, device and mode overrides."""
from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable, Sequence
from pathlib import Path

from . import modes, schema
from .case import Case
from .errors import UsageError
from .expressions import keyword_matcher, keywords, marker_matcher


def default_case_dirs() -> list[Path]:
    """``./cases`` when run from a checkout, else the cases bundled beside the package."""
    here = Path("cases")
    if here.is_dir():
        return [here]
    bundled = Path(__file__).resolve().parent.parent / "cases"
    if bundled.is_dir():
        return [bundled]
    raise UsageError("no case files given and no ./cases directory here")


def select(args: Sequence[str], keyword: str | None = None, device: str | None = None,
           marks: str | None = None, mode: str | None = None) -> list[Case]:
    """Cases named by paths and/or ids (an id may be exact, without its device, or a base id; an
    exact id may name any mode), then those ``-k keyword`` and ``-m marks`` keep."""
    keep = [matcher(expr) for matcher, expr in ((keyword_matcher, keyword), (marker_matcher, marks)) if expr]
    paths = [a for a in args if Path(a).exists()]
    ids = [a for a in args if not Path(a).exists()]
    for a in ids:
        if a.split("::", 1)[0].endswith((".yaml", ".yml")) and not Path(a.split("::", 1)[0]).exists():
            raise UsageError(f"{a.split('::', 1)[0]}: no such case file")  # ids never end in .yaml
    for a in ids:
        if "::" in a:  # pytest-style path::id
            paths.append(a.split("::", 1)[0])
    files = schema.find_case_files(paths or default_case_dirs())
    if ids and not paths:
        files = schema.find_case_files(default_case_dirs())
    cases = schema.load_files(dict.fromkeys(files))
    cases = with_mode(with_device(cases, device), mode)
    if ids:
        chosen: dict[str, Case] = {}
        for raw in ids:
            wanted = raw.split("::", 1)[-1]
            hits = [c for c in cases if wanted in (c.id, c.point_id, c.base_id)]
            if not hits and mode is None:  # an id naming a mode the case does not list (from a --mode run)
                hits = [c for c in with_mode(cases, modes.ALL) if c.id == wanted]
            if not hits:
                known = sorted({c.base_id for c in cases} | {c.id for c in cases})
                close = difflib.get_close_matches(wanted, known, n=3)
                hint = f" (did you mean {', '.join(close)}?)" if close else ""
                raise UsageError(f"no case with id '{wanted}'{hint}")
            chosen.update((c.id, c) for c in hits)
        cases = list(chosen.values())
    return [c for c in cases if not keep or all(match(keywords(c)) for match in keep)]


def with_device(cases: Iterable[Case], device: str | None) -> list[Case]:
    """``--device cpu|gpu|all`` runs every case on that device (all: both); None keeps the case's own."""
    if device is None:
        return list(cases)
    devices = ("cpu", "gpu") if device == "all" else (device,)
    out: dict[str, Case] = {}
    for case in cases:
        for d in devices:
            moved = case if case.device == d else dataclasses.replace(case, device=d)
            out.setdefault(moved.id, moved)
    return list(out.values())


def with_mode(cases: Iterable[Case], mode: str | None) -> list[Case]:
    """``--mode MODE|all`` runs every layer case in that mode (all: every mode, harness/modes.py);
    None keeps the case's own.  A model case runs as it is (it has no modes)."""
    if mode is None:
        return list(cases)
    wanted = modes.MODES if mode == modes.ALL else (mode,)
    out: dict[str, Case] = {}
    for case in cases:
        for m in (wanted if case.model is None else (case.mode,)):
            moved = case if case.mode == m else dataclasses.replace(case, mode=m)
            out.setdefault(moved.id, moved)
    return list(out.values())
