"""One tolerance table by dtype, and how a case's own tolerance overrides it."""
from __future__ import annotations

from dataclasses import dataclass

from . import layers
from .case import Case, OutputKey

# (atol, rtol) for Keras vs the float64 reference, by the case dtype.  Recurrent layers
# accumulate rounding over timesteps, so float32 starts at the 1e-5 that Keras's own RNN
# tests use (docs/peers.md §2); float16/bfloat16 follow TF's AccordingToType (1e-3 / 1e-2)
# with headroom for long sequences; float64 is far above the ~1e-16 errors seen.
DEFAULT_TOLERANCE: dict[str, tuple[float, float]] = {
    "float64": (1e-12, 1e-12),
    "float32": (1e-5, 1e-5),
    "float16": (5e-3, 5e-3),
    "mixed_float16": (5e-3, 5e-3),
    "bfloat16": (5e-2, 5e-2),
    "mixed_bfloat16": (5e-2, 5e-2),
}
# float32 on a GPU with TF32 matmuls allowed (--tf32): a 10-bit mantissa in every matmul moves
# results by ~1e-3 (docs/semantics.md §11), so this row replaces float32 only then.
TF32_ROW = "float32+tf32"
DEFAULT_TOLERANCE[TF32_ROW] = (1e-3, 1e-3)
# (atol, rtol) for Keras's gradients (expect.gradients) vs the float64 backward pass, by the case dtype.
# Measured on cases/gradients (Keras 3.15.1, CPU, 154 gradient checks a flavour): float32 used at most
# 4.9% of (1e-5, 1e-5) on TensorFlow (largest error 2.0e-6), 9.3% on jax, 3.4% on torch, 5.8% on
# tf_keras; float64 at most 0.06% of (1e-12, 1e-12) where float64 is computed (TensorFlow, tf_keras).
# So the output rows hold for gradients too, with the same headroom.  Not measured on a GPU (cuDNN's
# backward kernel): tools/gpu-check runs these cases there.
GRADIENT_TOLERANCE: dict[str, tuple[float, float]] = {
    "float64": (1e-12, 1e-12),
    "float32": (1e-5, 1e-5),
}


@dataclass(frozen=True)
class Tolerance:
    """atol and rtol, and where they came from (printed with every result)."""

    atol: float
    rtol: float
    source: str

    def __str__(self) -> str:
        return f"atol={self.atol:g} rtol={self.rtol:g} [{self.source}]"


def for_row(row: str, source: str | None = None) -> Tolerance:
    """The table's tolerance for one row (a dtype policy name, or the TF32 row)."""
    atol, rtol = DEFAULT_TOLERANCE[row]
    return Tolerance(atol, rtol, source or f"dtype default {row}")


def gradient(case: Case) -> Tolerance:
    """The tolerance of a gradient (expect.gradients: float32 and float64 cases only)."""
    atol, rtol = GRADIENT_TOLERANCE[case.dtype]
    return Tolerance(atol, rtol, f"gradient default {case.dtype}")


def resolve(case: Case, key: OutputKey, tf32: bool = False) -> Tolerance:
    """The tolerance for one output: the case's own (this output, its name in any call, then every
    output), else the table row of the case dtype (the TF32 row for float32 on a GPU with ``tf32``)."""
    tf32_row = case.dtype == "float32" and case.device == "gpu" and tf32
    row = TF32_ROW if tf32_row else layers.DTYPES[case.dtype].tolerance_row
    atol, rtol = DEFAULT_TOLERANCE[row]
    for given_key, label in ((key, f"case tolerance for '{key}'"),
                             (OutputKey(key.name), f"case tolerance for '{key.name}'"), ("*", "case tolerance")):
        if given_key in case.tolerance:
            given = case.tolerance[given_key]
            return Tolerance(given.get("atol", atol), given.get("rtol", rtol), label)
    return for_row(row)
