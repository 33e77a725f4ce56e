"""What Keras warned while check-model loaded and ran the model, and where that contradicts what it saw.

Keras speaks through ``warnings.warn`` (keras/src/layers/layer.py) and through the ``absl``
logger (legacy .h5 notices); both are captured, counted once per distinct message, and kept in
the report.  One claim can be held against the recording of the recurrent layers' calls:

  ``Layer 'conv' (of type Conv1D) was passed an input with a mask attached to it.  However, this
  layer does not support masking and will therefore destroy the mask information.  Downstream
  layers will not see the mask.`` (keras/src/layers/layer.py ``Layer.__call__``, Keras 3.15.1)

Keras says it while building the graph, from the symbolic masks.  A recurrent layer downstream
of that layer (or inside it, when it is a model) may still get a mask at run time: an eager
tensor keeps the mask through a nested Sequential, and a mask passed explicitly (``mask=``)
reaches the layer whatever the layers before it did.  Each such call is a contradiction the
report names.
"""
from __future__ import annotations

import contextlib
import logging
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from .calls import LayerCall, call_label

LOGGERS = ("absl", "keras", "tensorflow")
MASK_DESTROYED = re.compile(
    r"Layer '(?P<layer>[^']+)' \(of type [^)]+\) was passed an input with a mask attached to it\. However, this "
    r"layer does not support masking and will therefore destroy the mask information\. Downstream layers will "
    r"not see the mask\.")


@dataclass(frozen=True)
class Warned:
    """One distinct warning or log record: its text, kind, where it came from, when, how often."""

    message: str
    category: str  # the warning class, or ``log absl WARNING``
    source: str  # file:line, from the package folder on
    during: str  # "loading the model", "running the model", or both
    count: int = 1

    def to_json(self) -> dict:
        return {"message": self.message, "category": self.category, "source": self.source,
                "during": self.during, "count": self.count}


@dataclass(frozen=True)
class Contradiction:
    """A recurrent layer call that received a mask although a Keras warning said it would not."""

    warning: str
    layer: str  # the layer call's label in the report
    valid: int  # mask elements that are True
    steps: int  # mask elements in all

    def to_json(self) -> dict:
        return {"warning": self.warning, "layer": self.layer, "valid_steps": self.valid, "steps": self.steps}


def _source(filename: str, line: int) -> str:
    return f"{filename.replace(chr(92), '/').split('site-packages/')[-1]}:{line}"


class _Records(logging.Handler):
    """Keeps the WARNING-or-worse records of the Keras loggers (they still reach their own handlers)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def capture(during: str, into: list[Warned]) -> Iterator[None]:
    """Every warning and Keras log record while the block runs, appended to ``into``."""
    handler = _Records()
    loggers = [logging.getLogger(name) for name in LOGGERS]
    for logger in loggers:
        logger.addHandler(handler)
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")  # a warning already shown in this process counts again
            yield
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
        into += [Warned(str(w.message), w.category.__name__, _source(w.filename, w.lineno), during)
                 for w in caught]
        into += [Warned(r.getMessage().strip(), f"log {r.name} {r.levelname}", _source(r.pathname, r.lineno), during)
                 for r in handler.records]


def summarise(raw: list[Warned]) -> list[Warned]:
    """One entry per distinct message, in the order first seen, with its count and phases."""
    merged: dict[tuple[str, str, str], Warned] = {}
    for w in raw:
        key = (w.message, w.category, w.source)
        seen = merged.get(key)
        if seen is None:
            merged[key] = w
        else:
            during = seen.during if w.during in seen.during.split(", ") else f"{seen.during}, {w.during}"
            merged[key] = replace(seen, count=seen.count + w.count, during=during)
    return list(merged.values())


def upstream(operation) -> set[str]:
    """The names of the layers whose outputs reach ``operation`` in the graphs it is called in."""
    names: set[str] = set()
    seen: set[int] = set()
    todo = list(getattr(operation, "_inbound_nodes", None) or [])
    while todo:
        node = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        for parent in getattr(node, "parent_nodes", None) or []:
            names.add(parent.operation.name)
            todo.append(parent)
    return names


def _affected(name: str, layer, around: tuple) -> bool:
    """Whether a layer is downstream of (or inside) the layer called ``name``."""
    return any(m.name == name for m in around[1:]) or \
        any(name in upstream(op) for op in (layer, *around[1:]))


def contradictions(warned: list[Warned], nested: list[tuple[str, Any, tuple]],
                   recorded: dict[int, list[LayerCall]]) -> list[Contradiction]:
    """Each recorded call that got a mask from a model where Keras warned the mask was destroyed before it."""
    out = []
    for w in warned:
        claim = MASK_DESTROYED.search(w.message)
        if claim is None:
            continue
        for path, layer, around in nested:
            made = recorded.get(id(layer), [])
            if not made or not _affected(claim["layer"], layer, around):
                continue
            for index, call in enumerate(made, start=1):
                if call.mask is not None:
                    valid = int(call.mask.astype(bool).sum())
                    out.append(Contradiction(w.message, call_label(path, index, len(made)), valid,
                                             int(call.mask.size)))
    return out


def notes(found: list[Contradiction]) -> list[str]:
    """One report note per warning: the calls that received a mask although it said they would not."""
    by_warning: dict[str, list[Contradiction]] = {}
    for c in found:
        by_warning.setdefault(c.warning, []).append(c)
    out = []
    for warning, items in by_warning.items():
        parts = [f"{c.layer} ({c.valid} of {c.steps} steps valid)" for c in items]
        if len(items) == 1:
            who = f"{items[0].layer} did receive a mask ({items[0].valid} of {items[0].steps} steps valid)"
        else:
            who = f"{', '.join(parts[:-1])} and {parts[-1]} did receive a mask"
        out.append(f'Keras warned "{warning}", but {who}')
    return out
