"""The words a case file may use: the keys of each section and the values some of them take."""
from __future__ import annotations

import re

FILE_KEYS = ("cases",)  # the top level of a case file
CASE_KEYS = ("id", "about", "layer", "model", "input", "mask", "mask_via", "initial_state", "weights",
             "dtype", "devices", "modes", "seed", "training", "calls", "sweep", "expect", "tolerance",
             "requires", "limits")
# A case with ``model:`` (a whole Sequential) takes only these.
MODEL_CASE_KEYS = ("id", "about", "model", "input", "dtype", "devices", "seed", "sweep", "expect",
                   "tolerance", "requires", "limits")
# The keys a case must have besides its id (a model case: besides model, which makes it one).
LAYER_CASE_NEEDS = ("layer", "input")
MODEL_CASE_NEEDS = ("input",)
INPUT_KEYS = ("batch", "timesteps", "features", "data", "values", "scale")
# input's axes and the least size of each; an axis without a default is required unless
# input.values gives the shape.
INPUT_AXES = {"batch": 1, "timesteps": 0, "features": 1}
INPUT_DEFAULTS = {"batch": 2, "data": "normal", "scale": 1.0}
INPUT_DATA = ("normal", "uniform", "one_hot", "arange", "values")
# input of a model whose first layer is an Embedding: (batch, timesteps) integer ids.
EMBEDDING_INPUT_KEYS = ("batch", "timesteps", "data", "values")
EMBEDDING_INPUT_AXES = {"batch": 1, "timesteps": 1}
EMBEDDING_DATA = ("ids", "values")
MASK_KEYS = ("kind", "lengths", "rate", "values")
# Each mask kind and the one key beside kind it reads.
MASK_KIND_KEYS = {"right_padded": "lengths", "left_padded": "lengths", "random": "rate", "explicit": "values"}
MASK_KINDS = tuple(MASK_KIND_KEYS)
MASK_VIA = ("argument", "masking_layer")
INITIAL_STATES = ("zeros", "random")  # or one (batch, units) list per state
WEIGHT_SOURCES = ("keras", "random")  # or a mapping of weight name to values
EXPECT_KEYS = ("params", "values", "error", "mismatch", "kernel", "golden", "gradients")
ERROR_KEYS = ("type", "match")
MISMATCH_KEYS = ("outputs", "reason")
MODEL_EXPECT_KEYS = ("params", "layer_params", "output_shape", "values")
REQUIRES_KEYS = ("keras", "backend", "device")
KERAS_MAJORS = (2, 3)
BACKENDS = ("tensorflow", "jax", "torch")
CALLS_KEYS = ("count", "reset_before", "batches")
TOLERANCE_KEYS = ("atol", "rtol", "reason")
# The caps on how big one case may be, and their defaults; ``limits:`` in a case raises (or
# lowers) them for that case.  What each one bounds: harness/schema/limits.py.
LIMIT_DEFAULTS = {"sweep_points": 1_000, "timesteps": 10_000, "elements": 10_000_000, "calls": 100}
LIMIT_KEYS = tuple(LIMIT_DEFAULTS)
ID_PATTERN = re.compile(r"[a-z0-9_-]+")  # fullmatch it: "^...$" lets a trailing newline through
ID_RULE = "may hold only a-z, 0-9, '_' and '-'"  # what ID_PATTERN says, as messages say it
# Case keys a sweep may not change (a sweep path starts at any other case key).
UNSWEPT_KEYS = ("id", "sweep", "about", "limits", "modes")
# Sections a sweep may reach into, and the keys each one has.
SECTION_KEYS = {"input": INPUT_KEYS, "mask": MASK_KEYS, "calls": CALLS_KEYS,
                "requires": REQUIRES_KEYS, "expect": EXPECT_KEYS}
