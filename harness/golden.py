"""Golden HDF5 files: record what Keras computed for cases, verify it later elsewhere.

Layout (format version 1; plain h5py can read it, nothing is pickled)::

    /                      attrs: format="keras-equiv-golden", format_version=1, harness, created
    /cases/<case id>/      attrs: case (JSON: layer, input shape, dtype, ...), params, keras,
                                  backend, tensorflow, device, dtype, kernel, tf32, recorded
        inputs/call1 ...   (batch, timesteps, features) float64, as fed before the dtype cast
        mask               (batch, timesteps) uint8, 1 = valid step          [if any]
        initial_state/0 .. (batch, units) float64, Keras's order              [if any]
        weights/<name>     as get_weights() returned them (Bidirectional: weights/forward/<name>)
        outputs/<name>     every output and state Keras returned
"""
from __future__ import annotations

import dataclasses
import datetime
import json
from pathlib import Path

import numpy as np

from . import __version__, layers
from . import keras_api as api
from .case import CallsSpec, Case, Expect, InputSpec, MaskSpec, MismatchSpec, OutputKey
from .data import Arrays
from .errors import GoldenError
from .result import CaseResult

FORMAT = "keras-equiv-golden"
FORMAT_VERSION = 1


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
    })


def _write_tree(group, tree: dict) -> None:
    for name, value in tree.items():
        if isinstance(value, dict):
            _write_tree(group.require_group(name), value)
        else:
            group.create_dataset(name, data=np.asarray(value))


def _read_tree(group) -> dict:
    import h5py  # noqa: PLC0415 - only golden-file commands pay for it

    return {name: _read_tree(item) if isinstance(item, h5py.Group) else item[()]
            for name, item in group.items()}


def record(results: list[CaseResult], out: str | Path, force: bool = False) -> int:
    """Write the results (run with keep=True) to ``out``; returns how many cases were written."""
    import h5py  # noqa: PLC0415 - only golden-file commands pay for it

    out = Path(out)
    if out.exists() and not force:
        raise GoldenError(f"{out}: already exists (use --force to overwrite)")
    usable = [r for r in results if r.keras_run is not None and r.arrays is not None]
    tmp = out.with_name(out.name + ".tmp")
    with h5py.File(tmp, "w") as f:
        f.attrs.update({"format": FORMAT, "format_version": FORMAT_VERSION, "harness": __version__,
                        "created": datetime.datetime.now(datetime.timezone.utc).isoformat()})
        cases = f.create_group("cases")
        for r in usable:
            g = cases.create_group(r.case.id)
            run = r.keras_run
            g.attrs.update({"case": _case_json(r.case), "params": run.params, "device": run.device,
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
            _write_tree(g.create_group("weights"), run.weights)
            _write_tree(g.create_group("outputs"), {str(k): v for k, v in run.outputs.items()})
    tmp.replace(out)  # never leave a half-written golden file under the real name
    return len(usable)


def _open(path: str | Path):
    import h5py  # noqa: PLC0415 - only golden-file commands pay for it

    path = Path(path)
    if not path.is_file():
        raise GoldenError(f"{path}: no such golden file")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise GoldenError(f"{path}: not a readable HDF5 file (truncated or not HDF5): {exc}") from None
    if f.attrs.get("format") != FORMAT:
        f.close()
        raise GoldenError(f"{path}: not a keras-equiv golden file (no format='{FORMAT}' attribute; "
                          "a foreign HDF5 file?)")
    version = int(f.attrs.get("format_version", -1))
    if version != FORMAT_VERSION:
        f.close()
        raise GoldenError(f"{path}: golden format version {version}, this harness reads {FORMAT_VERSION}")
    return f


def _case_from_json(text: str) -> Case:
    d = json.loads(text)
    inp = InputSpec(d["input"]["batch"], d["input"]["timesteps"], d["input"]["features"], data="values")
    calls = CallsSpec(d["calls"]["count"], tuple(d["calls"]["reset_before"])) if d["calls"] else None
    keys = {str(k): k for k in layers.output_keys(api.with_defaults(d["layer"]), calls.count if calls else None)}
    mismatch = (MismatchSpec(tuple(keys[name] for name in d["mismatch"]["outputs"]), d["mismatch"]["reason"])
                if d["mismatch"] else None)
    tolerance = {name if name == "*" else keys[name] if name in keys else OutputKey(name): value
                 for name, value in d["tolerance"].items()}
    mask = MaskSpec("explicit", via=d["mask_via"]) if d["mask_via"] else None
    point = tuple((path, value) for path, value in d.get("sweep_point", ()))
    case = Case(base_id=d["base_id"], sweep_point=point, path=d["path"], line=d["line"], about=d["about"],
                layer=d["layer"], input=inp, mask=mask, dtype=d["dtype"], device=d["device"], seed=d["seed"],
                training=d["training"], calls=calls, expect=Expect(params=d["params"], mismatch=mismatch),
                tolerance=tolerance)
    if case.id != d["id"]:
        raise ValueError(f"recorded id {d['id']!r} is not the one its base id and sweep point give ({case.id!r}); "
                         "recorded by an older keras-equiv without sweep points? record it again")
    return case


def _outputs(case: Case, tree: dict) -> dict[OutputKey, np.ndarray]:
    """Recorded outputs by key; a name this case cannot return is a malformed file."""
    cfg = api.with_defaults(dict(case.layer))
    keys = {str(k): k for k in layers.output_keys(cfg, case.calls.count if case.calls else None)}
    unknown = sorted(set(tree) - set(keys))
    if unknown:
        raise ValueError(f"outputs {unknown} are not outputs of this case")
    return {keys[name]: value for name, value in tree.items()}


def load(path: str | Path, case_id: str | None = None) -> list[tuple[Case, Arrays, dict]]:
    """(case, recorded arrays with golden outputs, provenance) for each case in a golden file."""
    out = []
    with _open(path) as f:
        if "cases" not in f:
            raise GoldenError(f"{path}: golden file has no /cases group")
        for name, g in f["cases"].items():
            try:
                case = _case_from_json(g.attrs["case"])
                if case_id is not None and case_id not in (case.id, case.point_id):
                    continue
                tree = _read_tree(g)
                inputs = [np.asarray(tree["inputs"][f"call{i}"], dtype=np.float64)
                          for i in range(1, len(tree["inputs"]) + 1)]
                init = tree.get("initial_state")
                arrays = Arrays(inputs=inputs,
                                mask=np.asarray(tree["mask"], dtype=bool) if "mask" in tree else None,
                                initial_state=[init[str(i)] for i in range(len(init))] if init else None,
                                weights=tree["weights"], golden_outputs=_outputs(case, tree["outputs"]))
            except (KeyError, ValueError, TypeError) as exc:
                raise GoldenError(f"{path}: case '{name}' is incomplete or malformed ({exc})") from None
            provenance = {k: (v.item() if hasattr(v, "item") else v) for k, v in g.attrs.items() if k != "case"}
            out.append((case, arrays, provenance))
    if case_id is not None and not out:
        raise GoldenError(f"{path}: no case '{case_id}' in this golden file")
    return out


def case_arrays(case: Case) -> Arrays:
    """expect.golden: the recorded inputs, weights and outputs this case runs on (GoldenError if none)."""
    path, wanted = case.expect.golden
    for recorded, arrays, _ in load(path):
        if recorded.id == (wanted or case.id):
            return arrays
    raise GoldenError(f"{path}: no case '{wanted or case.id}' recorded in this golden file")
