"""Safe YAML loading that remembers the line of every key, for error messages.

The loader is PyYAML's SafeLoader (the C one when available) with these changes:

- mappings are built as ``LineDict`` so each key keeps its line;
- plain scalars are read as YAML 1.2 (core schema) reads them, not as YAML 1.1 does: only
  ``true``/``false`` are booleans, only plain decimals (``10``, ``-3``) are integers, and
  ``2024-01-01`` is a string, not a date (``=`` too is a string).  What YAML 1.1 reads as something else (``yes``,
  ``off``, ``y``, ``010``, ``0x1_0``, ``1:30``, ``1_000``) stays the string written, as a
  ``Yaml11Str`` that knows what YAML 1.1 makes of it, so the schema can refuse it and say what
  to write instead.  ``1e-5`` is a float (YAML 1.1 needs a dot);
- the document may not grow through aliases: every ``*alias`` counts the whole of what it names,
  and more than ``ALIAS_VALUES`` values added that way (a "billion laughs" file) are refused
  before anything is built, as is an alias inside its own anchor.  An integer of more than
  ``INT_DIGITS`` digits is refused too (Python will not read one over 4300).  These caps are per
  file (checked before any case is read), so no case can raise them; they raise ``Refused``;
- a value an explicit tag cannot take (``!!bool maybe``, ``!!float abc``) is a YAML error with
  its line, not a Python exception.

Only the safe tags exist; ``!!python/...`` raises instead of running anything, exactly as with
``yaml.safe_load``.
"""
from __future__ import annotations

import re
from typing import Any

import yaml

from .errors import DuplicateKey

_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# The most values aliases may add to one file (each *alias adds the size of what it names).
ALIAS_VALUES = 100_000
# The most digits of an integer (Python refuses to read more than 4300).
INT_DIGITS = 100

_TAG = "tag:yaml.org,2002:"


def short(value: Any, limit: int = 60) -> str:
    """``value`` as text of at most ``limit`` characters (a longer one cut, with an ellipsis)."""
    text = str(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


class LineDict(dict):
    """A dict that knows its own line and the line of each key (1-based)."""

    line: int = 0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.key_lines: dict = {}

    def line_of(self, key) -> int:
        return self.key_lines.get(key, self.line)


def copy_tree(node, shared: tuple[str, ...] = ()):
    """A copy of loaded YAML's mappings and lists, lines kept; the scalars (immutable) are shared,
    and so are the values of the top-level keys in ``shared`` (read, never changed).  What a sweep
    point needs of its case (copy.deepcopy took most of expanding a large sweep)."""
    if isinstance(node, LineDict):
        new = LineDict((key, value if key in shared else copy_tree(value)) for key, value in node.items())
        new.line, new.key_lines = node.line, dict(node.key_lines)
        return new
    if isinstance(node, dict):
        return {key: copy_tree(value) for key, value in node.items()}
    if isinstance(node, list):
        return [copy_tree(value) for value in node]
    return node


class Yaml11Str(str):
    """A plain scalar that YAML 1.1 does not read as the string written: ``yaml11`` is what it
    reads instead (``True`` for ``yes``, 8 for ``010``), or None where YAML 1.1 also reads a string
    but the text is a number with a leading zero (``08``)."""

    yaml11: Any = None
    kind: str = "number"  # "bool" or "number"


class Refused(yaml.MarkedYAMLError):
    """A file the loader will not build (aliases that grow it too far or hold themselves, an
    integer too long to read); ``expected`` and ``got`` complete the message."""

    def __init__(self, problem: str, mark, expected: str, got: str):
        super().__init__(None, None, problem, mark)
        self.expected, self.got = expected, got


class _LineLoader(_Base):
    def construct_document(self, node):
        _check_aliases(node)
        return super().construct_document(node)


# Implicit types are YAML 1.2 core's: YAML 1.1's bool, int and float resolvers are replaced, and
# its timestamp and value ones dropped (an unquoted 2024-01-01 or = is the string written).
_REPLACED = tuple(_TAG + t for t in ("bool", "int", "float", "timestamp", "value"))
_LineLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in _REPLACED]
    for first, resolvers in _Base.yaml_implicit_resolvers.items()}
