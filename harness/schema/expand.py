"""One raw case -> its ``Case`` objects: the sweep expanded in the order written, each point
validated and built once per device, for a layer case and a ``model:`` case alike."""
from __future__ import annotations

import itertools
import zlib
from collections import Counter
from typing import Any

from .. import case
from .. import keras_api as api
from .. import layers
from .. import model_layers as ml
from .. import modes as execution
from ..errors import ShapeProblem
from ..yaml_lines import LineDict, copy_tree
from .expect import check_expect, check_model_expect, check_requires, check_tolerance
from .keys import CASE_KEYS, LAYER_CASE_NEEDS, MASK_VIA, MODEL_CASE_KEYS, MODEL_CASE_NEEDS, SECTION_KEYS, UNSWEPT_KEYS
from .layer import check_layer, check_model
from .limits import check_limits, check_sizes, check_sweep_points
from .messages import Checker, clip, show, suggest
from .sections import (check_calls, check_initial_state, check_input, check_mask, check_model_input,
                       check_training, check_weights)

Shapes = dict[case.OutputKey, tuple[int, ...]]


def _layer_part(ck: Checker, raw: LineDict) -> tuple[dict, Shapes] | None:
    """A layer case's own fields (layer, input, mask, initial_state, weights) and its outputs."""
    for key in LAYER_CASE_NEEDS:
        if key not in raw:
            ck.fail(raw, None, key, "is required", "a mapping", "nothing")
            return None
    layer = check_layer(ck, raw, "layer", "layer")
    inp = check_input(ck, raw)
    if layer is None or inp is None:
        return None
    full = api.with_defaults(layer)
    per_call = layers.output_shapes(full, inp.batch, inp.timesteps)
    via = raw.get("mask_via", "argument")
    if "mask_via" in raw:
        via = ck.choice(raw, "mask_via", "mask_via", MASK_VIA, "mask_via value")
    mask = check_mask(ck, raw, inp, via) if "mask" in raw else None
    if "mask_via" in raw and "mask" not in raw:
        ck.fail(raw, "mask_via", "mask_via", "needs a mask", "a mask: entry", "no mask")
    initial_state = check_initial_state(ck, raw, layer, inp) if "initial_state" in raw else None
    weights = check_weights(ck, raw, layer, inp.features) if "weights" in raw else "keras"
    fields = {"layer": layer, "input": inp, "mask": mask, "initial_state": initial_state, "weights": weights}
    return fields, {k: per_call[k.name] for k in layers.output_keys(full)}


def _model_part(ck: Checker, raw: LineDict) -> tuple[dict, Shapes] | None:
    """A model case's own fields (model, its first recurrent layer, input) and its outputs:
    ``output`` and every layer's, ``model[i]``."""
    before = len(ck.problems)
    for key in raw:
        if key == "layer":
            ck.fail(raw, key, "layer", "cannot be combined with model (a model case lists its layers under model:)",
                    "layer or model", "both")
        elif key not in MODEL_CASE_KEYS:
            ck.fail(raw, key, str(key), "does not apply to a model case",
                    "one of " + ", ".join(MODEL_CASE_KEYS), show(key))
    for key in MODEL_CASE_NEEDS:
        if key not in raw:
            ck.fail(raw, None, key, "is required", "a mapping", "nothing")
    model = check_model(ck, raw)
    if model is None or len(ck.problems) > before:
        return None
    inp = check_model_input(ck, raw, model[0])
    if inp is None:
        return None
    shape = ml.input_shape(model, inp.timesteps, inp.features)
    shapes = {}
    for i, (item, spec) in enumerate(zip(raw["model"], model)):
        try:
            shape = ml.output_shape(spec, shape)
        except ShapeProblem as p:
            ck.fail(item, None, f"model[{i}]", p.problem, p.expected, p.got)
            return None
        shapes[case.OutputKey(f"model[{i}]")] = (inp.batch,) + shape
    # ``layer`` keeps the first recurrent layer, so tools that read one layer (show, the
    # sensitivity hunt) still find one; ``model`` is what runs.
    first_rnn = next(spec for spec in model if spec["class"] in api.LAYER_ARGS)
    fields = {"layer": first_rnn, "input": inp, "model": tuple(model)}
    return fields, {case.OutputKey("output"): (inp.batch,) + shape, **shapes}


