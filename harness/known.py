"""Known differences: a ``known.yaml`` table beside the case files, each row saying once, as data,
where a Keras flavour, a Keras release, a device, a dtype or an execution mode makes some cases behave otherwise than
the reference (in the style of PyTorch's OpInfo skips and xfails keyed by device and dtype).

A ``known.yaml`` applies to the case files in its folder and below (like a conftest.py); a row::

    - about: what differs and why (required), naming the Keras source or the upstream issue
      flavour: jax                  # or a list; also keras: ">=3.0,<3.16", device, dtype, mode
      cases: "float64"              # which cases: a pytest -k expression (ids, files, markers)
      markers: "not model"          # and/or a pytest -m expression
      mismatch: [output, h]         # the outputs that differ (all: every output, and the gradients;
                                    # symbolic: the output shapes Keras computes for an unknown
                                    # batch; carried: each stateful call's that starts from a carried
                                    # state; gradients: expect.gradients' checks as one), or
      error: {type: ValueError, match: "..."}  # what Keras raises there, or
      skip: "why the case cannot run there"      # ... or
      agree: "why Keras matches the reference there"  # its own mismatch or error does not happen there

Where a row's conditions hold, its outcome replaces the case's expect.mismatch / expect.error
(``Case.here``): the run stays green while the difference lasts and fails the day it stops.
"""
from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable
from pathlib import Path

import yaml
from packaging.specifiers import InvalidSpecifier, SpecifierSet

from . import flavours, layers
from .modes import MODES
from . import keras_api as api
from .case import Case, ErrorSpec, Known, MismatchSpec, OutputKey
from .checks import GRADIENTS, SYMBOLIC
from .errors import CaseSchemaError, SchemaProblem, UsageError
from .expressions import Keywords, keyword_matcher, keywords, marker_matcher
from .yaml_lines import LineDict, error_line, load

TABLE_NAME = "known.yaml"
ROW_KEYS = ("about", "flavour", "keras", "device", "dtype", "mode", "cases", "markers", "mismatch", "error", "skip",
            "agree")
# What a row says happens where it holds; ``agree``: the case's own mismatch or error does not
# happen there, and the case is checked against the reference like any other.
OUTCOMES = ("mismatch", "error", "skip", "agree")
ALL_OUTPUTS = "all"
# The outputs of every call of a stateful case that starts from the state the call before left
# (not the first call, nor one after reset_state()): where a state is not carried, they differ.
CARRIED = "carried"


def carried(case: Case, key: OutputKey) -> bool:
    """Whether output ``key`` of ``case`` comes from a call that starts from a carried state."""
    return case.calls is not None and key.call is not None and key.call > 1 \
        and key.call not in case.calls.reset_before


@dataclasses.dataclass(frozen=True)
class Row:
    """One validated row of a known-differences table."""

    path: str
    line: int
    about: str
    flavours: tuple[str, ...] = ()
    keras: str = ""
    devices: tuple[str, ...] = ()
    dtypes: tuple[str, ...] = ()
    modes: tuple[str, ...] = ()
    cases: str = ""
    markers: str = ""
    mismatch: tuple[str, ...] = ()  # output names, or (ALL_OUTPUTS,)
    error: ErrorSpec | None = None
    skip: str = ""
    agree: str = ""

    def selects(self, case: Keywords) -> bool:
        """Whether the row's -k / -m expressions take the case of these keywords (flavour, release, device, dtype
        and mode are decided when the case runs, --device and --mode may move it: Known.holds)."""
        return ((not self.cases or keyword_matcher(self.cases)(case))
                and (not self.markers or marker_matcher(self.markers)(case)))

    def known(self, case: Case) -> Known:
        """The row as a Known entry of ``case`` (its outputs named as the case names them)."""
        mismatch = None
        if self.mismatch:
            keys = [key for key in layers_output_keys(case)
                    if ALL_OUTPUTS in self.mismatch or key.name in self.mismatch or str(key) in self.mismatch
                    or (CARRIED in self.mismatch and carried(case, key))]
            keys += [SYMBOLIC] if SYMBOLIC.name in self.mismatch else []  # the symbolic output shapes
            if case.expect.gradients and (ALL_OUTPUTS in self.mismatch or GRADIENTS.name in self.mismatch):
                keys.append(GRADIENTS)  # the gradient checks, as one
            mismatch = MismatchSpec(tuple(keys), f"{self.about} ({self.path}:{self.line})")
        return Known(line=self.line, flavours=self.flavours, keras=self.keras, devices=self.devices,
                     dtypes=self.dtypes, modes=self.modes, mismatch=mismatch, error=self.error,
                     skip=f"{self.skip} ({self.path}:{self.line})" if self.skip else "")


def layers_output_keys(case: Case) -> list[OutputKey]:
    """The outputs a case compares with the reference (a model case: its output and each layer's)."""
    if case.model is not None:
        return [OutputKey("output"), *(OutputKey(f"model[{i}]") for i in range(len(case.model)))]
    return layers.output_keys(api.with_defaults(case.layer), case.calls.count if case.calls else None)


def _problem(path: str, node, key, field: str, problem: str) -> SchemaProblem:
    line = node.line_of(key) if isinstance(node, LineDict) and key is not None else getattr(node, "line", None)
    return SchemaProblem(path, line, None, field, problem)


def _names(value, allowed: Iterable[str] | None) -> tuple[str, ...] | str:
    """A name or a list of names as a tuple; a message (str) when it is not one."""
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(v, str) and v for v in items):
        return "must be a name or a non-empty list of names"
    if allowed is not None:
        allowed = tuple(allowed)
        bad = [v for v in items if v not in allowed]
        if bad:
            return f"unknown {bad[0]!r} (expected one of {', '.join(allowed)})"
    return tuple(items)


