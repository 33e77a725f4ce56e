"""Golden HDF5 files: record what Keras computed for cases, verify it later elsewhere.

Layout (format version 1; plain h5py can read it, nothing is pickled)::

    /                      attrs: format="keras-equiv-golden", format_version=1 (an integer), harness, created
    /cases/<case id>/      attrs: case (JSON: layer, input shape, dtype, ...), params, keras,
                                  backend, tensorflow, device, kernel, tf32, recorded,
                                  policy (the case's dtype policy), compute (its compute dtype),
                                  dtype (the policy again: the name files before policy had)
        inputs/call1 ...   (batch, timesteps, features) float64, as fed before the dtype cast
        mask               (batch, timesteps) uint8, 1 = valid step          [if the case masks]
        initial_state/0 .. (batch, units) float64, Keras's order              [if any]
        weights/<name>     as get_weights() returned them (Bidirectional: weights/forward/<name>)
        outputs/<name>     every output and state Keras returned

Every weights/ and outputs/ dataset has the attribute ``dtype``: the NumPy dtype Keras returned
it in.  HDF5 has no bfloat16, so a bfloat16 array is stored widened to float32 (exactly) with
``dtype="bfloat16"`` and comes back as bfloat16; files recorded before these attributes (which
hold bfloat16 as opaque 2-byte data, and no ``policy``) still load.

``load`` refuses anything else, each as a ``GoldenError`` "PATH: malformed golden file: ...":
a stray dataset or group, a missing one (a missing weight would otherwise leave Keras's own
initial values in place), a wrong shape or dtype, and a case JSON that does not pass the checks
a case file gets (``schema.case_from_point``).  ``record`` writes only what ``load`` reads back.
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import shlex
from pathlib import Path

import numpy as np

from . import __version__, layers, schema
from . import keras_api as api
from .case import Case, MaskSpec
from .data import Arrays
from .errors import GoldenError, UsageError
from .result import CaseResult
from .yaml_lines import LineDict

FORMAT = "keras-equiv-golden"
FORMAT_VERSION = 1
MALFORMED = "malformed golden file"
NOTHING_RECORDED = ("recorded no case: every case failed, errored or was skipped (e.g. --device gpu with no GPU); "
                    "nothing written")
# The keys of the case JSON (``sweep_point`` is absent from files recorded before sweep points).
JSON_KEYS = ("id", "base_id", "sweep_point", "about", "path", "line", "layer", "input", "mask_via", "dtype",
             "device", "seed", "training", "calls", "tolerance", "mismatch", "params")
_OPTIONAL_JSON_KEYS = ("sweep_point",)
# NumPy dtypes HDF5 has no type for -> what they are stored as (exactly; the dtype attribute says which).
WIDENED = {"bfloat16": np.float32}


def _h5py():
    import h5py  # noqa: PLC0415 - only golden-file commands pay for it

    return h5py


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
    h5py = _h5py()
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

def _shown(value) -> str:
    """A value read from the file, as a message writes it: its repr (cut) and what it is."""
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    if isinstance(value, np.generic):
        value = value.item()
    kind = {str: "a string", bytes: "bytes", bool: "a boolean", int: "an integer", float: "a number",
            list: "a list", type(None): "null"}.get(type(value), "a mapping" if isinstance(value, dict)
                                                    else f"a {type(value).__name__}")
    text = repr(value)
    return f"{text if len(text) <= 60 else text[:57] + '...'} ({kind})"


def _plain(value):
    """An attribute as a plain Python value (provenance)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value.item() if isinstance(value, np.generic) else value


def _kind(item) -> str:
    """What an HDF5 member is, as messages say it (h5py gives None for a link to nothing)."""
    h5py = _h5py()
    if item is None:
        return "link to nothing"
    return "group" if isinstance(item, h5py.Group) else "dataset" if isinstance(item, h5py.Dataset) \
        else "named datatype"


def _open(path: str | Path):
    h5py = _h5py()
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
    version = f.attrs.get("format_version")
    problem = None
    if version is None:
        problem = "no format_version attribute"
    elif not isinstance(version, (int, np.integer)) or isinstance(version, (bool, np.bool_)):
        problem = f"format_version must be an integer, got {_shown(version)}"
    if problem:
        f.close()
        raise GoldenError(f"{path}: {MALFORMED}: {problem}")
    if int(version) != FORMAT_VERSION:
        f.close()
        raise GoldenError(f"{path}: golden format version {int(version)}, this harness reads {FORMAT_VERSION}")
    return f


def _json_mapping(pairs: list) -> LineDict:
    """A JSON object as the schema's mapping; a key given twice is malformed (json keeps the last)."""
    out = LineDict()
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


