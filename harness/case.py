"""The validated, expanded case: frozen data that every later stage reads."""
from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple
from collections.abc import Mapping

from packaging.specifiers import SpecifierSet


# What an id is made of, outside its brackets and inside: ASCII letters, digits, '_', '.' and '-',
# each a character pytest's -k grammar takes in one word, as it takes ':' (label:value), '+' (between
# the parts) and the brackets.  So a whole id, given to pytest -k, to --lf, in junit or to the CLI, is
# read as one word: ``lstm-basic[units:5+return_state:true+cpu]``.
ID_WORD = re.compile(r"[A-Za-z0-9_.\-]+")


def spell(value: Any) -> str | None:
    """How a sweep value is written in an id, or None where it has no spelling an id can hold:
    true/false/null, numbers (an exponent without '+': 1e308), strings made of ID_WORD characters;
    a list or mapping as its items (keys and values) joined by '-' ([6, 4, 2, 0]: ``6-4-2-0``)."""
    if value is None:
        text = "null"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        text = repr(value).replace("e+", "e")
    elif isinstance(value, str):
        text = value
    elif isinstance(value, (list, tuple, dict)):
        items = [x for pair in value.items() for x in pair] if isinstance(value, dict) else list(value)
        parts = [spell(item) for item in items]
        if not parts or None in parts:
            return None
        text = "-".join(parts)
    else:
        return None
    return text if ID_WORD.fullmatch(text) else None


def sweep_labels(point: tuple[tuple[str, Any], ...]) -> list[str]:
    """The label of each swept path in an id: its last part, or the whole path where two share one."""
    lasts = [path.rsplit(".", 1)[-1] for path, _ in point]
    return [last if lasts.count(last) == 1 else path for (path, _), last in zip(point, lasts)]


def _parts(point: tuple[tuple[str, Any], ...]) -> list[str]:
    parts = []
    for label, (path, value) in zip(sweep_labels(point), point):
        text = spell(value)
        if text is None or not ID_WORD.fullmatch(label):  # the schema refuses such a sweep first
            raise ValueError(f"sweep {path}: {value!r} has no spelling an id can hold")
        parts.append(f"{label}:{text}")
    return parts


def point_id(base_id: str, point: tuple[tuple[str, Any], ...]) -> str:
    """``lstm-basic[units:5+return_state:true]``: the id of a sweep point, device left off (no
    sweep: the base id)."""
    return f"{base_id}[{'+'.join(_parts(point))}]" if point else base_id


def case_id(base_id: str, point: tuple[tuple[str, Any], ...], device: str, mode: str = "eager") -> str:
    """The full id of one expanded case, the device (and a mode other than eager) last in its
    bracket: ``lstm-basic[units:5+return_state:true+cpu]``, ``lstm-basic[cpu]``,
    ``lstm-basic[cpu+xla]``.  Eager cases keep the ids they had before modes (harness/modes.py)."""
    return f"{base_id}[{'+'.join([*_parts(point), device, *([mode] if mode != 'eager' else [])])}]"


def _legacy_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def legacy_point_id(base_id: str, point: tuple[tuple[str, Any], ...]) -> str:
    """The id of a sweep point as keras-equiv 0.1 wrote it, ``lstm-basic[units=5,return_state=true]``
    (the full id added ``@cpu``).  Two things still read it: the seed of a sweep point hashes it, so
    every case keeps the random data it was checked and recorded with, and golden files recorded
    then name their cases with it (golden_format accepts them)."""
    if not point:
        return base_id
    return base_id + "[" + ",".join(f"{label}={_legacy_value(v)}"
                                    for label, (_, v) in zip(sweep_labels(point), point)) + "]"


class OutputKey(NamedTuple):
    """One output of a run: its name and, for stateful runs, the 1-based call that returned it.

    Written ``output`` or ``call2.output`` (the spelling case files use for such names)."""

    name: str
    call: int | None = None

    def __str__(self) -> str:
        return self.name if self.call is None else f"call{self.call}.{self.name}"


@dataclass(frozen=True)
class InputSpec:
    """Shape and content of the input sequence."""

    batch: int
    timesteps: int
    features: int
    data: str = "normal"  # normal | uniform | one_hot | arange | values
    values: Any = None  # nested (batch, timesteps, features) list when data == "values"
    scale: float = 1.0


@dataclass(frozen=True)
class MaskSpec:
    """Which steps are valid; ``via`` says how Keras receives it."""

    kind: str  # right_padded | left_padded | random | explicit
    lengths: tuple[int, ...] | None = None
    rate: float | None = None
    values: Any = None
    via: str = "argument"  # argument | masking_layer


class GoldenRef(NamedTuple):
    """``expect.golden``: a golden file (path resolved against the case file) and the recorded
    case to use from it (None: the case's own id)."""

    path: str
    case_id: str | None = None


@dataclass(frozen=True)
class ErrorSpec:
    """An exception Keras must raise for the case to pass."""

    type: str
    match: str = ""

    def matches(self, exc: BaseException) -> bool:
        """Whether ``exc`` is this exception: its type or a base class by name, its message by regex."""
        names = {cls.__name__ for cls in type(exc).__mro__}
        return self.type in names and re.search(self.match, str(exc)) is not None


