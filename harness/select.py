"""Which cases a command or a pytest run means: paths, ids, -k expressions, device override."""
from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from _pytest.mark import expression

from . import schema
from .case import Case
from .errors import UsageError
from .markers import MARKERS, markers


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
           marks: str | None = None) -> list[Case]:
    """Cases named by paths and/or ids (an id may be exact, without its device, or a base id),
    then those ``-k keyword`` and ``-m marks`` keep."""
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
    cases = with_device(cases, device)
    if ids:
        chosen: dict[str, Case] = {}
        for raw in ids:
            wanted = raw.split("::", 1)[-1]
            hits = [c for c in cases if wanted in (c.id, c.point_id, c.base_id)]
            if not hits:
                known = sorted({c.base_id for c in cases} | {c.id for c in cases})
                close = difflib.get_close_matches(wanted, known, n=3)
                hint = f" (did you mean {', '.join(close)}?)" if close else ""
                raise UsageError(f"no case with id '{wanted}'{hint}")
            chosen.update((c.id, c) for c in hits)
        cases = list(chosen.values())
    return [c for c in cases if all(match(c) for match in keep)]


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


# pytest's own -k / -m grammar (and, or, not, parentheses, words of \w : + - . [ ] \ /), so one
# expression selects the same cases in both tools.  pytest 8.0-8.3 raise their ParseError, later
# releases SyntaxError.
_PARSE_ERRORS = tuple(e for e in (SyntaxError, getattr(expression, "ParseError", None)) if e is not None)


def compile_expression(expr: str, option: str) -> expression.Expression:
    """``expr`` compiled by pytest's expression parser; a malformed one is a UsageError worded as
    pytest words it (``Wrong expression passed to '-k': ...: at column 6: ...``)."""
    try:
        return expression.Expression.compile(expr)
    except _PARSE_ERRORS as exc:
        where = f"at column {exc.offset}: {exc.msg}" if isinstance(exc, SyntaxError) else str(exc)
        raise UsageError(f"Wrong expression passed to '{option}': {expr}: {where}") from None


def keyword_names(case: Case) -> set[str]:
    """What ``-k`` matches a case by, as pytest matches its item: the id, its markers, and the
    folders and file of its path below the current directory (pytest: below the rootdir; a file
    outside it: its name alone)."""
    path = Path(case.path)
    try:
        parts = path.resolve().relative_to(Path.cwd().resolve()).parts
    except ValueError:
        parts = (path.name,)
    return {case.id, *parts, *markers(case)}


def keyword_matcher(expr: str) -> Callable[[Case], bool]:
    """``-k EXPR``: true for a case when the expression holds with each word true if it is a
    substring (any case) of one of the case's keyword_names, as in pytest."""
    compiled = compile_expression(expr, "-k")

    def matches(case: Case) -> bool:
        names = [name.lower() for name in keyword_names(case)]

        def word(sub: str, /, **kwargs) -> bool:
            if kwargs:
                raise UsageError("Keyword expressions do not support call parameters.")
            return any(sub.lower() in name for name in names)

        return compiled.evaluate(word)

    return matches


def marker_matcher(expr: str) -> Callable[[Case], bool]:
    """``-m EXPR``: true for a case when the expression holds with each word true if the case has
    that marker (markers.MARKERS; an unknown name is a UsageError, not a silent empty selection)."""
    compiled = compile_expression(expr, "-m")
    unknown = sorted(compiled.idents() - set(MARKERS))
    if unknown:
        close = difflib.get_close_matches(unknown[0], list(MARKERS), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UsageError(f"unknown marker(s) in '-m' expression: {', '.join(unknown)}{hint}; "
                         "keras-equiv list --markers lists them")

    def matches(case: Case) -> bool:
        have = set(markers(case))
        return compiled.evaluate(lambda name, /, **kwargs: name in have and not kwargs)

    return matches