def _check_devices(ck: Checker, raw: LineDict) -> list[str]:
    devices = raw.get("devices", ["cpu"])
    if isinstance(devices, str):
        devices = [devices]
    if not isinstance(devices, list) or not devices or any(d not in api.DEVICES for d in devices):
        bad = next((d for d in devices if d not in api.DEVICES), devices) if isinstance(devices, list) else devices
        hint = suggest(bad, api.DEVICES) if isinstance(bad, str) else ""
        ck.fail(raw, "devices", "devices", "unknown device" + hint, "a list from cpu, gpu", show(bad))
        return []
    return list(dict.fromkeys(devices))


def _check_modes(ck: Checker, raw: LineDict) -> list[str]:
    modes = raw.get("modes", [execution.DEFAULT.value])
    if isinstance(modes, str):
        modes = [modes]
    if not isinstance(modes, list) or not modes or any(m not in execution.MODES for m in modes):
        bad = next((m for m in modes if m not in execution.MODES), modes) if isinstance(modes, list) else modes
        hint = suggest(bad, execution.MODES) if isinstance(bad, str) else ""
        ck.fail(raw, "modes", "modes", "unknown mode" + hint, f"a list from {', '.join(execution.MODES)}", show(bad))
        return []
    return list(dict.fromkeys(modes))


def case_from_point(ck: Checker, raw: LineDict, base_id: str, point: tuple, path: str) -> list[case.Case]:
    """One sweep point of a layer case or a ``model:`` case: validated, one Case per device and
    mode (none when it has a problem; the problems are in ``ck``)."""
    before = len(ck.problems)
    is_model = "model" in raw
    part = _model_part(ck, raw) if is_model else _layer_part(ck, raw)
    if part is None:
        return []
    fields, shapes = part
    dtypes, what = (ml.MODEL_DTYPES, "dtype for a model case") if is_model else (tuple(layers.DTYPES), "dtype")
    dtype = ck.choice(raw, "dtype", "dtype", dtypes, what) if "dtype" in raw else "float32"
    devices = _check_devices(ck, raw)
    modes = _check_modes(ck, raw) if not is_model else [execution.DEFAULT.value]
    seed = zlib.crc32(case.legacy_point_id(base_id, point).encode()) & 0x7FFFFFFF
    if "seed" in raw:
        seed = ck.integer(raw, "seed", "seed", 0)
    if is_model:  # model cases have no training or calls (MODEL_CASE_KEYS)
        expect = check_model_expect(ck, raw, len(fields["model"]), shapes) if "expect" in raw else case.Expect()
    else:
        training = ck.boolean(raw, "training", "training") if "training" in raw else False
        calls = check_calls(ck, raw, fields["layer"]) if "calls" in raw else None
        full = api.with_defaults(fields["layer"])
        if calls is not None:  # every output once per call, each shaped as one call's
            shapes = {k: shapes[case.OutputKey(k.name)] for k in layers.output_keys(full, calls.count)}
        if training:
            check_training(ck, raw, full, fields["input"], fields["mask"], calls)
        fields.update(training=training, calls=calls)
        expect = check_expect(ck, raw, shapes) if "expect" in raw else case.Expect()
    check_sizes(ck, raw, fields, shapes)
    tolerance = check_tolerance(ck, raw, shapes) if "tolerance" in raw else {}
    requires = check_requires(ck, raw) if "requires" in raw else {}
    about = raw.get("about", "")
    if not isinstance(about, str):
        ck.must_be(raw, "about", "about", "a string", about)
    if len(ck.problems) > before:
        return []
    limits = {key: ck.limits[key] for key in raw.get("limits") or {}}  # validated by check_limits
    return [case.Case(base_id=base_id, path=path, line=raw.line, about=about, dtype=dtype, device=device,
                      seed=seed, expect=expect, tolerance=tolerance, requires=requires, sweep_point=point,
                      limits=limits, mode=mode, **fields)
            for device in devices for mode in modes]


