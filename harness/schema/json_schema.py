"""The JSON Schema of a case file, generated from the tables the validator reads, for editors.

Point the YAML language server (VS Code's "YAML" extension) at the shipped
``harness/case-file.schema.json`` and a case file gets completion, hover text and most of its
problems as it is typed.  The shipped file is ``schema_text()``; ``tests/unit/test_json_schema.py``
fails when it is stale.  Regenerate it with ``REGENERATE``::

    python -m harness.schema.json_schema harness/case-file.schema.json

Every key set, closed set of values, default and required key comes from the table the validator
reads (``keys``, ``keras_api``, ``model_layers``, ``layers``, ``kernels``); only the single keys
the validator names in its code are named here as there (``id``, ``class``, ``mask.kind``,
``calls.count``, ``expect.error.type``, ``tolerance.reason``, ``input.values``).  What each kind of
argument takes is said once here per kind (``_KINDS``), as ``layer.py`` checks it once per kind.
A table key without a schema here, or a schema for a key the table lacks, fails at once
(``_properties``), naming the key.

The schema is draft-07 (the one the YAML language server supports best).  Every bundled case
file passes it, and it says less than the validator, more only where said at the end.  A key a
case must have may come from its sweep instead (``layer: {class: LSTM}`` with
``sweep: {layer.units: [4, 8]}``), so each such requirement holds unless the sweep names it
(``_needed``).  Left to the validator (``keras-equiv validate``, or collection), because JSON
Schema cannot say it or it depends on another field:

- shapes: ``input.values`` against batch/timesteps/features, and ``mask``, ``mask.lengths``
  (<= timesteps), ``initial_state``, ``weights`` and ``expect.values`` against the input and the
  layer; which weights a layer has (``bias`` only with ``use_bias``; ``forward``/``backward`` only
  for a Bidirectional);
- output names, which depend on the layer: the keys of a per-output ``tolerance`` and of
  ``expect.values``, and ``expect.mismatch.outputs``;
- rules between fields: ``input.data: values`` exactly when ``input.values`` is given;
  ``mask_via`` needs a ``mask``; ``calls`` needs a stateful layer, ``reset_before`` in
  [2, count], one ``batches`` entry per call, all alike unless ``expect.error``;
  ``expect.error`` alone (no values, mismatch, kernel or golden); ``training`` with dropout on a
  single unmasked call; an ``initial_state`` for a Bidirectional whose directions differ;
- a ``model:``: Embedding first only (then ``input`` is integer ids without ``features``), no
  ``return_state``, ``stateful`` or ``merge_mode: none`` inside it, each layer's output fitting
  the next, and at most one -1 in a ``target_shape``;
- the sweep: that a path names a field of this very case, that each swept value suits the field it
  replaces, labels an id can spell when two paths share a last part, and two points spelling one id;
- ``limits`` (sweep points, timesteps, elements, calls) and duplicate ids, in a file and across
  files; that ``expect.golden`` names an existing file and ``expect.error.match`` compiles;
- numbers: JSON has one number type, so ``4.0`` passes as an integer, and NaN and infinity pass
  as numbers (the validator wants a YAML integer, and finite numbers).

YAML 1.1 spellings (``yes``, ``010``) need no rule: the editor reads YAML 1.2, as the harness
does (``yaml_lines``), so they are strings and fail where a flag or a number belongs.

Where it says more than the validator, on purpose: a list of numbers (``input.values``, ``mask``,
``initial_state``, ``weights``, ``expect.values``) holds only numbers here, where the validator
reads ``null``, ``true`` or ``"1.5"`` in one through NumPy (as NaN, 1.0, 1.5); and a value the
sweep replaces at every point is still checked as written.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import keras_api as api
from .. import kernels, layers
from .. import model_layers as ml
from ..case import ID_WORD
from ..modes import MODES
from .expand import ID_VALUE
from .expect import LOOSE_TOLERANCE
from .keys import (BACKENDS, CALLS_KEYS, CASE_KEYS, EMBEDDING_DATA, EMBEDDING_INPUT_AXES, EMBEDDING_INPUT_KEYS,
                   ERROR_KEYS, EXPECT_KEYS, FILE_KEYS, ID_PATTERN, ID_RULE, INITIAL_STATES, INPUT_AXES, INPUT_DATA,
                   INPUT_DEFAULTS, INPUT_KEYS, KERAS_MAJORS, LAYER_CASE_NEEDS, LIMIT_DEFAULTS, LIMIT_KEYS,
                   MASK_KEYS, MASK_KIND_KEYS, MASK_VIA, MISMATCH_KEYS, MODEL_CASE_KEYS, MODEL_CASE_NEEDS,
                   MODEL_EXPECT_KEYS, REQUIRES_KEYS, TOLERANCE_KEYS, UNSWEPT_KEYS, WEIGHT_SOURCES)
from .messages import show

Schema = dict[str, Any]

DRAFT = "http://json-schema.org/draft-07/schema#"
SCHEMA_ID = "https://keras-equiv.invalid/case-file.schema.json"
SHIPPED = Path(__file__).resolve().parent.parent / "case-file.schema.json"
REGENERATE = "python -m harness.schema.json_schema harness/case-file.schema.json"

# What each case key is for, as the README's "Writing a case" table says it (hover text).
CASE_KEY_ABOUT = {
    "id": "unique across all case files; a-z, 0-9, '_' and '-'",
    "about": "what the case shows (and which discrepancy class it pins)",
    "layer": "class plus Keras constructor arguments, checked against the real signature",
    "model": "instead of layer: a list of layers run as a keras.Sequential, each with a NumPy reference",
    "input": "batch (default 2), timesteps, features, data (normal by default) or explicit values; scale",
    "mask": "an explicit 0/1 (batch, timesteps) list, or {kind: right_padded|left_padded|random|explicit, ...}",
    "mask_via": "argument (default: layer(x, mask=...)) or masking_layer (a Masking(0.0) layer in front)",
    "initial_state": "zeros, random, or one (batch, units) list per state in Keras's order",
    "weights": "keras (default: Keras's initializers under the case seed), random, or {kernel: ..., ...}",
    "dtype": "the dtype policy (float32 by default)",
    "devices": "[cpu] by default; [cpu, gpu] makes one case per device",
    "modes": "how the layer is executed: [eager] by default; [eager, function, xla, predict, symbolic] "
             "makes one case per mode",
    "seed": "optional; by default derived from the case id, never from run order",
    "training": "true runs the layer in training mode (dropout masks are recovered, not predicted)",
    "calls": "stateful layers: consecutive calls, reset_state() before the calls listed in reset_before",
    "sweep": "dotted path -> list of values; the cartesian product expands into one case per point",
    "expect": "what must hold besides Keras == reference",
    "tolerance": "{atol, rtol} for every output or per output name; defaults come from one table by dtype",
    "requires": "what the case needs to run; unmet means skipped with the reason",
    "limits": "caps on how big the case may be, raised (or lowered) for this case",
}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/definitions/{name}"}


def _described(schema: Schema, text: str) -> Schema:
    """``schema`` with hover text (draft-07 ignores a ``$ref``'s siblings, so a reference is wrapped)."""
    return {"allOf": [schema], "description": text} if "$ref" in schema else {**schema, "description": text}


def _whole(regex: str) -> str:
    """A ``pattern`` that ``regex`` must match whole: ``pattern`` searches, and Python's ``$`` (which
    the ``jsonschema`` package uses) also matches before a trailing newline; ``(?!\\n)`` refuses it
    there and changes nothing for ECMA-262 (editors), whose ``$`` is the end."""
    return f"^(?:{regex})$(?!\\n)"


def _properties(keys: Sequence[str], schemas: Mapping[str, Schema]) -> dict[str, Schema]:
    """``schemas`` for exactly the keys of a table, in its order: a key added to the table and not
    here (or the other way round) is an error, not a key the schema silently refuses."""
    missing, extra = [k for k in keys if k not in schemas], [k for k in schemas if k not in keys]
    if missing or extra:
        raise ValueError(f"harness/schema/json_schema.py: no schema for the table's {missing}" if missing else
                         f"harness/schema/json_schema.py: a schema for {extra}, which the table lacks")
    return {key: schemas[key] for key in keys}


def _object(properties: Mapping[str, Schema], required: Sequence[str] = (), **more: Any) -> Schema:
    """A mapping that takes only ``properties`` (the validator refuses every other key)."""
    out: Schema = {"type": "object", "properties": dict(properties), "additionalProperties": False}
    if required:
        out["required"] = list(required)
    return {**out, **more}


def _integer(minimum: int, **more: Any) -> Schema:
    return {"type": "integer", "minimum": minimum, **more}


def _nested(depth: int, leaf: Schema) -> Schema:
    """Lists ``depth`` deep with ``leaf`` items: (batch, timesteps) is 2."""
    for _ in range(depth):
        leaf = {"type": "array", "items": leaf}
    return leaf


def _class_is(names: Sequence[str]) -> Schema:
    """The ``if`` of a mapping whose ``class`` is one of ``names``."""
    spelled = {"const": names[0]} if len(names) == 1 else {"enum": list(names)}
    return {"properties": {"class": spelled}, "required": ["class"]}


def _by_class(spellings: Mapping[str, Sequence[str]], definition: str, description: str) -> Schema:
    """A mapping with a ``class``: each class's own definition (``definition.Class``) applies once
    ``class`` names it (``spellings``: the names that spell each class), so a misspelt class is one
    problem (at ``class``) and an unknown argument another (at the argument)."""
    every = [name for names in spellings.values() for name in names]
    return {"type": "object", "description": description, "required": ["class"],
            "properties": {"class": {"enum": every}},
            "allOf": [{"if": _class_is(names), "then": _ref(f"{definition}.{cls}")}
                      for cls, names in spellings.items()]}


Step = tuple[str, Schema | None]  # a key on the way down from the case, and what must hold of its value


def _needed(steps: Sequence[Step], key: str, instead: str | None = None) -> Schema:
    """The mapping ``steps`` lead to must have ``key`` (or ``instead``), unless the case's sweep names
    either: every sweep point writes its value in.  Said as "if the mapping is there (and the sweep
    does not give the key), then it has it", so that an editor offers no key from here: one that
    is there already is never offered."""
    need: Schema = {"required": [key]}
    if instead:
        need = {"if": {"required": [instead]}, "else": need}
    there: Schema = {}  # each step's key present, and what must hold of its value holding
    for part, holds in reversed(steps):
        value = [schema for schema in (holds, there) if schema]
        there = {"required": [part]}
        if value:
            there["properties"] = {part: value[0] if len(value) == 1 else {"allOf": value}}
        need = {"properties": {part: need}}
    path = tuple(part for part, _ in steps)
    named = {"type": "object", "anyOf": [{"required": [".".join((*path, k))]} for k in (key, instead) if k]}
    unswept = {"not": {"required": ["sweep"], "properties": {"sweep": named}}}  # (sweep: null is no sweep)
    return {"if": {"allOf": [there, unswept]} if there else unswept, "then": need}


# ---------------------------------------------------------------- layers

# What an argument of each kind takes: layer.check_layer and layer.check_plain, kind by kind.
# (api.LAYER, a layer inside a layer, is _argument's: which layers it takes depends on the holder.)
_KINDS: dict[str, Schema] = {
    api.UNITS: _integer(1),
    api.BOOL: {"type": "boolean"},
    api.RATE: {"type": "number", "minimum": 0, "maximum": 1},
    api.ACTIVATION: _ref("activation"),
    api.INITIALIZER: _ref("initializer"),
    api.OPTIONAL_NAME: {"type": ["string", "null"]},
    api.NAME: {"type": ["string", "null"]},
    api.SEED: {"type": ["integer", "null"], "minimum": 0},
    api.CUDNN: {"enum": list(api.USE_CUDNN)},
    api.MERGE: {"enum": [*api.MERGE_MODES, *api.MERGE_MODE_WORDS]},
    api.IMPLEMENTATION: {"enum": list(api.IMPLEMENTATIONS)},
    ml.PADDING: {"enum": list(ml.PADDINGS)},
    ml.STRIDE: {"type": ["integer", "null"], "minimum": 1},
    ml.NUMBER: {"type": "number"},
    ml.SHAPE: {"type": "array", "minItems": 1, "items": {"anyOf": [_integer(1), {"const": -1}]}},
}


def _argument(kind: str, default: Any, required: bool, inner: str) -> Schema:
    """One constructor argument; ``inner``: the definition a layer argument (kind api.LAYER) takes."""
    if kind == api.LAYER:
        schema = _ref(inner) if required else {"anyOf": [_ref(inner), {"type": "null"}]}
    else:
        schema = _KINDS[kind]
    if required:
        return _described(schema, f"{kind}; required")
    out = _described(schema, f"{kind}; Keras default {show(default)}")
    return out if default is None else {**out, "default": default}


def _recurrent(cls: str, strict: bool) -> Schema:
    """A layer of ``api.LAYER_ARGS``.  ``strict`` (in a model, where no sweep reaches): its required
    arguments are required here; in a layer case they are the case's ``_needed``."""
    prefix = "model" if strict else "layer"
    required = api.REQUIRED_ARGS[cls]
    args = {arg: _argument(kind, default, arg in required, f"{prefix}.recurrent")
            for arg, (default, kind) in api.LAYER_ARGS[cls].items()}
    return _object({"class": {"const": cls}, **args}, ("class", *required) if strict else ("class",),
                   title=cls, description=f"keras.layers.{cls}")


def _plain(cls: str) -> Schema:
    """A non-recurrent layer of a model (``model_layers.MODEL_LAYERS``); a layer argument is
    TimeDistributed's, one of ``model_layers.TD_INNER``."""
    required = ml.REQUIRED.get(cls, ())
    args = {}
    for arg, (default, kind) in ml.MODEL_LAYERS[cls].items():
        args[arg] = _described(_ref("model.inner"), "the layer applied at each step; required") \
            if kind == api.LAYER else _argument(kind, default, arg in required, "")
    return _object({"class": {"const": cls}, **args}, ("class", *required), title=cls,
                   description=f"keras.layers.{cls}")


def _layer_definitions() -> dict[str, Schema]:
    recurrent = {cls: (cls,) for cls in api.RECURRENT_CLASSES}
    every = {cls: (cls,) for cls in api.LAYER_ARGS}
    model = {cls: (cls,) for cls in ml.ALL_CLASSES}
    defs = {
        "layer": _by_class(every, "layer", "a recurrent layer: class plus Keras constructor arguments"),
        "layer.recurrent": _by_class(recurrent, "layer", "the recurrent layer a Bidirectional wraps"),
        "model.recurrent": _by_class(recurrent, "model", "the recurrent layer a Bidirectional wraps"),
        "model.entry": _by_class(model, "model", "one layer of the Sequential"),
        "model.inner": _by_class({cls: (cls,) for cls in ml.TD_INNER}, "model",
                                 "the layer TimeDistributed applies at each step"),
    }
    for cls in api.LAYER_ARGS:
        defs[f"layer.{cls}"] = _recurrent(cls, strict=False)
        defs[f"model.{cls}"] = _recurrent(cls, strict=True)
    defs.update({f"model.{cls}": _plain(cls) for cls in ml.MODEL_LAYERS})
    return defs


def _initializer_definitions() -> dict[str, Schema]:
    """A name, or ``{class: ..., <its config keys>}``; the snake_case names spell classes too."""
    names = [*api.INITIALIZER_NAMES, *api.INITIALIZERS]
    spellings = {cls: (cls, *(n for n, c in api.INITIALIZER_NAMES.items() if c == cls)) for cls in api.INITIALIZERS}
    by_name = [n for n in names if api.INITIALIZER_NAMES.get(n, n) not in api.CONFIG_ONLY_INITIALIZERS]
    defs = {"initializer": {"anyOf": [{"enum": by_name}, _by_class(spellings, "initializer", "an initializer class")],
                            "description": "an initializer name, or {class: ..., ...} such as {class: Constant, "
                                           "value: 0.5}"}}
    for cls, config in api.INITIALIZERS.items():
        values = {arg: {"description": "passed to Keras as written"} if arg in api.INITIALIZER_WORDS
                  else {"type": ["number", "null"]} for arg in config}
        defs[f"initializer.{cls}"] = _object({"class": {"enum": list(spellings[cls])}, **values}, ("class",),
                                             description=f"keras.initializers.{cls}")
    return defs


def _weights() -> Schema:
    """keras, random, or weight name -> values, as ``layers.weight_shapes`` names them for each
    class (a Bidirectional nests them by direction)."""
    def sample(cls: str) -> dict:  # the class with its required arguments, to ask layers for names
        return {"class": cls, **{arg: 1 if api.LAYER_ARGS[cls][arg][1] == api.UNITS else
                                 sample(api.RECURRENT_CLASSES[0]) for arg in api.REQUIRED_ARGS[cls]}}

    def mapping(shapes: Mapping) -> Schema:
        return _object({name: mapping(shape) if isinstance(shape, Mapping) else
                        _described(_ref("numbers"), "one number for the whole array, or a nested list of its shape")
                        for name, shape in shapes.items()})

    maps = {json.dumps(m, sort_keys=True): m for m in
            (mapping(layers.weight_shapes(api.with_defaults(sample(cls)), 1)) for cls in api.LAYER_ARGS)}
    return {"anyOf": [{"enum": list(WEIGHT_SOURCES)}, *maps.values()]}


# ---------------------------------------------------------------- sections

def _input(model: bool) -> Schema:
    """``input`` of a layer case, or of a model case (either kind: its first layer decides)."""
    least = dict(INPUT_AXES)
    if model:  # the least size either kind of input allows
        least.update({axis: min(n, least[axis]) for axis, n in EMBEDDING_INPUT_AXES.items()})
    # Defaults are said, not given as "default": an editor would write them in with the section.
    axes = {axis: _integer(n, **({"description": f"default {show(INPUT_DEFAULTS[axis])}"}
                                 if axis in INPUT_DEFAULTS else {})) for axis, n in least.items()}
    data = [*INPUT_DATA, *(d for d in EMBEDDING_DATA if d not in INPUT_DATA)] if model else list(INPUT_DATA)
    floats = _nested(len(INPUT_AXES), {"type": "number"})
    ids = _nested(len(EMBEDDING_INPUT_AXES), _integer(0))
    schemas = {**axes, "data": {"enum": data, "description": f"default {INPUT_DEFAULTS['data']}"},
               "values": {"anyOf": [floats, ids]} if model else floats,
               "scale": {"type": "number", "description": f"multiplies the data; default {INPUT_DEFAULTS['scale']:g}"}}
    keys = list(dict.fromkeys([*INPUT_KEYS, *EMBEDDING_INPUT_KEYS])) if model else INPUT_KEYS
    return _object(_properties(keys, schemas))


def _mask() -> Schema:
    """An explicit 0/1 list, or a mapping whose kind says the one other key it takes."""
    mapping = _object(_properties(MASK_KEYS, {
        "kind": {"enum": list(MASK_KIND_KEYS)},
        "lengths": {"type": "array", "items": _integer(0), "description": "one length per batch row"},
        "rate": {"type": "number", "minimum": 0, "maximum": 1},
        "values": _nested(2, {"type": "number"}),
    }), allOf=[{"if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
                "then": {"propertyNames": {"enum": ["kind", key]}}} for kind, key in MASK_KIND_KEYS.items()])
    return {"anyOf": [_nested(2, {"enum": [0, 1]}), mapping]}


def _tolerance() -> Schema:
    """``{atol, rtol}`` for every output, or output name -> ``{atol, rtol}``."""
    bounds = [key for key in TOLERANCE_KEYS if key != "reason"]
    one = _object(_properties(TOLERANCE_KEYS, {
        **{key: {"type": "number", "minimum": 0} for key in bounds},
        "reason": {"type": "string", "pattern": r"\S", "description": f"why an atol or rtol above "
                                                                     f"{LOOSE_TOLERANCE:g} is right"},
    }), allOf=[{"if": {"properties": {key: {"exclusiveMinimum": LOOSE_TOLERANCE}}, "required": [key]},
                "then": {"required": ["reason"]}} for key in bounds])
    # As check_tolerance reads it: only these keys is one for every output, else output name -> one.
    return {"type": "object", "if": {"propertyNames": {"enum": list(TOLERANCE_KEYS)}}, "then": one,
            "else": {"additionalProperties": one}}


def _expect(model: bool) -> Schema:
    values = {"type": "object", "additionalProperties": _ref("numbers"),
              "description": "output name -> its values from an outside source"}
    params = _integer(0, description="checked against count_params() and the formula")
    if model:
        return _object(_properties(MODEL_EXPECT_KEYS, {
            "params": params, "values": values,
            "layer_params": {"type": "array", "items": _integer(0), "description": "one count per model layer"},
            "output_shape": {"type": "array", "minItems": 1, "items": _integer(0), "description": "batch first"},
        }))
    return _object(_properties(EXPECT_KEYS, {
        "params": params, "values": values,
        "error": _object(_properties(ERROR_KEYS, {"type": {"type": "string"}, "match": {"type": "string"}}),
                         ("type",), description="the case passes only if Keras raises this"),
        "mismatch": _object(_properties(MISMATCH_KEYS, {
            "outputs": {"type": "array", "minItems": 1, "items": {"type": "string"}},
            "reason": {"type": "string", "pattern": r"\S"}}), MISMATCH_KEYS,
            description="a documented Keras behaviour that differs from the reference"),
        "kernel": {"enum": list(kernels.KERNELS), "description": "the kernel Keras must run"},
        "golden": {"type": "string", "description": "FILE.h5 or FILE.h5::recorded-id, relative to the case file"},
        "gradients": {"type": "boolean", "description": "also check Keras's gradients against the NumPy backward "
                                                        "pass (float32 or float64, no training, no error)"},
    }))


def _sweep(keys: Sequence[str]) -> Schema:
    """Dotted path -> non-empty list of values (null: no sweep); a path starts at a case key a sweep
    may change, and its last part is what the id shows."""
    roots = "|".join(key for key in keys if key not in UNSWEPT_KEYS)  # plain words: nothing to escape
    unswept = ", ".join(UNSWEPT_KEYS)
    path = {"pattern": _whole(rf"(?:{roots})(?:(?:\.[^.]*)*\.{ID_WORD.pattern})?"),
            "patternErrorMessage": f"a dotted path to a case field, such as layer.units (not {unswept})"}
    return {"type": ["object", "null"], "minProperties": 1, "propertyNames": path,
            "additionalProperties": {"type": "array", "minItems": 1, "items": _ref("sweep_value")}}


def _sweep_value() -> Schema:
    """What ``case.spell`` can write in an id: any type, each keyword below bearing on one (a string's
    pattern, a list's items, a mapping's keys and values), so a problem is said as itself."""
    word = {"pattern": _whole(ID_WORD.pattern), "patternErrorMessage": f"must be {ID_VALUE}"}
    return {"description": ID_VALUE, **word, "minItems": 1, "items": _ref("sweep_value"),
            "minProperties": 1, "propertyNames": word, "additionalProperties": _ref("sweep_value")}


def _case(model: bool) -> Schema:
    """A layer case, or a ``model:`` case (which takes only MODEL_CASE_KEYS)."""
    devices = {"enum": list(api.DEVICES)}
    modes = {"enum": list(MODES)}
    schemas = {
        "id": {"type": "string", "pattern": _whole(ID_PATTERN.pattern), "patternErrorMessage": f"an id {ID_RULE}"},
        "about": {"type": "string"},
        "layer": {"type": "object", "allOf": [_ref("layer")]},  # (the type: an editor then writes "layer:")
        "model": {"type": "array", "minItems": 1, "items": _ref("model.entry"),
                  "contains": _class_is(list(api.LAYER_ARGS))},
        "input": _input(model),
        "mask": _mask(),
        "mask_via": {"enum": list(MASK_VIA)},
        "initial_state": {"anyOf": [{"enum": [*INITIAL_STATES, None]},
                                    {"type": "array", "items": {"type": "array", "items": _ref("numbers")}}]},
        "weights": _weights(),
        "dtype": {"enum": list(ml.MODEL_DTYPES if model else layers.DTYPES)},
        "devices": {"anyOf": [devices, {"type": "array", "minItems": 1, "items": devices}]},
        "modes": {"anyOf": [modes, {"type": "array", "minItems": 1, "items": modes}]},
        "seed": _integer(0),
        "training": {"type": "boolean"},
        "calls": _object(_properties(CALLS_KEYS, {
            "count": _integer(1),
            "reset_before": {"type": "array", "items": _integer(2), "description": "call numbers in [2, count]"},
            "batches": {"type": ["array", "null"], "items": _integer(1), "description": "one batch size per call"},
        })),
        "sweep": _sweep(MODEL_CASE_KEYS if model else CASE_KEYS),
        "expect": _expect(model),
        "tolerance": _tolerance(),
        "requires": _object(_properties(REQUIRES_KEYS, {
            "keras": {"anyOf": [{"enum": list(KERAS_MAJORS)},
                                {"type": "string", "pattern": "[<>=!~]", "description": "a version specifier: >=3.2"}]},
            "backend": {"anyOf": [{"enum": list(BACKENDS)}, {"type": "array", "items": {"enum": list(BACKENDS)}}]},
            "device": devices,
        })),
        "limits": _object(_properties(LIMIT_KEYS, {
            key: _integer(1, description=f"default {default}")
            for key, default in LIMIT_DEFAULTS.items()})),
    }
    schemas = _properties(CASE_KEYS, schemas)
    about = _properties(CASE_KEYS, CASE_KEY_ABOUT)
    properties = {key: _described(schemas[key], about[key]) for key in (MODEL_CASE_KEYS if model else CASE_KEYS)}
    return _object(properties, ("id",), allOf=_model_case_needs() if model else _layer_case_needs())


def _layer_case_needs() -> list[Schema]:
    """What a layer case must have (``_needed``): its sections, each class's required arguments (in
    the layer and in a layer inside it), input's axes without a default, a mask's kind and the key
    its kind reads, calls.count."""
    out = [_needed((), key) for key in LAYER_CASE_NEEDS]
    for cls, required in api.REQUIRED_ARGS.items():
        out += [_needed([("layer", _class_is([cls]))], arg) for arg in required]
        for holder, (_, kind) in api.LAYER_ARGS[cls].items():
            if kind == api.LAYER:
                out += [_needed([("layer", _class_is([cls])), (holder, _class_is([inner]))], arg)
                        for inner in api.RECURRENT_CLASSES for arg in api.REQUIRED_ARGS[inner]]
    mapping = {"type": "object"}  # (a mask may be a list instead)
    out += [_needed([("input", None)], axis, instead="values") for axis in INPUT_AXES if axis not in INPUT_DEFAULTS]
    out.append(_needed([("mask", mapping)], "kind"))
    out += [_needed([("mask", {"properties": {"kind": {"const": kind}}, "required": ["kind"]})], key)
            for kind, key in MASK_KIND_KEYS.items()]
    out.append(_needed([("calls", None)], "count"))
    return out


def _model_case_needs() -> list[Schema]:
    """What a model case must have: its sections, and the input axes both kinds of input need."""
    out = [_needed((), key) for key in MODEL_CASE_NEEDS]
    return out + [_needed([("input", None)], axis, instead="values") for axis in INPUT_AXES
                  if axis not in INPUT_DEFAULTS and axis in EMBEDDING_INPUT_AXES]


# ---------------------------------------------------------------- the file

def case_file_schema() -> Schema:
    """The JSON Schema (draft-07) of a keras-equiv case file, built from the validator's tables."""
    return {
        "$schema": DRAFT,
        "$id": SCHEMA_ID,
        "title": "keras-equiv case file",
        "description": "Cases that drive real Keras recurrent layers against a NumPy reference "
                       "(README: Writing a case).  keras-equiv validate checks what this schema cannot.",
        **_object(_properties(FILE_KEYS, {"cases": {"type": "array", "minItems": 1, "items": _ref("case"),
                                                    "description": "the cases of this file"}}), FILE_KEYS),
        "definitions": {
            "case": {"type": "object", "if": {"required": ["model"]},
                     "then": _ref("model_case"), "else": _ref("layer_case"),
                     "description": "a layer case, or with model: a model case"},
            "layer_case": _case(model=False),
            "model_case": _case(model=True),
            **_layer_definitions(),
            **_initializer_definitions(),
            "activation": {"enum": [*api.ACTIVATIONS, None], "description": "an activation name, or null"},
            "numbers": {"type": ["number", "array"], "items": _ref("numbers"),
                        "description": "a number or a nested list of numbers"},
            "sweep_value": _sweep_value(),
        },
    }


def schema_text() -> str:
    """The schema as shipped: pretty-printed, keys sorted, ASCII, one trailing newline."""
    return json.dumps(case_file_schema(), indent=2, sort_keys=True) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m harness.schema.json_schema [PATH]``: write the schema to PATH, else to stdout."""
    parser = argparse.ArgumentParser(prog="python -m harness.schema.json_schema", description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, help=f"where to write it (the shipped one: {SHIPPED.name})")
    args = parser.parse_args(argv)
    if args.path is None:
        sys.stdout.write(schema_text())
    else:
        args.path.write_text(schema_text(), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
