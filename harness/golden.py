"""Golden HDF5 files: record what Keras computed for cases, load it back to verify elsewhere.

The layout, and how a file is read back and validated, is golden_format.py's.
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import shlex
from pathlib import Path

import numpy as np

from . import __version__, layers
from . import keras_api as api
from .case import Case
from .data import Arrays
from .errors import GoldenError, UsageError
from .golden_format import (FORMAT, FORMAT_VERSION, MALFORMED, NOTHING_RECORDED, WIDENED, h5py_module, item_kind,
                            legacy_names, open_file, read_case)
from .result import CaseResult

__all__ = ["FORMAT", "FORMAT_VERSION", "MALFORMED", "NOTHING_RECORDED", "case_arrays", "load", "record", "reproduce"]


def reproduce(path: str | Path, case_id: str, keras: str | None = None, device: str | None = None) -> str:
    """The command that reruns one recorded case of a golden file as verify did: ``keras``, the
    --keras flavour verify ran under (if not the default); ``device``, the device it re-targeted the
    cases to (then give the id without the device, ``Case.point_id``: the recorded one differs)."""
    command = ["keras-equiv", "verify", str(path), "--case", case_id]
    if keras:
        command += ["--keras", keras]
    if device:
        command += ["--device", device]
    return shlex.join(command)


# ---------------------------------------------------------------- record

def _case_json(case: Case) -> str:
    return json.dumps({
        "id": case.id, "base_id": case.base_id, "sweep_point": [list(p) for p in case.sweep_point],
        "about": case.about, "path": case.path,
        "line": case.line, "layer": dict(case.layer),
        "input": {"batch": case.input.batch, "timesteps": case.input.timesteps,
                  "features": case.input.features},
        "mask_via": case.mask.via if case.mask else None, "dtype": case.dtype, "device": case.device,
        "seed": case.seed, "training": case.training,
        "calls": dataclasses.asdict(case.calls) if case.calls else None,
        "tolerance": {str(k): dict(v) for k, v in case.tolerance.items()},
        "mismatch": {"outputs": [str(k) for k in case.expect.mismatch.outputs],
                     "reason": case.expect.mismatch.reason} if case.expect.mismatch else None,
        "params": case.expect.params,
        "limits": dict(case.limits),
    })


def _write_tree(group, tree: dict) -> None:
    for name, value in tree.items():
        if isinstance(value, dict):
            _write_tree(group.require_group(name), value)
        else:
            group.create_dataset(name, data=np.asarray(value))


def _write_arrays(group, tree: dict) -> None:
    """Weights or outputs: each array in its own dtype (bfloat16 widened), which its dtype attribute names."""
    for name, value in tree.items():
        if isinstance(value, dict):
            _write_arrays(group.require_group(name), value)
            continue
        array = np.asarray(value)
        stored = array.astype(WIDENED[array.dtype.name]) if array.dtype.name in WIDENED else array
        group.create_dataset(name, data=stored).attrs["dtype"] = array.dtype.name


def recordable(result: CaseResult) -> bool:
    """Whether a result can be recorded: Keras ran the layer and returned what its outputs are named by.
    An expect.error case is not (the case JSON cannot say that Keras must raise)."""
    run = result.keras_run
    return (run is not None and result.arrays is not None and not getattr(run, "problem", "")
            and result.case.expect.error is None)


def record(results: list[CaseResult], out: str | Path, force: bool = False) -> int:
    """Write the results (run with keep=True) to ``out``; returns how many cases were written.

    GoldenError when none can be recorded (nothing is written), and when what was written does
    not load back (a harness bug: nothing is written either)."""
    h5py = h5py_module()
    out = Path(out)
    if out.exists() and not force:
        raise GoldenError(f"{out}: already exists (use --force to overwrite)")
    usable = [r for r in results if recordable(r)]
    if not usable:
        raise GoldenError(NOTHING_RECORDED)
    tmp = out.with_name(out.name + ".tmp")
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs.update({"format": FORMAT, "format_version": FORMAT_VERSION, "harness": __version__,
                            "created": datetime.datetime.now(datetime.timezone.utc).isoformat()})
            cases = f.create_group("cases")
            for r in usable:
                g = cases.create_group(r.case.id)
                run = r.keras_run
                g.attrs.update({"case": _case_json(r.case), "params": run.params, "device": run.device,
                                "policy": r.case.dtype, "compute": layers.DTYPES[r.case.dtype].compute,
                                "dtype": r.case.dtype, "kernel": run.kernel,
                                "tf32": ("on" if run.tf32 else "off") if run.device == "gpu" else "n/a (cpu)",
                                "recorded": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                                **{k: str(v) for k, v in run.versions.items()}})
                _write_tree(g.create_group("inputs"), {f"call{i}": x for i, x in enumerate(r.arrays.inputs, 1)})
                if r.arrays.mask is not None:
                    g.create_dataset("mask", data=np.asarray(r.arrays.mask, dtype=np.uint8))
                if r.arrays.initial_state is not None:
                    _write_tree(g.create_group("initial_state"),
                                {str(i): s for i, s in enumerate(r.arrays.initial_state)})
                _write_arrays(g.create_group("weights"), run.weights)
                _write_arrays(g.create_group("outputs"), {str(k): v for k, v in run.outputs.items()})
        load(tmp)  # never write a file verify would refuse
    except GoldenError as exc:
        tmp.unlink(missing_ok=True)
        raise GoldenError(f"{out}: not written: what was recorded does not load back (a harness bug): {exc}") \
            from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(out)  # never leave a half-written golden file under the real name
    return len(usable)


# ---------------------------------------------------------------- load

def load(path: str | Path, case_id: str | None = None,
         device: str | None = None) -> list[tuple[Case, Arrays, dict]]:
    """(case, recorded arrays with golden outputs, provenance) for each case in a golden file.

    ``case_id``: only that case (its full id, or its id without the device); ``device``: the cases
    re-targeted to that device (their ids then name that device).  Every case of the file is checked
    either way; provenance holds the group's attributes, with ``policy``, ``compute`` and
    ``output_dtypes`` (output -> the NumPy dtype Keras returned it in) for older files too."""
    if device is not None and device not in api.DEVICES:
        raise UsageError(f"unknown device {device!r} (expected one of {', '.join(api.DEVICES)})")
    out = []
    with open_file(path) as f:
        try:
            for name, item in f.items():
                if name != "cases":
                    raise GoldenError(f"{path}: {MALFORMED}: stray {item_kind(item)} '/{name}' "
                                      "(not part of the golden layout)")
            if "cases" not in f:
                raise GoldenError(f"{path}: golden file has no /cases group")
            cases = f["cases"]
            if item_kind(cases) != "group":
                raise GoldenError(f"{path}: {MALFORMED}: /cases is a {item_kind(cases)}, expected the group of cases")
            if not len(cases):
                raise GoldenError(f"{path}: {MALFORMED}: /cases holds no case "
                                  "(keras-equiv record never writes an empty file)")
            for name in cases:
                try:
                    out.append(read_case(path, name, cases.get(name)))
                except (OSError, KeyError) as exc:  # h5py: data it cannot read (a corrupt chunk, a lost file)
                    raise GoldenError(f"{path}: {MALFORMED}: case '{name}': cannot be read "
                                      f"({type(exc).__name__}: {exc})") from None
        except (OSError, KeyError) as exc:
            raise GoldenError(f"{path}: {MALFORMED}: cannot be read ({type(exc).__name__}: {exc})") from None
    if case_id is not None:
        out = [entry for entry in out if case_id in (entry[0].id, entry[0].point_id, *legacy_names(entry[0]))]
        if not out:
            raise GoldenError(f"{path}: no case '{case_id}' in this golden file")
    if device is not None:
        out = [(dataclasses.replace(case, device=device), arrays, provenance) for case, arrays, provenance in out]
    return out


def one_case(path: str | Path, case_id: str | None, purpose: str) -> tuple[Case, Arrays, dict]:
    """The one recorded case a command works on (load's triple): ``case_id``'s, or the file's only one;
    UsageError naming the choice when the file holds several (``purpose``: "the port ran", "to export")."""
    recorded = load(path, case_id)
    if len(recorded) > 1:
        ids = ", ".join(case.id for case, _, _ in recorded)
        raise UsageError(f"{path} holds {len(recorded)} cases: name the one {purpose} with --case (one of {ids})")
    return recorded[0]


# ---------------------------------------------------------------- expect.golden

def _cannot_feed(case: Case, recorded: Case) -> str | None:
    """Why the arrays recorded for ``recorded`` cannot run ``case`` (Keras would refuse them), or None."""
    def dims(c):
        return c.input.batch, c.input.timesteps, c.input.features

    if dims(case) != dims(recorded):
        return f"it was recorded on input (batch, timesteps, features) {dims(recorded)}, this case has {dims(case)}"
    mine, theirs = (c.calls.count if c.calls else 1 for c in (case, recorded))
    if mine != theirs:
        return f"it was recorded over {theirs} call(s), this case makes {mine}"
    if (case.mask is None) != (recorded.mask is None):
        return "it was recorded with a mask, this case has none" if case.mask is None else \
            "it was recorded without a mask, this case has one"
    mine, theirs = (layers.weight_shapes(api.with_defaults(dict(c.layer)), c.input.features) for c in (case, recorded))
    if mine != theirs:
        return f"its weights are {json.dumps(theirs)}, this case's layer has {json.dumps(mine)}"
    return None  # equal weight shapes: equal state widths too


def case_arrays(case: Case) -> Arrays:
    """expect.golden: the recorded inputs, weights and outputs this case runs on (GoldenError if none,
    or if they do not fit the case)."""
    path, wanted = case.expect.golden
    name = wanted or case.id
    for recorded, arrays, _ in load(path):
        if name in (recorded.id, legacy_names(recorded)[0]):
            problem = _cannot_feed(case, recorded)
            if problem:
                raise GoldenError(f"{path}: recorded case '{name}' cannot feed case '{case.id}': {problem}")
            return arrays
    raise GoldenError(f"{path}: no case '{name}' recorded in this golden file")
