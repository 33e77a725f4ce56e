"""Every exception class of the harness, in one place (each says when it is raised).

``HarnessError`` is the root of what the harness raises on purpose.  ``KerasRaised`` is the one
wrapper around an exception that came out of a Keras call itself: the runner matches only it
against ``expect.error``, so an exception anywhere else in the harness is a harness bug, never
a Keras behaviour.
"""
from __future__ import annotations

from dataclasses import dataclass

import yaml


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


class DuplicateKey(yaml.MarkedYAMLError):
    """A YAML mapping names the same key twice (YAML would silently keep the last)."""


class ShapeProblem(ValueError):
    """A model layer cannot take the shape the layer before it returns (a schema problem)."""

    def __init__(self, problem: str, expected: str, got: str):
        super().__init__(problem)
        self.problem, self.expected, self.got = problem, expected, got


class UsageError(HarnessError):
    """The command line asked for something that does not exist (exit code 2)."""


class Unsupported(HarnessError):
    """The case cannot run here (no GPU, other Keras); it is skipped with this reason."""


class NoGPU(Unsupported):
    """A gpu case where no GPU is visible: skipped, or failed under --require-gpu."""


class KerasRaised(HarnessError):
    """A Keras call raised; ``original`` is its exception (the only kind expect.error can match)."""

    def __init__(self, original: BaseException, during: str):
        self.original, self.during = original, during
        super().__init__(f"{type(original).__name__}: {original}".strip())


class CaseFailure(HarnessError, AssertionError):
    """A case ran and Keras disagreed with the reference (or an expectation); carries the result."""

    def __init__(self, result):
        self.result = result
        super().__init__(result.message)


class CaseOverrun(BaseException):
    """Raised in the main thread when a pytest case outlives its time limit: a BaseException, so the
    runner's catch-all (a harness bug) does not take it for a verdict."""


class GoldenError(HarnessError):
    """A golden file is missing, unreadable, truncated, foreign, or would be overwritten."""


class CheckModelError(HarnessError):
    """A saved model or its input file cannot be checked (exit 2); the message says why."""


class MutantError(HarnessError):
    """A planted bug no longer applies to the reference source (its edit found nothing)."""
