"""The validated, expanded case: frozen data that every later stage reads."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from collections.abc import Mapping


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


@dataclass(frozen=True)
class ErrorSpec:
    """An exception Keras must raise for the case to pass."""

    type: str
    match: str = ""


@dataclass(frozen=True)
class MismatchSpec:
    """A documented Keras behaviour that disagrees with the reference on purpose."""

    outputs: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class Expect:
    """What must hold besides Keras == reference."""

    params: int | None = None
    values: Mapping[str, Any] = field(default_factory=dict)
    error: ErrorSpec | None = None
    mismatch: MismatchSpec | None = None
    kernel: str | None = None  # cudnn | fused | generic: the kernel Keras must run (harness/kernels.py)
    golden: str | None = None  # HDF5 file (resolved path) whose recorded inputs, weights and outputs the case uses
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

    id: str
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
    tolerance: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    requires: Mapping[str, Any] = field(default_factory=dict)
    sweep_point: tuple[tuple[str, Any], ...] = ()
    tf32: bool = False  # TF32 matmuls allowed on the GPU (off by default: it alone moves float32 by ~1e-3)
    model: tuple | None = None  # layer dicts applied in order like keras.Sequential (harness/models.py)

    @property
    def layer_class(self) -> str:
        return self.layer["class"]
