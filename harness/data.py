"""Seeded NumPy inputs, masks and initial states for a case (no Keras here).

Every array comes from a generator keyed by the case seed and the array's role, so a case's
data never depends on which other cases ran or in what order.
"""
from __future__ import annotations

import zlib

import numpy as np

from .case import Case


def rng(case: Case, role: str) -> np.random.Generator:
    """A generator for one role ("input", "mask", ...) of one case."""
    return np.random.default_rng([case.seed, zlib.crc32(role.encode())])


def make_inputs(case: Case) -> list[np.ndarray]:
    """One input per call (stateful cases make several), in float64, before any dtype cast."""
    count = case.calls.count if case.calls else 1
    batches = case.calls.batches if case.calls and case.calls.batches else (case.input.batch,) * count
    return [make_input(case, "input" if i == 0 else f"input{i + 1}", batches[i]) for i in range(count)]


def make_input(case: Case, role: str = "input", batch: int | None = None) -> np.ndarray:
    """The (batch, timesteps, features) input in float64, before any cast to the case dtype."""
    spec = case.input
    shape = (batch or spec.batch, spec.timesteps, spec.features)
    gen = rng(case, role)
    if spec.data == "values":
        x = np.array(spec.values, dtype=np.float64)
    elif spec.data == "uniform":
        x = gen.uniform(-1.0, 1.0, shape)
    elif spec.data == "one_hot":
        x = np.eye(spec.features)[gen.integers(0, spec.features, shape[:2])]
    elif spec.data == "arange":
        x = np.arange(np.prod(shape), dtype=np.float64).reshape(shape)
    else:
        x = gen.standard_normal(shape)
    return x * spec.scale


def make_mask(case: Case) -> np.ndarray | None:
    """The (batch, timesteps) boolean mask, True where a step is valid, or None."""
    m = case.mask
    if m is None:
        return None
    batch, steps = case.input.batch, case.input.timesteps
    t = np.arange(steps)[None, :]
    if m.kind == "right_padded":
        return t < np.array(m.lengths)[:, None]
    if m.kind == "left_padded":
        return t >= steps - np.array(m.lengths)[:, None]
    if m.kind == "random":
        return rng(case, "mask").random((batch, steps)) >= m.rate
    return np.array(m.values, dtype=bool)


def make_initial_state(case: Case, units: list[int]) -> list[np.ndarray] | None:
    """One (batch, units) float64 array per state, in Keras's order, or None for Keras's zeros."""
    spec = case.initial_state
    if spec is None:
        return None
    if spec == "zeros":
        return [np.zeros((case.input.batch, u)) for u in units]
    if spec == "random":
        gen = rng(case, "initial_state")
        return [gen.standard_normal((case.input.batch, u)) for u in units]
    return [np.array(s, dtype=np.float64) for s in spec]


def make_weights(case: Case, shapes: dict) -> dict | None:
    """Weights to put in with set_weights(): None keeps Keras's own initial values."""
    if case.weights == "keras":
        return None
    if case.weights == "random":
        gen = rng(case, "weights")

        def draw(tree):
            return {k: draw(v) if isinstance(v, dict) else gen.uniform(-0.5, 0.5, v) for k, v in tree.items()}

        return draw(shapes)

    def fill(given, tree):
        out = {}
        for k, v in given.items():
            if isinstance(tree[k], dict):
                out[k] = fill(v, tree[k])
            else:
                out[k] = np.full(tree[k], v) if isinstance(v, float) else np.array(v, dtype=np.float64)
        return out

    return fill(case.weights, shapes)
