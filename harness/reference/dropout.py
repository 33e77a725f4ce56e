"""Training-mode dropout: recover Keras's dropout masks from its output (§9).

Keras's random stream cannot be reproduced, so the check is structural: for every batch row,
try every possible set of masks (each entry 0 or 1/(1-p), one set per call reused at every
timestep) and require that one set reproduces Keras's outputs within tolerance.  The candidates
run through the recurrent reference's own ``forward`` with ``DropoutMasks`` (no second copy of
the cell equations), all candidates of a row at once along the batch axis.  Which masks a cell
draws is a layer fact (layers.dropout_masks).
"""
from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from .. import layers
from . import recurrent
from .recurrent import DropoutMasks


def candidates(cfg: Mapping, features: int) -> tuple[DropoutMasks, int]:
    """Every mask set, stacked along a leading candidate axis, and how many there are."""
    n_in, n_rec = layers.dropout_masks(cfg)
    u = cfg["units"]
    bits = layers.dropout_mask_bits(cfg, features)
    table = np.array(list(itertools.product((0.0, 1.0), repeat=bits))).reshape(2 ** bits, bits)
    keep_in = 1.0 / (1.0 - cfg["dropout"]) if n_in else 1.0  # inverted dropout scaling
    keep_rec = 1.0 / (1.0 - cfg["recurrent_dropout"]) if n_rec else 1.0
    m_in = tuple(table[:, g * features:(g + 1) * features] * keep_in for g in range(n_in))
    off = n_in * features
    m_rec = tuple(table[:, off + g * u: off + (g + 1) * u] * keep_rec for g in range(n_rec))
    return DropoutMasks(m_in, m_rec), 2 ** bits


@dataclass(frozen=True)
class RowFit:
    """The best mask set found for one batch row."""

    row: int
    error: float  # max abs error of the best candidate over every output
    passed: bool  # every element of every output within atol + rtol*|keras|
    kept: float  # fraction of mask entries kept in that candidate
    masks: DropoutMasks = DropoutMasks()  # that candidate: each mask one row of 0 or 1/(1-p) entries


def fit_rows(cfg: Mapping, x: np.ndarray, weights: Mapping, keras_outputs: Mapping[str, np.ndarray],
             initial_state: list | None, atol: float, rtol: float,
             ref: ModuleType = recurrent) -> list[RowFit]:
    """For each row, the candidate mask set closest to what Keras returned (outputs by name)."""
    masks, n = candidates(cfg, x.shape[-1])
    fits = []
    for b in range(x.shape[0]):
        xs = np.repeat(x[b:b + 1], n, axis=0)
        init = None if initial_state is None else [np.repeat(np.asarray(s[b:b + 1]), n, axis=0)
                                                   for s in initial_state]
        result, _ = ref.forward(cfg, xs, weights, None, init, dropout=masks)
        err = np.zeros(n)
        slack = np.full(n, np.inf)
        for name, got in keras_outputs.items():
            want = np.asarray(got[b], dtype=np.float64)
            diff = np.abs(result[name] - want[None]).reshape(n, -1)
            allowed = atol + rtol * np.abs(want).reshape(1, -1)
            err = np.maximum(err, diff.max(axis=1))
            slack = np.minimum(slack, (allowed - diff).min(axis=1))
        best = int(np.argmax(slack))
        chosen = DropoutMasks(tuple(m[best] for m in masks.inputs), tuple(m[best] for m in masks.recurrent))
        entries = chosen.inputs + chosen.recurrent
        kept = float(np.mean(np.concatenate(entries) > 0)) if entries else 1.0
        fits.append(RowFit(b, float(err[best]), bool(slack[best] >= 0), kept, chosen))
    return fits