def _row(path: str, index: int, raw) -> tuple[Row | None, list[SchemaProblem]]:
    where = f"known[{index}]"
    if not isinstance(raw, LineDict):
        return None, [_problem(path, raw, None, where, "must be a mapping")]
    problems = [_problem(path, raw, key, f"{where}.{key}", f"unknown key (expected one of {', '.join(ROW_KEYS)})")
                for key in raw if key not in ROW_KEYS]
    fields: dict = {}
    about = raw.get("about")
    if not isinstance(about, str) or not about.strip():
        problems.append(_problem(path, raw, "about" if "about" in raw else None, f"{where}.about",
                                 "is required: what differs and why, naming the Keras source or issue"))
    for key, target, allowed in (("flavour", "flavours", flavours.FLAVOURS), ("device", "devices", api.DEVICES),
                                 ("dtype", "dtypes", tuple(layers.DTYPES)), ("mode", "modes", MODES)):
        if key in raw:
            got = _names(raw[key], allowed)
            if isinstance(got, str):
                problems.append(_problem(path, raw, key, f"{where}.{key}", got))
            else:
                fields[target] = got
    if "keras" in raw:
        try:
            SpecifierSet(str(raw["keras"]))
            fields["keras"] = str(raw["keras"])
        except InvalidSpecifier:
            problems.append(_problem(path, raw, "keras", f"{where}.keras",
                                     f"must be a version specifier such as '>=3.2,<3.5', got {raw['keras']!r}"))
    for key, make in (("cases", keyword_matcher), ("markers", marker_matcher)):
        if key in raw:
            try:
                if not isinstance(raw[key], str):
                    raise UsageError(f"must be a string, got {raw[key]!r}")
                make(raw[key])
                fields[key] = raw[key]
            except UsageError as exc:
                problems.append(_problem(path, raw, key, f"{where}.{key}", str(exc)))
    given = [key for key in OUTCOMES if key in raw]
    if len(given) != 1:
        problems.append(_problem(path, raw, None, where, "needs exactly one of mismatch, error, skip, agree"
                                 + (f" (got {', '.join(given)})" if given else "")))
    elif given[0] == "mismatch":
        got = _names(raw["mismatch"], None)
        if isinstance(got, str):
            problems.append(_problem(path, raw, "mismatch", f"{where}.mismatch",
                                     "must be an output name, a list of them, or all"))
        else:
            fields["mismatch"] = got
    elif given[0] == "error":
        spec = raw["error"]
        if not isinstance(spec, dict) or not isinstance(spec.get("type"), str) or \
                not isinstance(spec.get("match", ""), str) or set(spec) - {"type", "match"}:
            problems.append(_problem(path, raw, "error", f"{where}.error",
                                     "must be {type: ExceptionName, match: regex}"))
        else:
            fields["error"] = ErrorSpec(spec["type"], spec.get("match", ""))
    elif given[0] in ("skip", "agree"):
        key = given[0]
        if not isinstance(raw[key], str) or not raw[key].strip():
            problems.append(_problem(path, raw, key, f"{where}.{key}", "must say why the case cannot run there"
                                     if key == "skip" else "must say why Keras matches the reference there"))
        else:
            fields[key] = raw[key]
    if problems:
        return None, problems
    return Row(path, raw.line, about.strip(), **fields), []


def load_table(path: str | Path, display: str | None = None) -> tuple[Row, ...]:
    """A validated known-differences table; CaseSchemaError naming file, line and field otherwise."""
    shown = display or str(path)
    try:
        doc = load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise CaseSchemaError([SchemaProblem(shown, None, None, None, f"cannot read file: {exc}")]) from None
    except yaml.YAMLError as exc:
        raise CaseSchemaError([SchemaProblem(shown, error_line(exc), None, None, f"invalid YAML: {exc}")]) from None
    if not isinstance(doc, LineDict) or set(doc) != {"known"} or not isinstance(doc["known"], list):
        raise CaseSchemaError([SchemaProblem(shown, 1, None, None, "a known-differences table is a mapping "
                                             "with one key, 'known:', holding a list of rows")])
    rows, problems = [], []
    for index, raw in enumerate(doc["known"]):
        row, found = _row(shown, index, raw)
        problems += found
        if row is not None:
            rows.append(row)
    if problems:
        raise CaseSchemaError(problems)
    return tuple(rows)


def _shown(path: Path) -> str:
    """A table's path as messages and reasons name it: relative to the current directory if below it."""
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


@functools.lru_cache(maxsize=64)
def _table(table: Path, stamp: tuple[int, int], cwd: Path) -> tuple[Row, ...]:
    """One table's rows, read once while the file is unchanged (every folder below it shares it)."""
    return load_table(table, _shown(table))


def rows_for(case_file: str | Path) -> tuple[Row, ...]:
    """The rows of every known.yaml in the case file's folder and its parents, nearest first."""
    folder = Path(case_file).resolve().parent
    rows: list[Row] = []
    for directory in (folder, *folder.parents):
        table = directory / TABLE_NAME
        if table.is_file():
            stat = table.stat()
            rows += _table(table, (stat.st_mtime_ns, stat.st_size), Path.cwd())
    return tuple(rows)


def attach(cases: list[Case], rows: tuple[Row, ...]) -> list[Case]:
    """Each case with the rows that select it appended to its own known entries."""
    if not rows:
        return cases
    return [dataclasses.replace(c, known=c.known + tuple(r.known(c) for r in rows if r.selects(kw)))
            for c in cases for kw in (keywords(c),)]
