"""Safe YAML loading that remembers the line of every key, for error messages.

The loader is PyYAML's SafeLoader (the C one when available) with one change: mappings are
built as ``LineDict`` so each key keeps its line.  Only the safe tags exist; ``!!python/...``
raises instead of running anything, exactly as with ``yaml.safe_load``.
"""
from __future__ import annotations

import re

import yaml

from .errors import DuplicateKey

_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class LineDict(dict):
    """A dict that knows its own line and the line of each key (1-based)."""

    line: int = 0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.key_lines: dict = {}

    def line_of(self, key) -> int:
        return self.key_lines.get(key, self.line)


class _LineLoader(_Base):
    pass


# YAML 1.1 (PyYAML) reads ``1e-5`` as a string because its float needs a dot; YAML 1.2 and
# every user read it as a number.  Tolerances are written that way, so accept it.
_LineLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


def _construct_mapping(loader, node):
    # Keys written in this mapping; keys pulled in by a ``<<: *anchor`` merge may be overridden.
    written = {id(k) for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge"}
    loader.flatten_mapping(node)
    mapping = LineDict()
    mapping.line = node.start_mark.line + 1
    first_lines: dict = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "found an unhashable key", key_node.start_mark) from None
        line = key_node.start_mark.line + 1
        if id(key_node) in written:
            if key in first_lines:
                raise DuplicateKey(None, None, f"duplicate key '{key}' (first at line {first_lines[key]})",
                                   key_node.start_mark)
            first_lines[key] = line
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.key_lines[key] = line
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load(text: str):
    """Parse YAML text safely; mappings come back as LineDict."""
    return yaml.load(text, Loader=_LineLoader)  # a SafeLoader subclass: only plain YAML tags


def error_line(exc: yaml.YAMLError) -> int | None:
    """The 1-based line a YAML error points at, if it has one."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    return mark.line + 1 if mark is not None else None
