"""One step of a built Keras layer's own cell, NumPy in and out: the ``cell_step`` that
diagnosis/divergence.first_divergence drives with the reference's states.

Keras 3 and tf_keras both keep the cell as ``layer.cell`` (Bidirectional: ``forward_layer.cell`` and
``backward_layer.cell``) and call it as ``cell(x_t, states, training=False) -> (output, new states)``;
tensors go in and out through session.py, which knows each flavour's way.
"""
from __future__ import annotations

import numpy as np

from . import layers, session
from .diagnosis.divergence import CellStep, Direction


def cell_step(layer, direction: Direction | str | None = None) -> CellStep:
    """``(x_t, states) -> (output, new states)`` on ``layer``'s cell (a Bidirectional's: ``direction``),
    in the cell's compute dtype, inference mode; ValueError for a Bidirectional without a direction."""
    bidirectional = type(layer).__name__ == "Bidirectional"
    if bidirectional != (direction is not None):
        raise ValueError(f"{type(layer).__name__}: direction must be {'given' if bidirectional else 'None'}, "
                         f"got {direction!r}")
    if bidirectional:
        layer = layer.forward_layer if Direction(direction) == Direction.FORWARD else layer.backward_layer
    cell = layer.cell
    dtype = cell.compute_dtype

    def tensor(value: np.ndarray):
        return session.to_tensor(np.asarray(value), dtype)

    def step(x_t: np.ndarray, states: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        out, new = cell(tensor(x_t), [tensor(s) for s in states], training=False)
        new = list(new) if isinstance(new, (list, tuple)) else [new]
        return session.to_numpy(out), [session.to_numpy(s) for s in new]

    return step


def cell_steps(layer, cfg) -> CellStep | dict[Direction, CellStep]:
    """What divergence.first_divergence drives: the layer's cell, or one per direction of a Bidirectional."""
    if not layers.is_bidirectional(cfg):
        return cell_step(layer)
    return {d: cell_step(layer, d) for d in Direction}
