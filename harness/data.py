"""The concrete arrays of a case (no Keras here): seeded inputs, masks, initial states, weights.

Every array comes from a generator keyed by the case seed and the array's role, so a case's
data never depends on which other cases ran or in what order.  ``Arrays`` is what a run uses,
made here from the seed or read from a golden file (golden.py), for layer and model cases.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from . import keras_api as api
from . import layers
from .case import Case, OutputKey


@dataclass(frozen=True)
class Arrays:
    """The concrete data of one run.  Made from the case's seed, or read from a golden file."""

    inputs: list[np.ndarray]  # one (batch, timesteps, features) float64 array per call
    mask: np.ndarray | None = None
    initial_state: list[np.ndarray] | None = None
    weights: dict | None = None  # put in with set_weights(); None keeps Keras's initial values
    golden_outputs: dict[OutputKey, np.ndarray] | None = None  # Keras outputs recorded elsewhere, compared too


def make_arrays(case: Case) -> Arrays:
    """Everything a case's run feeds Keras and the reference, from its seed.

    A model case feeds one input (float data, or integer ids for an Embedding first layer)."""
    if case.model is not None:
        return Arrays([make_model_input(case)])
    cfg = api.with_defaults(case.layer)
    inputs = make_inputs(case)
    mask = make_mask(case)
    if mask is not None and case.mask.via == "masking_layer":
        # Masking(mask_value=0) derives the mask from all-zero steps, so zero exactly those.
        inputs = [np.where(mask[..., None], x, 0.0) for x in inputs]
    return Arrays(inputs, mask, make_initial_state(case, layers.state_units(cfg)),
                  make_weights(case, layers.weight_shapes(cfg, case.input.features)))


def make_model_input(case: Case) -> np.ndarray:
    """A model case's input: float data as for a layer case, or integer ids drawn below input_dim."""
    if case.model[0]["class"] != "Embedding":
        return make_input(case)
    if case.input.values is not None:
        return np.array(case.input.values, dtype=np.int64)
    return rng(case, "input").integers(0, case.model[0]["input_dim"], (case.input.batch, case.input.timesteps))


def round_to(array: np.ndarray, dtype: str) -> np.ndarray:
    """The values Keras really computes with in ``dtype``, as float64 (inputs and states are cast)."""
    return np.asarray(array).astype(layers.numpy_dtype(dtype)).astype(np.float64)


def rng(case: Case, role: str) -> np.random.Generator:
    """A generator for one role ("input", "mask", ...) of one case."""
    return np.random.default_rng([case.seed, zlib.crc32(role.encode())])


def gradient_upstream(case: Case, shapes: dict[str, tuple[int, ...]], call: int = 1) -> dict[str, np.ndarray]:
    """expect.gradients: the seeded projection dL/d(output) of every output and state of one call
    (output name -> array of its shape), so the scalar loss reaches every output and none can hide."""
    gen = rng(case, f"gradient-call{call}")
    return {name: gen.standard_normal(shape) for name, shape in shapes.items()}


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
