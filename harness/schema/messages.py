"""How problems are said: received values as written in a message, "did you mean" hints, and the
``Checker`` that collects every problem of one file.

A message is ``path:line: case 'id': field: problem (expected ..., got ...)``; where the problem
already states the requirement (``must be a positive integer``) only what was received follows
(``layer.units: must be a positive integer, got '8'``).  A received value is echoed in at most
``SHOW_CHARS`` characters (a longer one is cut, with an ellipsis and its length).  A plain
scalar YAML 1.1 reads otherwise (``yes``, ``010``: see ``yaml_lines``) gets a note saying what to
write instead: ``must be true or false, got 'yes' (YAML 1.1 reads yes as true; write true)``.
"""
from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SchemaProblem
from ..yaml_lines import INT_DIGITS, LineDict, Yaml11Str, short
from .keys import LIMIT_DEFAULTS

# The most characters a received value takes in a message.
SHOW_CHARS = 60


def show(value: Any) -> str:
    """How a received value is written in a message: at most SHOW_CHARS characters."""
    text = _show(value)
    if len(text) <= SHOW_CHARS:
        return text
    if isinstance(value, str):  # the quote kept, and how long the whole string is
        return f"{text[:SHOW_CHARS - 4]}...{text[0]} ({len(value)} characters)"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{text[:SHOW_CHARS - 4]}... ({len(text.lstrip('-'))} digits)"
    return short(text, SHOW_CHARS)


def clip(word: Any) -> str:
    """A key as part of a field name (``sweep.KEY``), cut as ``show`` cuts a value."""
    return short(word, SHOW_CHARS)


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        flat = len(value) <= SHOW_CHARS and all(v is None or isinstance(v, (bool, int, float, str)) for v in value)
        text = "[" + ", ".join(show(v) for v in value) + "]" if flat else ""
        return text if flat and len(text) <= SHOW_CHARS else f"a list of {len(value)}"
    if isinstance(value, int) and value.bit_length() > 10_000:  # Python writes no int of over 4300 digits
        return f"an integer of about {int(value.bit_length() * math.log10(2))} digits"
    if isinstance(value, (int, float)):
        return repr(value)
    return f"{value} (a {type(value).__name__})"


def yaml11_note(value: Any, want: str) -> str:
    """`` (YAML 1.1 reads yes as true; write true)`` where ``want`` ("bool" or "number") is what
    the field takes and ``value`` is a plain scalar YAML 1.1 reads as one; else nothing."""
    if not isinstance(value, Yaml11Str) or value.kind != want:
        return ""
    text, read = str(value), value.yaml11
    if want == "bool":
        return f" (YAML 1.1 reads {text} as {show(read)}; write {show(read)})"
    if len(text) > INT_DIGITS or isinstance(read, int) and read.bit_length() > 3 * INT_DIGITS:
        return ""  # no number worth writing out (and Python reads no decimal of over 4300 digits)
    digits = text.lstrip("+-")
    if len(digits) > 1 and digits.isdigit():  # a leading zero: 010, 08
        decimal = str(int(text))
        if read is None or str(read) == decimal:
            return f" (write {decimal})"
        return f" (write {decimal}, or {read} if you meant octal)"
    if read is None or isinstance(read, float) and not math.isfinite(read):
        return ""
    base = ", in base 60" if ":" in text else ""
    return f" (YAML 1.1 reads {text} as {read!r}{base}; write {read!r})"


