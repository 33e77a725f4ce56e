"""The words a case file may use: the keys of each section and the values some of them take."""
from __future__ import annotations

import re

CASE_KEYS = ("id", "about", "layer", "model", "input", "mask", "mask_via", "initial_state", "weights",
             "dtype", "devices", "seed", "training", "calls", "sweep", "expect", "tolerance",
             "requires", "limits")
# A case with ``model:`` (a whole Sequential) takes only these.
MODEL_CASE_KEYS = ("id", "about", "model", "input", "dtype", "devices", "seed", "sweep", "expect",
                   "tolerance", "requires", "limits")
INPUT_KEYS = ("batch", "timesteps", "features", "data", "values", "scale")
INPUT_DATA = ("normal", "uniform", "one_hot", "arange", "values")
MASK_KEYS = ("kind", "lengths", "rate", "values")
MASK_KINDS = ("right_padded", "left_padded", "random", "explicit")
MASK_VIA = ("argument", "masking_layer")
EXPECT_KEYS = ("params", "values", "error", "mismatch", "kernel", "golden")
MODEL_EXPECT_KEYS = ("params", "layer_params", "output_shape", "values")
REQUIRES_KEYS = ("keras", "backend", "device")
BACKENDS = ("tensorflow", "jax", "torch")
CALLS_KEYS = ("count", "reset_before", "batches")
TOLERANCE_KEYS = ("atol", "rtol", "reason")
# The caps on how big one case may be, and their defaults; ``limits:`` in a case raises (or
# lowers) them for that case.  What each one bounds: harness/schema/limits.py.
LIMIT_DEFAULTS = {"sweep_points": 1_000, "timesteps": 10_000, "elements": 10_000_000, "calls": 100}
LIMIT_KEYS = tuple(LIMIT_DEFAULTS)
ID_PATTERN = re.compile(r"[a-z0-9_-]+")  # fullmatch it: "^...$" lets a trailing newline through
# Sections a sweep may reach into, and the keys each one has.
SECTION_KEYS = {"input": INPUT_KEYS, "mask": MASK_KEYS, "calls": CALLS_KEYS,
                "requires": REQUIRES_KEYS, "expect": EXPECT_KEYS}
