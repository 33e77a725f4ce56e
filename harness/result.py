"""What a run of one case found: verdicts, checks and the result, as frozen data.

checks.py makes the ``Check`` rows, runner.py the ``CaseResult``; report.py, golden.py, the CLI
and the pytest plugin only read them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from collections.abc import Mapping

from .case import Case
from .compare import Comparison


class Verdict(str, Enum):
    """The outcome of one case."""

    PASS = "pass"
    FAIL = "fail"  # a check failed: Keras, the reference or an expectation disagree
    ERROR = "error"  # Keras raised unexpectedly, a golden file is unusable, or the harness has a bug
    SKIP = "skip"  # the case cannot run here (device, flavour, Keras version)

    def __str__(self) -> str:
        return self.value

    @property
    def failed(self) -> bool:
        return self in (Verdict.FAIL, Verdict.ERROR)


class Pass(str, Enum):
    """Why a passing check passed when Keras did not simply agree with the reference."""

    AGREED = "agreed"
    EXPECTED_ERROR = "expected error"  # Keras raised what expect.error names
    DOCUMENTED_MISMATCH = "documented mismatch"  # an expect.mismatch output still differs

    def __str__(self) -> str:
        return self.value


class Side(str, Enum):
    """Whose numbers a check judged."""

    KERAS = "keras"
    REFERENCE = "reference"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Check:
    """One thing that was checked for a case: an output, a parameter count, an expectation."""

    name: str
    passed: bool
    detail: str
    comparison: Comparison | None = None
    side: Side = Side.KERAS
    how: Pass = Pass.AGREED  # for a passing check: agreement, or one of the documented exceptions
    raised: str = ""  # EXPECTED_ERROR: the exception type Keras raised


@dataclass(frozen=True)
class CaseResult:
    """The verdict for one case, with every check behind it."""

    case: Case
    verdict: Verdict
    checks: tuple[Check, ...] = ()
    message: str = ""
    seconds: float = 0.0
    keras_seconds: float = 0.0
    reference_seconds: float = 0.0
    device: str = ""
    kernel: str = ""  # cudnn | fused | generic (harness/kernels.py); "" when Keras did not run
    versions: Mapping[str, str] = field(default_factory=dict)
    arrays: object = None  # data.Arrays, kept only with RunOptions(keep=True): what golden files record
    keras_run: object = None  # keras_layer.KerasRun, kept likewise
    reproduce: str = ""  # the command that reruns this case, when not `keras-equiv run PATH::ID` (golden verify)
    findings: object = None  # diagnosis.findings.Findings: why a failing layer case disagrees (None: not diagnosed)
    diagnosis_problem: str = ""  # the diagnosis itself raised (a harness bug, shown with the failure)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    @property
    def worst(self) -> Comparison | None:
        """The value comparison closest to (or furthest over) its tolerance."""
        comps = [c.comparison for c in self.checks if c.comparison is not None and c.comparison.tolerance]
        return max(comps, key=lambda c: c.ratio, default=None)