class _Reader:
    """One recorded case's group; every problem is a GoldenError naming the file, the case and the dataset."""

    def __init__(self, path: str | Path, name: str, group):
        self.path, self.name, self.group = path, name, group

    def error(self, problem: str) -> GoldenError:
        return GoldenError(f"{self.path}: {MALFORMED}: case '{self.name}': {problem}")

    def members(self, group, rel: str, allowed: dict[str, str]) -> None:
        """Refuse what ``group`` holds beyond ``allowed`` (name -> group or dataset), or of the other kind."""
        for name, item in group.items():
            where = f"{rel}/{name}" if rel else name
            kind = _kind(item)
            if name not in allowed:
                raise self.error(f"stray {kind} '{where}' (not part of the golden layout)")
            if kind != allowed[name]:
                raise self.error(f"{where} is a {kind}, expected a {allowed[name]}")

    def need(self, group, rel: str, names) -> None:
        for name in names:
            if name not in group:
                raise self.error(f"no {rel}/{name}" if rel else f"no {name}")

    def floats(self, ds, rel: str, shape: tuple[int, ...], what: str, compute: str) -> np.ndarray:
        """A dataset of real numbers of ``shape``, in the dtype it was recorded in."""
        data = np.asarray(ds[()])
        stored, attr = data.dtype, ds.attrs.get("dtype")
        if attr is None and compute == "bfloat16" and stored.kind == "V" and stored.itemsize == 2 \
                and stored.names is None:
            data = data.view(layers.numpy_dtype("bfloat16"))  # recorded before the dtype attribute: opaque bfloat16
        elif stored.kind == "c":
            raise self.error(f"{rel} holds complex numbers ({stored}), expected real ones")
        elif stored.kind != "f":
            raise self.error(f"{rel} holds {stored} values, expected real floating-point numbers")
        elif attr is not None:
            if not isinstance(attr, str):
                raise self.error(f"{rel}: attribute dtype must be a dtype name, got {_shown(attr)}")
            if attr in WIDENED and stored == WIDENED[attr]:
                data = data.astype(layers.numpy_dtype(attr))
            elif attr != stored.name:
                raise self.error(f"{rel}: attribute dtype is {attr!r}, but the data is stored as {stored.name}")
        if data.shape != tuple(shape):
            raise self.error(f"{rel} has shape {data.shape}, expected {tuple(shape)}" + (f" {what}" if what else ""))
        return data


def _raw_case(r: _Reader, d: LineDict, has_state: bool) -> LineDict:
    """The case JSON as a case-file mapping, for the schema.  Mask and initial state stand in as
    a random mask and ``random`` (their arrays are the file's, checked against the case after)."""
    raw = LineDict(about=d["about"], layer=d["layer"], input=d["input"], dtype=d["dtype"], devices=[d["device"]],
                   seed=d["seed"], training=d["training"])
    if d["mask_via"] is not None:
        raw.update(mask_via=d["mask_via"], mask=LineDict(kind="random", rate=0.5))
    if has_state:
        raw["initial_state"] = "random"
    calls = d["calls"]
    if calls is not None:
        raw["calls"] = LineDict((k, v) for k, v in calls.items() if v is not None) if isinstance(calls, dict) \
            else calls
    tolerance = d["tolerance"]
    if isinstance(tolerance, dict) and "*" in tolerance:  # written {"*": {atol, rtol}}: the case-wide form
        if len(tolerance) > 1:
            raise r.error("case JSON: tolerance gives '*' and per-output tolerances together")
        raw["tolerance"] = tolerance["*"]
    elif tolerance != {}:
        raw["tolerance"] = tolerance
    expect = LineDict((k, d[k]) for k in ("params", "mismatch") if d[k] is not None)
    if expect:
        raw["expect"] = expect
    return raw


