"""One tolerance table by dtype, and how a case's own tolerance overrides it."""
from __future__ import annotations

from dataclasses import dataclass

from .case import Case

# (atol, rtol) for Keras vs the float64 reference, by the case dtype.  Recurrent layers
# accumulate rounding over timesteps, so float32 starts at the 1e-5 that Keras's own RNN
# tests use (../shared/PEERS.md §2); float16/bfloat16 follow TF's AccordingToType (1e-3 / 1e-2)
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
# results by ~1e-3 (KERAS_RNN_SEMANTICS.md §11), so this row replaces float32 only then.
TF32_ROW = "float32+tf32"
DEFAULT_TOLERANCE[TF32_ROW] = (1e-3, 1e-3)


@dataclass(frozen=True)
class Tolerance:
    """atol and rtol, and where they came from (printed with every result)."""

    atol: float
    rtol: float
    source: str

    def __str__(self) -> str:
        return f"atol={self.atol:g} rtol={self.rtol:g} [{self.source}]"


def resolve(case: Case, output: str) -> Tolerance:
    """The tolerance for one output: the case's own (per output, then for all), else the table."""
    row = TF32_ROW if case.dtype == "float32" and case.device == "gpu" and case.tf32 else case.dtype
    atol, rtol = DEFAULT_TOLERANCE[row]
    source = f"dtype default {row}"
    plain = output.split(".", 1)[1] if output.startswith("call") and "." in output else output
    for key, label in ((output, f"case tolerance for '{output}'"), (plain, f"case tolerance for '{plain}'"),
                       ("*", "case tolerance")):
        if key in case.tolerance:
            given = case.tolerance[key]
            return Tolerance(given.get("atol", atol), given.get("rtol", rtol), label)
    return Tolerance(atol, rtol, source)
