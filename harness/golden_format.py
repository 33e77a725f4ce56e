"""The golden file format: what a file holds, and reading it back validated (golden.py writes it).


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
import json
from pathlib import Path

import numpy as np

from . import layers, schema
from . import keras_api as api
from .case import Case, MaskSpec, legacy_point_id
from .data import Arrays
from .errors import GoldenError
from .yaml_lines import LineDict

FORMAT = "keras-equiv-golden"
FORMAT_VERSION = 1
MALFORMED = "malformed golden file"
NOTHING_RECORDED = ("recorded no case: every case failed, errored or was skipped (e.g. --device gpu with no GPU); "
                    "nothing written")
# The keys of the case JSON (``sweep_point`` and ``limits`` are absent from files recorded before them).
JSON_KEYS = ("id", "base_id", "sweep_point", "about", "path", "line", "layer", "input", "mask_via", "dtype",
             "device", "seed", "training", "calls", "tolerance", "mismatch", "params", "limits")
OPTIONAL_JSON_KEYS = ("sweep_point", "limits")
# NumPy dtypes HDF5 has no type for -> what they are stored as (exactly; the dtype attribute says which).
WIDENED = {"bfloat16": np.float32}


def h5py_module():
    import h5py  # noqa: PLC0415 - only golden-file commands pay for it

    return h5py


def shown(value) -> str:
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


def plain(value):
    """An attribute as a plain Python value (provenance)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value.item() if isinstance(value, np.generic) else value


def item_kind(item) -> str:
    """What an HDF5 member is, as messages say it (h5py gives None for a link to nothing)."""
    h5py = h5py_module()
    if item is None:
        return "link to nothing"
    return "group" if isinstance(item, h5py.Group) else "dataset" if isinstance(item, h5py.Dataset) \
        else "named datatype"


def open_file(path: str | Path):
    h5py = h5py_module()
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
        problem = f"format_version must be an integer, got {shown(version)}"
    if problem:
        f.close()
        raise GoldenError(f"{path}: {MALFORMED}: {problem}")
    if int(version) != FORMAT_VERSION:
        f.close()
        raise GoldenError(f"{path}: golden format version {int(version)}, this harness reads {FORMAT_VERSION}")
    return f


def json_mapping(pairs: list) -> LineDict:
    """A JSON object as the schema's mapping; a key given twice is malformed (json keeps the last)."""
    out = LineDict()
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


class Reader:
    """One recorded case's group; every problem is a GoldenError naming the file, the case and the dataset."""

    def __init__(self, path: str | Path, name: str, group):
        self.path, self.name, self.group = path, name, group

    def error(self, problem: str) -> GoldenError:
        return GoldenError(f"{self.path}: {MALFORMED}: case '{self.name}': {problem}")

    def members(self, group, rel: str, allowed: dict[str, str]) -> None:
        """Refuse what ``group`` holds beyond ``allowed`` (name -> group or dataset), or of the other kind."""
        for name, item in group.items():
            where = f"{rel}/{name}" if rel else name
            kind = item_kind(item)
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
                raise self.error(f"{rel}: attribute dtype must be a dtype name, got {shown(attr)}")
            if attr in WIDENED and stored == WIDENED[attr]:
                data = data.astype(layers.numpy_dtype(attr))
            elif attr != stored.name:
                raise self.error(f"{rel}: attribute dtype is {attr!r}, but the data is stored as {stored.name}")
        if data.shape != tuple(shape):
            raise self.error(f"{rel} has shape {data.shape}, expected {tuple(shape)}" + (f" {what}" if what else ""))
        return data


def raw_case(r: Reader, d: LineDict, has_state: bool) -> LineDict:
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
    if d.get("limits", {}) != {}:  # the caps the case raised: its recorded arrays may need them
        raw["limits"] = d["limits"]
    expect = LineDict((k, d[k]) for k in ("params", "mismatch") if d[k] is not None)
    if expect:
        raw["expect"] = expect
    return raw