def _recorded_case(r: _Reader, has_state: bool) -> Case:
    """The case JSON, through the checks a case file gets."""
    if "case" not in r.group.attrs:
        raise r.error("no 'case' attribute (the recorded case, as JSON)")
    text = r.group.attrs["case"]
    if not isinstance(text, str):
        raise r.error(f"the 'case' attribute must be a JSON string, got {_shown(text)}")
    try:
        d = json.loads(text, object_pairs_hook=_json_mapping)
    except ValueError as exc:
        raise r.error(f"the 'case' attribute is not valid JSON ({exc})") from None
    if not isinstance(d, dict):
        raise r.error(f"the 'case' attribute must be a JSON object, got {_shown(d)}")
    unknown = [k for k in d if k not in JSON_KEYS]
    if unknown:
        raise r.error(f"case JSON: unknown key {unknown[0]!r}")
    missing = [k for k in JSON_KEYS if k not in d and k not in _OPTIONAL_JSON_KEYS]
    if missing:
        raise r.error(f"case JSON: no {missing[0]!r}")
    ck = schema.Checker(f"{r.path}: {MALFORMED}")
    ck.case_id = r.name
    point = d.get("sweep_point", [])
    if not isinstance(d["base_id"], str) or not schema.ID_PATTERN.match(d["base_id"]):
        ck.must_be(d, "base_id", "base_id", "an id of a-z, 0-9, '_' and '-'", d["base_id"])
    if not isinstance(point, list) or not all(isinstance(p, list) and len(p) == 2 and isinstance(p[0], str)
                                              for p in point):
        ck.must_be(d, "sweep_point", "sweep_point", "a list of [path, value] pairs", point)
    ck.string(d, "id", "id")
    ck.string(d, "path", "path")
    ck.integer(d, "line", "line", 0)
    if ck.problems:
        raise GoldenError("\n".join(map(str, ck.problems)))
    raw = _raw_case(r, d, has_state)
    cases = schema.case_from_point(ck, raw, d["base_id"], tuple((p, v) for p, v in point), d["path"])
    if ck.problems:
        raise GoldenError("\n".join(map(str, ck.problems)))
    case = cases[0]  # one device given: one case
    if case.id != d["id"]:
        raise r.error(f"recorded id {d['id']!r} is not the one its base id and sweep point give ({case.id!r}); "
                      "recorded by an older keras-equiv without sweep points? record it again")
    if d["id"] != r.name:
        raise r.error(f"its case JSON has the id {d['id']!r}")
    return dataclasses.replace(case, line=d["line"], input=dataclasses.replace(case.input, data="values"))


def _read_case(path: str | Path, name: str, group) -> tuple[Case, Arrays, dict]:
    r = _Reader(path, name, group)
    if _kind(group) != "group":
        raise GoldenError(f"{path}: {MALFORMED}: stray {_kind(group)} '/cases/{name}' (each case is a group)")
    case = _recorded_case(r, "initial_state" in group)
    cfg = api.with_defaults(dict(case.layer))
    compute = layers.DTYPES[case.dtype].compute
    inp = case.input
    count = case.calls.count if case.calls else 1
    batches = case.calls.batches if case.calls and case.calls.batches else (inp.batch,) * count

    for attr, want in (("policy", case.dtype), ("dtype", case.dtype), ("compute", compute)):
        if attr in group.attrs and _plain(group.attrs[attr]) != want:
            raise r.error(f"attribute {attr} is {_shown(group.attrs[attr])}, expected {want!r} "
                          f"(the case JSON's dtype is {case.dtype!r})")
    if "mask" in group and case.mask is None:
        raise r.error("mask recorded for a case without one (its case JSON has mask_via null)")
    allowed = {"inputs": "group", "weights": "group", "outputs": "group", "initial_state": "group"}
    if case.mask is not None:
        allowed["mask"] = "dataset"
    r.members(group, "", allowed)
    r.need(group, "", [k for k in allowed if k != "initial_state"])

    calls = {f"call{i}": "dataset" for i in range(1, count + 1)}
    r.members(group["inputs"], "inputs", calls)
    r.need(group["inputs"], "inputs", calls)
    inputs = [np.asarray(r.floats(group["inputs"][f"call{i}"], f"inputs/call{i}",
                                  (batches[i - 1], inp.timesteps, inp.features), "(batch, timesteps, features)",
                                  "float64"), dtype=np.float64)
              for i in range(1, count + 1)]

    mask = None
    if case.mask is not None:
        data = np.asarray(group["mask"][()])
        if data.dtype.kind not in "biu":
            raise r.error(f"mask holds {data.dtype} values, expected 0/1 integers (uint8)")
        if data.shape != (inp.batch, inp.timesteps):
            raise r.error(f"mask has shape {data.shape}, expected {(inp.batch, inp.timesteps)} (batch, timesteps)")
        bad = data[(data != 0) & (data != 1)]
        if bad.size:
            raise r.error(f"mask holds values other than 0 and 1 (such as {bad.flat[0].item()!r})")
        mask = data.astype(bool)
        case = dataclasses.replace(case, mask=MaskSpec("explicit", values=data.astype(int).tolist(),
                                                       via=case.mask.via))

    initial_state = None
    if "initial_state" in group:
        units = layers.state_units(cfg)
        names = {str(i): "dataset" for i in range(len(units))}
        r.members(group["initial_state"], "initial_state", names)
        r.need(group["initial_state"], "initial_state", names)
        initial_state = [np.asarray(r.floats(group["initial_state"][str(i)], f"initial_state/{i}",
                                             (batches[0], u), "(batch, units)", "float64"), dtype=np.float64)
                         for i, u in enumerate(units)]
        case = dataclasses.replace(case, initial_state=[s.tolist() for s in initial_state])

    where = api.describe(dict(case.layer))

    def weights(g, rel: str, shapes: dict) -> dict:
        r.members(g, rel, {k: "group" if isinstance(v, dict) else "dataset" for k, v in shapes.items()})
        r.need(g, rel, shapes)
        return {k: weights(g[k], f"{rel}/{k}", v) if isinstance(v, dict)
                else r.floats(g[k], f"{rel}/{k}", v, f"for {where}", compute) for k, v in shapes.items()}

    recorded_weights = weights(group["weights"], "weights", layers.weight_shapes(cfg, inp.features))

    keys = layers.output_keys(cfg, case.calls.count if case.calls else None)
    per_call = {b: layers.output_shapes(cfg, b, inp.timesteps) for b in set(batches)}
    shapes = {str(k): per_call[batches[(k.call or 1) - 1]][k.name] for k in keys}
    outputs_group = group["outputs"]
    unknown = sorted(set(outputs_group) - set(shapes))
    if unknown:
        raise r.error(f"outputs {unknown} are not outputs of this case (it returns {', '.join(shapes)})")
    r.members(outputs_group, "outputs", dict.fromkeys(shapes, "dataset"))
    r.need(outputs_group, "outputs", shapes)
    outputs = {k: r.floats(outputs_group[str(k)], f"outputs/{k}", shapes[str(k)], "", compute) for k in keys}

    provenance = {k: _plain(v) for k, v in group.attrs.items() if k != "case"}
    provenance.setdefault("policy", case.dtype)
    provenance.setdefault("compute", compute)
    provenance["output_dtypes"] = {str(k): v.dtype.name for k, v in outputs.items()}
    arrays = Arrays(inputs=inputs, mask=mask, initial_state=initial_state, weights=recorded_weights,
                    golden_outputs=outputs)
    return case, arrays, provenance