def suggest(word: str, choices: Iterable[str]) -> str:
    """``; did you mean 'tanh'?`` for a close choice, else nothing."""
    close = difflib.get_close_matches(str(word), [c for c in choices if c], n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _numbers_only(value: Any) -> bool:
    """Every leaf of a nested list is a number (NumPy would read null as NaN, true as 1, "1.5" as 1.5)."""
    if isinstance(value, list):
        return all(_numbers_only(v) for v in value)
    return is_number(value)


def got_array(value: Any) -> str:
    """What a message says was received for a value that should be a nested list of numbers: the
    first leaf that is no number (``null in it``), else the value as ``show`` writes it."""
    stack = [value] if isinstance(value, list) else []
    while stack:
        item = stack.pop(0)
        for leaf in item:
            if isinstance(leaf, list):
                stack.append(leaf)
            elif not is_number(leaf):
                return f"{show(leaf)} in it"
    return show(value)


def as_array(value: Any) -> np.ndarray | None:
    """A nested list of numbers as a float array, or None if it is not one."""
    if not isinstance(value, list) or not _numbers_only(value):
        return None
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return arr if arr.dtype != object else None


class Checker:
    """Collects problems for one file; each check returns the clean value or None."""

    def __init__(self, path: str, folder: Path | None = None):
        self.path = path  # how messages name the file
        self.folder = Path(path).parent if folder is None else folder  # where paths in it start
        self.case_id: str | None = None
        self.limits: dict[str, int] = dict(LIMIT_DEFAULTS)  # the case's own (``limits:``) while it is checked
        self.problems: list[SchemaProblem] = []

    def fail(self, node: Any, key: Any, field: str, problem: str,
             expected: str | None = None, got: str | None = None) -> None:
        """One problem, at the line of ``key`` in ``node`` (of ``node`` itself when key is None)."""
        line = node.line_of(key) if isinstance(node, LineDict) else getattr(node, "line", None)
        self.problems.append(SchemaProblem(self.path, line, self.case_id, field, problem,
                                           expected, got))

    def must_be(self, node: Any, key: Any, field: str, what: str, value: Any, want: str = "") -> None:
        """``field: must be WHAT, got VALUE``: the requirement said once; ``want`` ("bool",
        "number") adds what to write for a YAML 1.1 spelling of one."""
        self.fail(node, key, field, f"must be {what}, got {show(value)}{yaml11_note(value, want)}")

    def over_limit(self, node: Any, key: Any, field: str, problem: str, limit: str, got: str) -> None:
        """``field: PROBLEM (expected at most N unless limits.LIMIT allows more, got ...)``."""
        self.fail(node, key, field, problem, f"at most {self.limits[limit]} unless limits.{limit} allows more", got)

    def keys(self, node: LineDict, allowed: Iterable[str], field: str, expected: str | None = None) -> bool:
        ok = True
        allowed = list(allowed)
        for key in node:
            if key not in allowed:
                self.fail(node, key, f"{field}.{clip(key)}" if field else clip(key),
                          "unknown key" + suggest(key, allowed),
                          expected or f"one of {', '.join(map(str, allowed))}", show(key))
                ok = False
        return ok

    def mapping(self, parent: LineDict, key: str, field: str) -> LineDict | None:
        value = parent[key]
        if not isinstance(value, LineDict):
            self.must_be(parent, key, field, "a mapping", value)
            return None
        return value

    def integer(self, node: LineDict, key: str, field: str, minimum: int) -> int | None:
        value = node[key]
        if not is_int(value) or value < minimum:
            self.must_be(node, key, field, "a positive integer" if minimum == 1 else f"an integer >= {minimum}",
                         value, "number")
            return None
        return value

    def number(self, node: LineDict, key: str, field: str, lo: float | None = None,
               hi: float | None = None) -> float | None:
        value = node[key]
        # NaN compares false with everything, so a NaN tolerance would let any error pass.
        bad = not is_number(value) or not math.isfinite(value) or (lo is not None and value < lo) \
            or (hi is not None and value > hi)
        if bad:
            if lo is not None and hi is not None:
                what = f"a number in [{lo:g}, {hi:g}]"
            elif lo is not None:
                what = "a finite non-negative number" if lo == 0 else f"a finite number >= {lo:g}"
            else:
                what = "a finite number"
            self.must_be(node, key, field, what, value, "number")
            return None
        return float(value)

    def boolean(self, node: LineDict, key: str, field: str) -> bool | None:
        value = node[key]
        if not isinstance(value, bool):
            self.must_be(node, key, field, "true or false", value, "bool")
            return None
        return value

    def choice(self, node: LineDict, key: str, field: str, choices: Iterable[Any], what: str) -> Any:
        value = node[key]
        choices = list(choices)
        if isinstance(value, bool) or value not in choices:
            shown = ", ".join("none" if c is None else c if isinstance(c, str) else show(c) for c in choices)
            hint = suggest(value, map(str, choices)) if isinstance(value, str) else ""
            self.fail(node, key, field, f"unknown {what}" + hint, f"one of {shown}", show(value))
            return None
        return value

    def string(self, node: LineDict, key: str, field: str) -> str | None:
        value = node[key]
        if not isinstance(value, str):
            self.must_be(node, key, field, "a string", value)
            return None
        return value

    def shaped(self, node: LineDict, key: str, field: str, shape: tuple[int, ...],
               what: str) -> np.ndarray | None:
        arr = as_array(node[key])
        if arr is None:
            self.fail(node, key, field, f"must be a nested list of numbers ({what})",
                      f"shape {shape}", show(node[key]))
            return None
        if arr.shape != tuple(shape):
            self.fail(node, key, field, f"shape does not match {what}", f"shape {tuple(shape)}",
                      f"shape {arr.shape}")
            return None
        return arr
