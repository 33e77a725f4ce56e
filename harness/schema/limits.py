"""How big one case may be: caps checked at validation, from the shapes alone, before anything
is built, so a hostile or mistyped case file is refused at once instead of filling memory.

=============  ==========  ==============================================================
cap            default     what it bounds
=============  ==========  ==============================================================
sweep_points   1000        points of the case's sweep: the product of its list lengths,
                           counted before anything is expanded
timesteps      10000       ``input.timesteps`` (the reference steps through each one)
elements       10000000    numbers in one array: one call's input (batch x timesteps x
                           features, with the largest of ``calls.batches``), one output,
                           one layer's weights (its parameter count)
calls          100         ``calls.count``
=============  ==========  ==============================================================

A case raises (or lowers) any of them for itself with a ``limits:`` section, each value a
positive integer::

    limits: {sweep_points: 50000, elements: 20000000}

Two more caps belong to the file, not to a case (they are met before any case is read), and
``limits:`` cannot change them: aliases may add at most ``yaml_lines.ALIAS_VALUES`` (100000)
values to a file, and an integer has at most ``yaml_lines.INT_DIGITS`` (100) digits.  A value
echoed in a message is cut at ``messages.SHOW_CHARS`` (60) characters.
"""
from __future__ import annotations

import math

from .. import keras_api as api
from .. import layers
from .. import model_layers as ml
from ..case import InputSpec, OutputKey
from ..yaml_lines import LineDict
from .keys import LIMIT_DEFAULTS, LIMIT_KEYS
from .messages import Checker, show


def check_limits(ck: Checker, raw: LineDict) -> dict[str, int] | None:
    """The case's caps: the defaults, with what its ``limits:`` section sets."""
    limits = dict(LIMIT_DEFAULTS)
    if "limits" not in raw:
        return limits
    node = ck.mapping(raw, "limits", "limits")
    if node is None or not ck.keys(node, LIMIT_KEYS, "limits"):
        return None
    for key in node:
        got = ck.integer(node, key, f"limits.{key}", 1)
        if got is None:
            return None
        limits[key] = got
    return limits


def check_sweep_points(ck: Checker, raw: LineDict, sweep: LineDict) -> bool:
    """The number of sweep points, from the list lengths alone (nothing expanded yet)."""
    points = math.prod(len(values) for values in sweep.values())
    if points > ck.limits["sweep_points"]:
        ck.over_limit(raw, "sweep", "sweep", "too many sweep points", "sweep_points", show(points))
        return False
    return True


def check_input_size(ck: Checker, node: LineDict, batch: int, timesteps: int, features: int | None) -> bool:
    """``input``: timesteps, and the elements of one call's input (``features`` None: ids)."""
    if timesteps > ck.limits["timesteps"]:
        ck.over_limit(node, "timesteps", "input.timesteps", "is over the limit", "timesteps", show(timesteps))
        return False
    return check_elements(ck, node, None, "input", batch, timesteps, features)


def check_elements(ck: Checker, node: LineDict, key: str | None, field: str, batch: int, timesteps: int,
                   features: int | None) -> bool:
    sizes = {"batch": batch, "timesteps": timesteps} if features is None else \
        {"batch": batch, "timesteps": timesteps, "features": features}
    elements = math.prod(sizes.values())
    if elements > ck.limits["elements"]:
        ck.over_limit(node, key, field, "too many elements in one call's input", "elements",
                      " x ".join(f"{k} {show(v)}" for k, v in sizes.items()) + f" = {show(elements)}")
        return False
    return True


def check_sizes(ck: Checker, raw: LineDict, fields: dict, shapes: dict[OutputKey, tuple[int, ...]]) -> None:
    """One point's arrays: each call's input (``calls.batches``), every output, every layer's weights."""
    inp: InputSpec = fields["input"]
    calls = fields.get("calls")
    if calls is not None and calls.batches:
        calls_node = raw["calls"]
        check_elements(ck, calls_node, "batches", "calls.batches", max(calls.batches), inp.timesteps, inp.features)
    if "model" in fields:  # the first layer over a cap (the layers after it only repeat the problem)
        shape = ml.input_shape(fields["model"], inp.timesteps, inp.features)
        for i, (item, spec) in enumerate(zip(raw["model"], fields["model"])):
            out = shapes[OutputKey(f"model[{i}]")]
            if not (_weights(ck, item, None, f"model[{i}]", ml.param_formula(spec, shape)[0])
                    and _output(ck, item, None, f"model[{i}]", "its output", out)):
                return
            shape = out[1:]
        return
    full = api.with_defaults(fields["layer"])
    _weights(ck, raw, "layer", "layer", layers.param_formula(full, inp.features)[0])
    first: dict[str, OutputKey] = {}
    for key in shapes:  # one call's outputs: every call's are alike
        first.setdefault(key.name, key)
    for key in first.values():
        if not _output(ck, raw, "layer", "layer", f"output '{key.name}'", shapes[key]):
            return


def _weights(ck: Checker, node: LineDict, key: str | None, field: str, count: int) -> bool:
    if count > ck.limits["elements"]:
        ck.over_limit(node, key, field, "has too many weights", "elements", f"{show(count)} parameters")
        return False
    return True


def _output(ck: Checker, node: LineDict, key: str | None, field: str, what: str, shape: tuple[int, ...]) -> bool:
    elements = math.prod(shape)
    if elements > ck.limits["elements"]:
        ck.over_limit(node, key, field, f"{what} has too many elements", "elements",
                      f"shape ({', '.join(show(n) for n in shape)}{',' * (len(shape) == 1)}) = {show(elements)}")
        return False
    return True
