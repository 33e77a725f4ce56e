"""Case files -> validated, expanded ``Case`` objects, or a ``CaseSchemaError`` listing every problem.

``IdRegistry`` is the one check that a case id is defined in one file only: ``load_files`` uses
it, and so can anything else that loads files one at a time (the pytest plugin).
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import yaml

from .. import known
from ..case import Case
from ..errors import CaseSchemaError, SchemaProblem
from ..yaml_lines import LineDict, error_line, load
from .expand import expand
from .keys import CASE_KEYS, FILE_KEYS, ID_PATTERN, ID_RULE
from .messages import Checker, show


class IdRegistry:
    """Where each case id was first defined, across files: a second file with the same id is a
    problem (the same id twice within one file is ``load_file``'s own problem)."""

    def __init__(self) -> None:
        self._first: dict[str, tuple[str, int]] = {}

    def add(self, cases: Iterable[Case]) -> list[SchemaProblem]:
        """Record the ids of one file's cases; a problem for each id another file defined first."""
        problems: list[SchemaProblem] = []
        for case in cases:
            path, line = self._first.setdefault(case.base_id, (case.path, case.line))
            if path != case.path:
                problems.append(SchemaProblem(case.path, case.line, case.base_id, "id",
                                              f"duplicate id (first defined at {path}:{line})",
                                              "an id unique across all case files", show(case.base_id)))
        return list(dict.fromkeys(problems))


def load_file(path: str | Path, display: str | None = None) -> list[Case]:
    """Validate one case file and expand it; raises CaseSchemaError listing every problem.

    ``display`` is how messages (and each Case's ``path``) name the file; the path itself by default.
    Paths written in the file (``expect.golden``) are relative to the folder of ``path``, whatever
    ``display`` says and whatever the current directory."""
    shown = display or str(path)
    ck = Checker(shown, folder=Path(path).parent)  # paths in the file: against where it is, not its name
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CaseSchemaError([SchemaProblem(shown, None, None, None, f"cannot read file: {exc}")]) from None
    try:
        doc = load(text)
    except yaml.YAMLError as exc:
        raise CaseSchemaError([SchemaProblem(shown, error_line(exc), None, None, f"invalid YAML: {yaml_problem(exc)}",
                                             getattr(exc, "expected", None), getattr(exc, "got", None))]) from None
    if doc is None:
        raise CaseSchemaError([SchemaProblem(shown, None, None, None, "file is empty",
                                             "a mapping with a 'cases:' list", "nothing")])
    if not isinstance(doc, LineDict):
        raise CaseSchemaError([SchemaProblem(shown, 1, None, None, "top level must be a mapping",
                                             "a mapping with a 'cases:' list", show(doc))])
    if not ck.keys(doc, FILE_KEYS, "") or "cases" not in doc:
        if "cases" not in doc:
            ck.fail(doc, None, "cases", "is required", "a list of cases", "nothing")
        raise CaseSchemaError(ck.problems)
    raw_cases = doc["cases"]
    if not isinstance(raw_cases, list) or not raw_cases:
        ck.fail(doc, "cases", "cases", "must be a non-empty list", "a list of cases", show(raw_cases))
        raise CaseSchemaError(ck.problems)
    cases: list[Case] = []
    ids: dict[str, int] = {}
    for index, raw in enumerate(raw_cases):
        ck.case_id = None
        if not isinstance(raw, LineDict):
            ck.must_be(doc, "cases", f"cases[{index}]", "a mapping", raw)
            continue
        cid = raw.get("id")
        if not isinstance(cid, str) or not ID_PATTERN.fullmatch(cid):
            ck.fail(raw, "id" if "id" in raw else None, f"cases[{index}].id",
                    ID_RULE if "id" in raw else "is required",
                    "an id like lstm-basic", show(cid) if "id" in raw else "nothing")
            continue
        ck.case_id = cid
        if cid in ids:
            ck.fail(raw, "id", "id", f"duplicate id (first defined at line {ids[cid]})",
                    "an id unique across all case files", show(cid))
            continue
        ids[cid] = raw.line_of("id")
        if not ck.keys(raw, CASE_KEYS, ""):
            continue
        cases += expand(ck, raw, cid, shown)
    if ck.problems:
        raise CaseSchemaError(ck.problems)
    return known.attach(cases, known.rows_for(path))  # the known-differences rows that select each case


def yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's complaint, said for a case-file author."""
    problem = str(getattr(exc, "problem", None) or exc).strip()
    tag = re.search(r"constructor for the tag '([^']*)'", problem)
    if tag:
        # Only plain YAML is read; a tag like !!python/object/apply is never executed.
        name = tag.group(1).replace("tag:yaml.org,2002:", "!!", 1)
        return f"tag '{name}' is not allowed (only plain YAML: mappings, lists, strings, numbers)"
    context, cmark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    pmark = getattr(exc, "problem_mark", None)
    if context and cmark is not None and (pmark is None or cmark.line != pmark.line):
        problem += f" ({context} that starts at line {cmark.line + 1})"
    return problem


def find_case_files(paths: Iterable[str | Path]) -> list[Path]:
    """Every .yaml/.yml file under the given files or directories, sorted (a known-differences
    table, known.yaml, is no case file)."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found += sorted(q for q in p.rglob("*") if q.suffix in (".yaml", ".yml") and q.is_file()
                            and q.name != known.TABLE_NAME)
        else:
            found.append(p)
    return found


def load_files(files: Iterable[str | Path]) -> list[Case]:
    """Load many files; problems from all of them, duplicate ids across files included."""
    problems: list[SchemaProblem] = []
    cases: list[Case] = []
    registry = IdRegistry()
    # The same file named twice (cases/x.yaml and ./cases/x.yaml) is loaded once.
    unique = {Path(f).resolve(): f for f in reversed(list(files))}
    for f in reversed(list(unique.values())):
        try:
            loaded = load_file(f)
        except CaseSchemaError as exc:
            problems += exc.problems
            continue
        duplicates = registry.add(loaded)
        problems += duplicates
        if not duplicates:
            cases += loaded
    if problems:
        raise CaseSchemaError(list(dict.fromkeys(problems)))
    return cases