_LineLoader.add_implicit_resolver(_TAG + "bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                  list("tTfF"))
_DECIMAL = re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$")
_LineLoader.add_implicit_resolver(_TAG + "int", _DECIMAL, list("-+0123456789"))
# YAML 1.1 (PyYAML) reads ``1e-5`` as a string because its float needs a dot; YAML 1.2 and
# every user read it as a number.  Tolerances are written that way.
_LineLoader.add_implicit_resolver(
    _TAG + "float",
    re.compile(r"^(?:[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+(?=[eE]))(?:[eE][-+]?[0-9]+)?"
               r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+.0123456789"))

# What YAML 1.1 reads besides: its booleans (y and n too, as the 1.1 spec has them) and the
# integers and floats YAML 1.2 does not have (octal 010, hex, binary, 1_000, base 60 1:30).
_YAML11_BOOL = {w: value for value, words in ((True, "y yes on"), (False, "n no off"))
                for word in words.split() for w in (word, word.capitalize(), word.upper())}
_YAML11 = yaml.constructor.SafeConstructor()
_LEADING_ZERO = re.compile(r"^[-+]?0[0-9]+$")


def yaml11_reading(text: str) -> tuple[str, Any] | None:
    """``("bool", True)`` for ``yes``, ``("number", 8)`` for ``010``, ``("number", None)`` for ``08``
    (a leading zero YAML 1.1 reads as a string); None where YAML 1.1 reads the text as 1.2 does."""
    if text in _YAML11_BOOL:
        return "bool", _YAML11_BOOL[text]
    for tag, rx in _Base.yaml_implicit_resolvers.get(text[:1], ()):
        if tag in (_TAG + "int", _TAG + "float") and rx.match(text):
            read = _YAML11.construct_yaml_int if tag.endswith("int") else _YAML11.construct_yaml_float
            try:
                return "number", read(yaml.ScalarNode(tag, text))
            except ValueError:  # 1.1 digits Python will not read: no reading to offer
                return "number", None
    if _LEADING_ZERO.match(text):
        return "number", None
    return None


def _construct_str(loader, node):
    text = loader.construct_scalar(node)
    if not node.style:  # plain (None, or "" from libyaml): a quoted 'yes' is the string meant
        reading = yaml11_reading(text)
        if reading is not None:
            marked = Yaml11Str(text)
            marked.kind, marked.yaml11 = reading
            return marked
    return text


def _construct_int(loader, node):
    text = loader.construct_scalar(node)
    digits = len(text.lstrip("+-"))
    if digits > INT_DIGITS:
        raise Refused("integer is too long", node.start_mark, f"at most {INT_DIGITS} digits", f"{digits} digits")
    if _DECIMAL.match(text):
        return int(text)
    return yaml.constructor.SafeConstructor.construct_yaml_int(loader, node)  # an explicit !!int 0x10


def _guarded(construct, tag: str):
    """A constructor that says which value it cannot read (PyYAML raises ValueError, KeyError...)."""
    def run(loader, node):
        try:
            return construct(loader, node)
        except (ValueError, KeyError, AttributeError, TypeError, OverflowError):
            raise yaml.constructor.ConstructorError(None, None, f"cannot read '{short(node.value)}' as !!{tag}",
                                                    node.start_mark) from None
    return run


def _check_aliases(root) -> None:
    """Refuse a document that aliases make much larger than its text, or that holds itself.

    One pass over the node graph (each node once): the size of a node counts what every alias
    in it names in full, as anything that walks the loaded data would meet it."""
    size: dict[int, int] = {}
    refs: dict[int, int] = {id(root): 1}
    nodes: dict[int, Any] = {}
    on_path: set[int] = set()
    stack = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            on_path.discard(key)
            size[key] = 1 + sum(size[id(c)] for c in _children(node))
            continue
        if key in size:
            continue
        nodes[key] = node
        on_path.add(key)
        stack.append((node, True))
        for child in _children(node):
            cid = id(child)
            refs[cid] = refs.get(cid, 0) + 1
            if cid in on_path:
                raise Refused("an alias names a list or mapping that holds the alias itself", child.start_mark,
                              "an alias outside the anchor it names", "an alias inside it")
            if cid not in size:
                stack.append((child, False))
    added = size[id(root)] - len(size)
    if added > ALIAS_VALUES:
        # The line of the anchor whose aliases add the most.
        worst = max((k for k in size if refs.get(k, 0) > 1), key=lambda k: (refs[k] - 1) * size[k])
        got = str(added) if added < 10**12 else "more than 10^12"
        raise Refused("aliases expand the file too far", nodes[worst].start_mark,
                      f"at most {ALIAS_VALUES} values added by *aliases", got)


def _children(node) -> list:
    if isinstance(node, yaml.SequenceNode):
        return node.value
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


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
                raise DuplicateKey(None, None, f"duplicate key '{short(key)}' (first at line {first_lines[key]})",
                                   key_node.start_mark)
            first_lines[key] = line
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.key_lines[key] = line
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(_TAG + "str", _construct_str)
_LineLoader.add_constructor(_TAG + "int", _guarded(_construct_int, "int"))
for _tag in ("bool", "float", "timestamp"):
    _LineLoader.add_constructor(_TAG + _tag, _guarded(_Base.yaml_constructors[_TAG + _tag], _tag))


def load(text: str):
    """Parse YAML text safely; mappings come back as LineDict."""
    try:
        return yaml.load(text, Loader=_LineLoader)  # a SafeLoader subclass: only plain YAML tags
    except RecursionError:  # the pure-Python parser (no libyaml) on very deep nesting
        raise yaml.YAMLError("lists and mappings are nested too deep") from None


def error_line(exc: yaml.YAMLError) -> int | None:
    """The 1-based line a YAML error points at, if it has one."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    return mark.line + 1 if mark is not None else None