def load(path: str | Path, case_id: str | None = None,
         device: str | None = None) -> list[tuple[Case, Arrays, dict]]:
    """(case, recorded arrays with golden outputs, provenance) for each case in a golden file.

    ``case_id``: only that case (its full id, or its id without the device); ``device``: the cases
    re-targeted to that device (their ids then end in @device).  Every case of the file is checked
    either way; provenance holds the group's attributes, with ``policy``, ``compute`` and
    ``output_dtypes`` (output -> the NumPy dtype Keras returned it in) for older files too."""
    if device is not None and device not in api.DEVICES:
        raise UsageError(f"unknown device {device!r} (expected one of {', '.join(api.DEVICES)})")
    out = []
    with _open(path) as f:
        try:
            for name, item in f.items():
                if name != "cases":
                    raise GoldenError(f"{path}: {MALFORMED}: stray {_kind(item)} '/{name}' "
                                      "(not part of the golden layout)")
            if "cases" not in f:
                raise GoldenError(f"{path}: golden file has no /cases group")
            cases = f["cases"]
            if _kind(cases) != "group":
                raise GoldenError(f"{path}: {MALFORMED}: /cases is a {_kind(cases)}, expected the group of cases")
            if not len(cases):
                raise GoldenError(f"{path}: {MALFORMED}: /cases holds no case "
                                  "(keras-equiv record never writes an empty file)")
            for name in cases:
                try:
                    out.append(_read_case(path, name, cases.get(name)))
                except (OSError, KeyError) as exc:  # h5py: data it cannot read (a corrupt chunk, a lost file)
                    raise GoldenError(f"{path}: {MALFORMED}: case '{name}': cannot be read "
                                      f"({type(exc).__name__}: {exc})") from None
        except (OSError, KeyError) as exc:
            raise GoldenError(f"{path}: {MALFORMED}: cannot be read ({type(exc).__name__}: {exc})") from None
    if case_id is not None:
        out = [entry for entry in out if case_id in (entry[0].id, entry[0].point_id)]
        if not out:
            raise GoldenError(f"{path}: no case '{case_id}' in this golden file")
    if device is not None:
        out = [(dataclasses.replace(case, device=device), arrays, provenance) for case, arrays, provenance in out]
    return out


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
        if recorded.id == name:
            problem = _cannot_feed(case, recorded)
            if problem:
                raise GoldenError(f"{path}: recorded case '{name}' cannot feed case '{case.id}': {problem}")
            return arrays
    raise GoldenError(f"{path}: no case '{name}' recorded in this golden file")