@dataclass(frozen=True)
class MismatchSpec:
    """A documented Keras behaviour that disagrees with the reference on purpose."""

    outputs: tuple[OutputKey, ...]
    reason: str


@dataclass(frozen=True)
class Expect:
    """What must hold besides Keras == reference."""

    params: int | None = None
    values: Mapping[OutputKey, Any] = field(default_factory=dict)  # nested lists from an outside source
    error: ErrorSpec | None = None
    mismatch: MismatchSpec | None = None
    kernel: str | None = None  # cudnn | fused | generic: the kernel Keras must run (harness/kernels.py)
    golden: GoldenRef | None = None  # the recorded inputs, weights and outputs the case uses
    layer_params: tuple[int, ...] | None = None  # model cases: count_params() of each layer, in order
    # Gradients of a seeded projection of every output (inputs, initial states, weights): Keras's autodiff
    # against the NumPy backward pass (checks.gradients).
    gradients: bool = False
    output_shape: tuple[int, ...] | None = None  # model cases: the final output's shape, batch first


@dataclass(frozen=True)
class Known:
    """One ``known:`` entry: what the case does instead under some flavours, Keras versions,
    devices, dtypes or modes (an empty condition holds everywhere).  Where every condition holds, the
    first such entry replaces the case's ``expect.mismatch`` / ``expect.error`` (a documented
    difference that stops happening still fails), or skips the case with its reason."""

    line: int
    flavours: tuple[str, ...] = ()
    keras: str = ""  # a version specifier, ">=3.2,<3.5" (packaging's syntax)
    devices: tuple[str, ...] = ()
    dtypes: tuple[str, ...] = ()
    modes: tuple[str, ...] = ()
    mismatch: MismatchSpec | None = None
    error: ErrorSpec | None = None
    skip: str = ""  # the case cannot run there, and why

    def holds(self, flavour: str, keras_version: str, device: str, dtype: str, mode: str = "eager") -> bool:
        """Whether every condition of the entry holds for this run of the case."""
        return ((not self.flavours or flavour in self.flavours)
                and (not self.keras or SpecifierSet(self.keras).contains(keras_version, prereleases=True))
                and (not self.devices or device in self.devices)
                and (not self.dtypes or dtype in self.dtypes)
                and (not self.modes or mode in self.modes))


@dataclass(frozen=True)
class CallsSpec:
    """Consecutive calls of a stateful layer, and where its state is reset."""

    count: int
    reset_before: tuple[int, ...] = ()  # 1-based call numbers preceded by reset_state()
    batches: tuple[int, ...] | None = None  # batch size per call (only to show Keras's error when it changes)


@dataclass(frozen=True)
class Case:
    """One expanded case: a sweep point on one device, run in one mode (harness/modes.py)."""

    __test__ = False  # not a pytest test class

    base_id: str
    path: str
    line: int
    about: str
    layer: Mapping[str, Any]  # a model case: its first recurrent layer (for tools that read one layer)
    input: InputSpec
    mask: MaskSpec | None = None
    initial_state: Any = None  # None | "zeros" | "random" | list of nested lists
    weights: Any = "keras"  # "keras" | "random" | {name: array or number}
    dtype: str = "float32"
    device: str = "cpu"
    mode: str = "eager"  # eager | function | xla | predict | symbolic (harness/modes.py)
    seed: int = 0
    training: bool = False
    calls: CallsSpec | None = None
    expect: Expect = field(default_factory=Expect)
    tolerance: Mapping[OutputKey | str, Mapping[str, float]] = field(default_factory=dict)  # "*": every output
    requires: Mapping[str, Any] = field(default_factory=dict)
    sweep_point: tuple[tuple[str, Any], ...] = ()
    model: tuple | None = None  # layer dicts applied in order like keras.Sequential (keras_model.py)
    known: tuple[Known, ...] = ()  # per flavour / Keras version / device / dtype expectations
    limits: Mapping[str, int] = field(default_factory=dict)  # the caps its limits: section set (the rest: defaults)

    @cached_property
    def id(self) -> str:
        """``base[sweep point+device+mode]``: unique across the library (case_id)."""
        return case_id(self.base_id, self.sweep_point, self.device, self.mode)

    @cached_property
    def point_id(self) -> str:
        """The id without the device and mode: the same sweep point on every device, in every mode."""
        return point_id(self.base_id, self.sweep_point)

    def here(self, flavour: str, keras_version: str) -> Case | str:
        """This case as it is expected to behave under ``flavour`` and ``keras_version``: the first
        ``known:`` entry that holds replaces ``expect.mismatch`` and ``expect.error``; a skip entry
        gives its reason (a string) instead."""
        for entry in self.known:
            if entry.holds(flavour, keras_version, self.device, self.dtype, self.mode):
                if entry.skip:
                    return entry.skip
                expect = dataclasses.replace(self.expect, mismatch=entry.mismatch, error=entry.error)
                return dataclasses.replace(self, expect=expect)
        return self

    @property
    def layer_class(self) -> str:
        return self.layer["class"]
