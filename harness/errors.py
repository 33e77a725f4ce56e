"""One exception hierarchy for the harness (each class says when it is raised)."""
from __future__ import annotations

from dataclasses import dataclass


class HarnessError(Exception):
    """Root of every error the harness raises on purpose."""


@dataclass(frozen=True)
class SchemaProblem:
    """One thing wrong in a case file, with where it is."""

    path: str
    line: int | None
    case_id: str | None
    field: str | None
    problem: str
    expected: str | None = None
    got: str | None = None

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        parts = [where]
        if self.case_id:
            parts.append(f"case '{self.case_id}'")
        if self.field:
            parts.append(self.field)
        text = ": ".join(parts) + ": " + self.problem
        if self.expected is not None or self.got is not None:
            text += f" (expected {self.expected}, got {self.got})"
        return text


class CaseSchemaError(HarnessError, ValueError):
    """A case file is malformed; carries every problem found in it."""

    def __init__(self, problems: list[SchemaProblem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class UsageError(HarnessError):
    """The command line asked for something that does not exist (exit code 2)."""


class Unsupported(HarnessError):
    """The case cannot run here (no GPU, other Keras); it is skipped with this reason."""


class CaseFailure(HarnessError, AssertionError):
    """A case ran and Keras disagreed with the reference (or an expectation); carries the result."""

    def __init__(self, result):
        self.result = result
        super().__init__(result.message)
