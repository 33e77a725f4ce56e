"""Which files the pytest plugin claims as keras-equiv case files (the rule: pytest_plugin.py's
docstring): a rootdir-relative glob match and a top-level ``cases:`` key, read without failing."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from .pytest_options import PATTERNS


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A rootdir-relative glob as a regex over ``/``-separated paths: ``**`` any number of
    directories (none too), ``*`` ``?`` ``[...]`` (``[!...]``) inside one name."""
    parts = pattern.strip().strip("/").split("/")
    out = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part == "**":
            out.append(".*" if last else "(?:[^/]+/)*")
            continue
        j = 0
        while j < len(part):
            c = part[j]
            end = part.find("]", j + 2) if c == "[" else -1
            if c == "*":
                out.append("[^/]*")
            elif c == "?":
                out.append("[^/]")
            elif end != -1:
                body = part[j + 1:end]
                out.append("[" + ("^" + body[1:] if body.startswith("!") else body).replace("\\", "\\\\") + "]")
                j = end
            else:
                out.append(re.escape(c))
            j += 1
        if not last:
            out.append("/")
    return re.compile("".join(out))


_PARSER_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_CASES_LINE = re.compile(r"^cases[ \t]*:", re.MULTILINE)


def _top_level_cases(events) -> bool:
    """Whether the first YAML document of an event stream is a mapping with a ``cases`` key;
    stops at that key, so a case file is read no further than its first lines."""
    depth, key_next = 0, True
    for event in events:
        if isinstance(event, yaml.DocumentEndEvent):
            return False
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            if depth == 0 and not isinstance(event, yaml.MappingStartEvent):
                return False
            if depth == 1:
                key_next = not key_next
            depth += 1
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
        elif isinstance(event, (yaml.ScalarEvent, yaml.AliasEvent)):
            if depth == 0:
                return False
            if depth == 1:
                if key_next and isinstance(event, yaml.ScalarEvent) and event.value == "cases":
                    return True
                key_next = not key_next
    return False


def has_cases_key(path: Path) -> bool:
    """Whether a file's top level is a YAML mapping with a ``cases`` key (when it is not YAML: whether
    a line starts with ``cases:``).  Never raises."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    try:
        return _top_level_cases(yaml.parse(text, Loader=_PARSER_LOADER))
    except (yaml.YAMLError, RecursionError):
        return _CASES_LINE.search(text) is not None


def _relative(path: Path, root: Path) -> str | None:
    for p, r in ((path, root), (path.resolve(), root.resolve())):
        try:
            return p.relative_to(r).as_posix()
        except ValueError:
            continue
    return None


def is_case_file(file_path: Path, config: pytest.Config, named: bool = False) -> bool:
    """The module docstring's rule: a ``keras_equiv_paths`` match (or ``named`` on the command line)
    with a top-level ``cases:`` key."""
    if not named:
        rel = _relative(file_path, config.rootpath)
        if rel is None or not any(p.fullmatch(rel) for p in config.stash[PATTERNS]):
            return False
    return has_cases_key(file_path)