# What a swept value must be: the case id spells it (case.spell).
ID_VALUE = ("a value an id can spell: null, true, false, a number, or a string of letters, digits, '_', "
            "'.' and '-' (a list or mapping of such values is spelled joined by '-')")


def sweep_path_ok(raw: LineDict, path: str) -> bool:
    """A sweep path names a field that exists for this case (present or a valid key)."""
    parts = path.split(".")
    if parts[0] not in CASE_KEYS or parts[0] in UNSWEPT_KEYS:
        return False
    node: Any = raw
    for part in parts[:-1]:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    last = parts[-1]
    if len(parts) == 1:
        return True
    if not isinstance(node, dict):
        return False
    if last in node:
        return True
    section = parts[-2]
    if isinstance(node.get("class"), str) and node["class"] in api.LAYER_ARGS:
        return last in api.LAYER_ARGS[node["class"]]
    return last in SECTION_KEYS.get(section, ())


def expand(ck: Checker, raw: LineDict, base_id: str, path: str) -> list[case.Case]:
    """Every sweep point of a raw case (the Cartesian product, first key slowest), on every device,
    within the case's limits (``limits.py``): how many points is counted before expanding."""
    limits = check_limits(ck, raw)
    if limits is None:
        return []
    ck.limits = limits
    sweep = raw.get("sweep")
    if sweep is None:
        return case_from_point(ck, raw, base_id, (), path)
    if not isinstance(sweep, LineDict) or not sweep:
        ck.fail(raw, "sweep", "sweep", "must map dotted paths to lists of values",
                "a mapping such as layer.units: [1, 8]", show(sweep))
        return []
    ok = True
    for key, values in sweep.items():
        if not isinstance(key, str) or not sweep_path_ok(raw, key):
            ck.fail(sweep, key, f"sweep.{clip(key)}", "path does not exist in this case",
                    "a dotted path to a case field, such as layer.units", show(key))
            ok = False
        elif not isinstance(values, list) or not values:
            ck.fail(sweep, key, f"sweep.{clip(key)}", "must be a non-empty list", "a list of values", show(values))
            ok = False
        else:
            for index, value in enumerate(values):
                if case.spell(value) is None:  # it would make an id pytest -k, --lf and junit cannot take
                    ck.must_be(sweep, key, f"sweep.{clip(key)}[{index}]", ID_VALUE, value)
                    ok = False
                    break
    if ok:
        keys = tuple(sweep)
        for key, label in zip(keys, case.sweep_labels(tuple((key, None) for key in keys))):
            if not case.ID_WORD.fullmatch(label):
                ck.must_be(sweep, key, f"sweep.{clip(key)}", "a path an id can spell (letters, digits, '_', "
                           "'.' and '-'; the id shows its last part)", key)
                ok = False
    if not ok or not check_sweep_points(ck, raw, sweep):
        return []
    cases: list[case.Case] = []
    seen: set[str] = set()
    for combo in itertools.product(*sweep.values()):
        point_raw = copy_tree(raw, shared=("sweep",))  # a point reads its case's sweep, never changes it
        for key, value in zip(sweep, combo):
            node = point_raw
            parts = key.split(".")
            for part in parts[:-1]:
                node = node[part]
            node[parts[-1]] = copy_tree(value)
            if isinstance(node, LineDict):
                node.key_lines[parts[-1]] = sweep.line_of(key)
        before = len(ck.problems)
        cases += case_from_point(ck, point_raw, base_id, tuple(zip(sweep, combo)), path)
        # The same problem at every sweep point is reported once.
        fresh = []
        for p in ck.problems[before:]:
            if str(p) not in seen:
                seen.add(str(p))
                fresh.append(p)
        ck.problems[before:] = fresh
    # Values that print alike (4 and 4, 'true' and true) would give two cases one id.
    twice = [cid for cid, n in Counter(c.id for c in cases).items() if n > 1]
    if twice:
        ck.fail(raw, "sweep", "sweep", "two sweep points get the same id",
                "values that differ as written", show(twice[0]))
        return []
    return cases