def recorded_case(r: Reader, has_state: bool) -> Case:
    """The case JSON, through the checks a case file gets."""
    if "case" not in r.group.attrs:
        raise r.error("no 'case' attribute (the recorded case, as JSON)")
    text = r.group.attrs["case"]
    if not isinstance(text, str):
        raise r.error(f"the 'case' attribute must be a JSON string, got {shown(text)}")
    try:
        d = json.loads(text, object_pairs_hook=json_mapping)
    except ValueError as exc:
        raise r.error(f"the 'case' attribute is not valid JSON ({exc})") from None
    if not isinstance(d, dict):
        raise r.error(f"the 'case' attribute must be a JSON object, got {shown(d)}")
    unknown = [k for k in d if k not in JSON_KEYS]
    if unknown:
        raise r.error(f"case JSON: unknown key {unknown[0]!r}")
    missing = [k for k in JSON_KEYS if k not in d and k not in OPTIONAL_JSON_KEYS]
    if missing:
        raise r.error(f"case JSON: no {missing[0]!r}")
    ck = schema.Checker(f"{r.path}: {MALFORMED}")
    ck.case_id = r.name
    point = d.get("sweep_point", [])
    if not isinstance(d["base_id"], str) or not schema.ID_PATTERN.fullmatch(d["base_id"]):
        ck.must_be(d, "base_id", "base_id", "an id of a-z, 0-9, '_' and '-'", d["base_id"])
    if not isinstance(point, list) or not all(isinstance(p, list) and len(p) == 2 and isinstance(p[0], str)
                                              for p in point):
        ck.must_be(d, "sweep_point", "sweep_point", "a list of [path, value] pairs", point)
    ck.string(d, "id", "id")
    ck.string(d, "path", "path")
    ck.integer(d, "line", "line", 0)
    if ck.problems:
        raise GoldenError("\n".join(map(str, ck.problems)))
    raw = raw_case(r, d, has_state)
    limits = schema.check_limits(ck, raw)  # the caps the case recorded, as expand() sets them for a case file
    if limits is None:
        raise GoldenError("\n".join(map(str, ck.problems)))
    ck.limits = limits
    cases = schema.case_from_point(ck, raw, d["base_id"], tuple((p, v) for p, v in point), d["path"])
    if ck.problems:
        raise GoldenError("\n".join(map(str, ck.problems)))
    case = cases[0]  # one device given: one case
    if d["id"] not in (case.id, legacy_names(case)[0]):  # the second: recorded by keras-equiv 0.1
        raise r.error(f"recorded id {d['id']!r} is not the one its base id and sweep point give ({case.id!r}); "
                      "recorded by an older keras-equiv without sweep points? record it again")
    if d["id"] != r.name:
        raise r.error(f"its case JSON has the id {d['id']!r}")
    return dataclasses.replace(case, line=d["line"], input=dataclasses.replace(case.input, data="values"))


def legacy_names(case: Case) -> tuple[str, str]:
    """The full id and the device-less id of ``case`` as keras-equiv 0.1 wrote them
    (``base[units=5]@cpu``, ``base[units=5]``): files recorded then name their cases so, and case
    files written then refer to them so (the names golden.load answers to besides today's)."""
    point = legacy_point_id(case.base_id, case.sweep_point)
    return f"{point}@{case.device}", point


def read_case(path: str | Path, name: str, group) -> tuple[Case, Arrays, dict]:
    r = Reader(path, name, group)
    if item_kind(group) != "group":
        raise GoldenError(f"{path}: {MALFORMED}: stray {item_kind(group)} '/cases/{name}' (each case is a group)")
    case = recorded_case(r, "initial_state" in group)
    cfg = api.with_defaults(dict(case.layer))
    compute = layers.DTYPES[case.dtype].compute
    inp = case.input
    count = case.calls.count if case.calls else 1
    batches = case.calls.batches if case.calls and case.calls.batches else (inp.batch,) * count

    for attr, want in (("policy", case.dtype), ("dtype", case.dtype), ("compute", compute)):
        if attr in group.attrs and plain(group.attrs[attr]) != want:
            raise r.error(f"attribute {attr} is {shown(group.attrs[attr])}, expected {want!r} "
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

    provenance = {k: plain(v) for k, v in group.attrs.items() if k != "case"}
    provenance.setdefault("policy", case.dtype)
    provenance.setdefault("compute", compute)
    provenance["output_dtypes"] = {str(k): v.dtype.name for k, v in outputs.items()}
    arrays = Arrays(inputs=inputs, mask=mask, initial_state=initial_state, weights=recorded_weights,
                    golden_outputs=outputs)
    return case, arrays, provenance
