"""The validated, expanded case: frozen data that every later stage reads."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple
from collections.abc import Mapping


def format_value(value: Any) -> str:
    """A sweep value as written in an expanded id (YAML spelling for true/false/null)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def point_id(base_id: str, point: tuple[tuple[str, Any], ...]) -> str:
    """``lstm-basic[units=5,return_state=true]``: the id of a sweep point, device left off.

    Each swept path is labelled by its last part, or in full where two paths share one."""
    if not point:
        return base_id
    lasts = [path.rsplit(".", 1)[-1] for path, _ in point]
    labels = [last if lasts.count(last) == 1 else path for (path, _), last in zip(point, lasts)]
    return base_id + "[" + ",".join(f"{label}={format_value(v)}" for label, (_, v) in zip(labels, point)) + "]"


def case_id(base_id: str, point: tuple[tuple[str, Any], ...], device: str) -> str:
    """The full id of one expanded case: the sweep point's id on one device."""
    return f"{point_id(base_id, point)}@{device}"


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
    output_shape: tuple[int, ...] | None = None  # model cases: the final output's shape, batch first


@dataclass(frozen=True)
class CallsSpec:
    """Consecutive calls of a stateful layer, and where its state is reset."""

    count: int
    reset_before: tuple[int, ...] = ()  # 1-based call numbers preceded by reset_state()
    batches: tuple[int, ...] | None = None  # batch size per call (only to show Keras's error when it changes)


@dataclass(frozen=True)
class Case:
    """One expanded case: a sweep point on one device."""

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
    seed: int = 0
    training: bool = False
    calls: CallsSpec | None = None
    expect: Expect = field(default_factory=Expect)
    tolerance: Mapping[OutputKey | str, Mapping[str, float]] = field(default_factory=dict)  # "*": every output
    requires: Mapping[str, Any] = field(default_factory=dict)
    sweep_point: tuple[tuple[str, Any], ...] = ()
    model: tuple | None = None  # layer dicts applied in order like keras.Sequential (keras_model.py)

    @cached_property
    def id(self) -> str:
        """``base[sweep point]@device``: unique across the library."""
        return case_id(self.base_id, self.sweep_point, self.device)

    @cached_property
    def point_id(self) -> str:
        """The id without the device: the same sweep point on every device."""
        return point_id(self.base_id, self.sweep_point)

    @property
    def layer_class(self) -> str:
        return self.layer["class"]
