"""``-k`` and ``-m`` expressions over cases: pytest's own grammar and matching, so one expression
selects the same cases in ``keras-equiv`` and ``pytest`` (select.py picks with them, known.py
applies the rows of a known-differences table with them)."""
from __future__ import annotations

import difflib
import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from _pytest.mark import expression

from .case import Case
from .errors import UsageError
from .markers import MARKERS, markers

# pytest's own -k / -m grammar (and, or, not, parentheses, words of \w : + - . [ ] \ /), so one
# expression selects the same cases in both tools.


@functools.lru_cache(maxsize=256)
def compile_expression(expr: str, option: str) -> expression.Expression:
    """``expr`` compiled by pytest's expression parser; a malformed one is a UsageError worded as
    pytest words it (``Wrong expression passed to '-k': ...: at column 6: ...``)."""
    try:
        return expression.Expression.compile(expr)
    except SyntaxError as exc:  # pytest's words: _pytest.mark._parse_expression
        raise UsageError(f"Wrong expression passed to '{option}': {expr}: at column {exc.offset}: {exc.msg}") from None


class Keywords(NamedTuple):
    """What ``-k`` and ``-m`` look at in one case, worked out once for all the expressions tested
    on it (known.attach tests every row of a table on every case)."""

    names: str  # keyword_names, lower-cased, one per line (no -k word holds a newline)
    markers: frozenset[str]


def keywords(case: Case) -> Keywords:
    return Keywords("\n".join(name.lower() for name in keyword_names(case)), frozenset(markers(case)))


def keyword_names(case: Case) -> set[str]:
    """What ``-k`` matches a case by, as pytest matches its item: the id, its markers, and the
    folders and file of its path below the current directory (pytest: below the rootdir; a file
    outside it: its name alone)."""
    return {case.id, *_path_parts(case.path, os.getcwd()), *markers(case)}


@functools.lru_cache(maxsize=1024)
def _path_parts(path: str, cwd: str) -> tuple[str, ...]:
    """The folders and file of ``path`` below ``cwd`` (its name alone outside it): resolved once
    per file, not once per case and known.yaml row."""
    try:
        return Path(path).resolve().relative_to(Path(cwd).resolve()).parts
    except ValueError:
        return (Path(path).name,)


def _decided(compiled: expression.Expression, lowered: bool,
             evaluate: Callable[[Keywords], bool]) -> Callable[[Keywords], bool]:
    """``evaluate`` answered once per combination of the expression's words being true or false in
    a case: the answer depends on nothing else, and pytest's own evaluation (an ``eval`` through a
    mapping) was most of a collection's time, known.attach testing every row on every case."""
    words = sorted(word.lower() for word in compiled.idents()) if lowered else sorted(compiled.idents())
    seen: dict[tuple[bool, ...], bool] = {}

    def matches(case: Keywords) -> bool:
        within = case.names if lowered else case.markers
        truth = tuple([word in within for word in words])
        if truth not in seen:
            seen[truth] = evaluate(case)
        return seen[truth]

    return matches


@functools.lru_cache(maxsize=256)
def keyword_matcher(expr: str) -> Callable[[Keywords], bool]:
    """``-k EXPR``: true for a case's keywords when the expression holds with each word true if it
    is a substring (any case) of one of the case's keyword_names, as in pytest."""
    compiled = compile_expression(expr, "-k")

    def evaluate(case: Keywords) -> bool:
        def word(sub: str, /, **kwargs) -> bool:
            if kwargs:
                raise UsageError("Keyword expressions do not support call parameters.")
            return sub.lower() in case.names  # a substring of one of the names

        return compiled.evaluate(word)

    return _decided(compiled, True, evaluate)


@functools.lru_cache(maxsize=256)
def marker_matcher(expr: str) -> Callable[[Keywords], bool]:
    """``-m EXPR``: true for a case's keywords when the expression holds with each word true if the case has
    that marker (markers.MARKERS; an unknown name is a UsageError, not a silent empty selection)."""
    compiled = compile_expression(expr, "-m")
    unknown = sorted(compiled.idents() - set(MARKERS))
    if unknown:
        close = difflib.get_close_matches(unknown[0], list(MARKERS), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UsageError(f"unknown marker(s) in '-m' expression: {', '.join(unknown)}{hint}; "
                         "keras-equiv list --markers lists them")

    def evaluate(case: Keywords) -> bool:
        return compiled.evaluate(lambda name, /, **kwargs: name in case.markers and not kwargs)

    return _decided(compiled, False, evaluate)
