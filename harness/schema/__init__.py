"""YAML case files -> validated, expanded ``Case`` objects, or a ``CaseSchemaError``.

Every problem names the file, line, case and field:
``cases/x.yaml:12: case 'lstm-basic': layer.units: must be a positive integer, got -4``.
Nothing here imports TensorFlow or Keras.  Plain scalars are read as YAML 1.2 reads them
(``yaml_lines``): ``yes`` or ``010`` where a flag or a number belongs is refused with what to write.

- ``keys``: the words a case file may use;
- ``messages``: how problems are said, and the ``Checker`` that collects them;
- ``layer``: ``layer:`` and ``model:`` entries;
- ``sections``: input, mask, initial_state, weights, calls, training;
- ``expect``: expect, tolerance, requires;
- ``limits``: how big a case may be (sweep points, timesteps, elements per array, calls) and the
  per-case ``limits:`` section that raises a cap, e.g. ``limits: {sweep_points: 50000}``;
- ``expand``: sweeps, and one sweep point -> one Case per device;
- ``files``: files -> cases, and the cross-file duplicate-id check (``IdRegistry``).
"""
from __future__ import annotations

from ..errors import CaseSchemaError, SchemaProblem
from .expand import case_from_point, expand
from .files import IdRegistry, find_case_files, load_file, load_files
from .limits import check_limits
from .keys import (BACKENDS, CALLS_KEYS, CASE_KEYS, EXPECT_KEYS, ID_PATTERN, INPUT_DATA, INPUT_KEYS, LIMIT_DEFAULTS,
                   LIMIT_KEYS, MASK_KEYS, MASK_KINDS, MASK_VIA, MODEL_CASE_KEYS, MODEL_EXPECT_KEYS, REQUIRES_KEYS,
                   TOLERANCE_KEYS)
from .messages import Checker

__all__ = ["BACKENDS", "CALLS_KEYS", "CASE_KEYS", "EXPECT_KEYS", "ID_PATTERN", "INPUT_DATA", "INPUT_KEYS",
           "LIMIT_DEFAULTS", "LIMIT_KEYS", "MASK_KEYS", "MASK_KINDS", "MASK_VIA", "MODEL_CASE_KEYS",
           "MODEL_EXPECT_KEYS", "REQUIRES_KEYS", "TOLERANCE_KEYS", "CaseSchemaError", "Checker", "IdRegistry",
           "SchemaProblem", "case_from_point", "check_limits", "expand", "find_case_files", "load_file", "load_files"]
