"""Keras's own gradients (harness/keras_grad.py) against central finite differences of the same
Keras layer's forward, under the flavour this process runs (``pytest --keras F
tests/keras/test_keras_grad.py`` for the others).  Independent of the NumPy reference: the
differences come from calling the layer itself, perturbing one input, state or weight element.

Keras 3 computes a float64 layer in float32 on jax and torch (Keras maps float64 to float32 in
result_type on every backend but TF; cases/flavours/backends.yaml flavour-float64-jax-torch), so
there the differences are taken in float32 with a wider step and a looser tolerance (PRECISION).
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pytest

from harness import keras_grad, keras_layer, layers, session
from harness.keras_api import with_defaults

pytest.importorskip("keras")

B, T, F, U = 2, 3, 2, 3
SEED = 11
WEIGHT_SAMPLES = 4  # weight elements checked per weight variable
MASK = np.array([[True, False, True], [True, True, False]])  # a hole in the middle and a padded end


class Precision(NamedTuple):
    """The precision a float64 layer really computes in here: the finite-difference step and the
    tolerance of gradient against difference (each measured; see below)."""

    computes_in: str
    eps: float
    atol: float
    rtol: float


# float64: step 1e-6, so truncation (~eps**2 = 1e-12) and rounding (~1e-16 / eps = 1e-10) stay far
# below the tolerance; measured worst |autodiff - difference| over every case 5.5e-10 (tensorflow),
# 6.9e-10 (tf_keras): atol 1e-8 leaves a factor ~15.  float32: step 3e-3 balances truncation
# (~eps**2 * third derivative) and the float32 rounding of the outputs (~6e-8 * sqrt(outputs) / eps);
# measured worst 6.6e-5 (jax), 1.1e-4 (torch; 1.1e-3 with step 1e-2, 0.09 with 1e-6, though torch's fused
# loop, unmasked LSTM and reset_after GRU, is float64 after all: 4e-10 with step 1e-6): atol 1e-3
# leaves a factor ~9 and still refuses another weight's gradient (errors of order 0.1 to 1).
PRECISION = {"float64": Precision("float64", 1e-6, 1e-8, 1e-7),
             "float32": Precision("float32", 3e-3, 1e-3, 1e-3)}
REAL = PRECISION["float64" if session.keras().backend.backend() == "tensorflow" else "float32"]


class GradCase(NamedTuple):
    """One layer to differentiate: its spec, whether the call gets MASK and random initial states."""

    id: str
    spec: dict
    mask: bool = False
    initial_state: bool = False


LSTM = {"class": "LSTM", "units": U, "return_sequences": True, "return_state": True}
CASES = [
    GradCase("lstm", LSTM),
    GradCase("gru-reset_after", {"class": "GRU", "units": U, "reset_after": True, "return_state": True,
                                 "return_sequences": True}),
    GradCase("gru-reset_before", {"class": "GRU", "units": U, "reset_after": False, "return_state": True}),
    GradCase("simplernn", {"class": "SimpleRNN", "units": U, "return_sequences": True, "return_state": True}),
    GradCase("bidirectional-lstm-concat", {"class": "Bidirectional", "merge_mode": "concat", "layer": LSTM}),
    GradCase("lstm-mask", LSTM, mask=True),
    GradCase("lstm-initial_state", LSTM, initial_state=True),
    GradCase("gru-go_backwards", {"class": "GRU", "units": U, "go_backwards": True, "return_sequences": True},
             initial_state=True),
    GradCase("bidirectional-gru-mask-initial_state",
             {"class": "Bidirectional", "merge_mode": "concat",
              "layer": {"class": "GRU", "units": U, "return_sequences": True, "return_state": True}},
             mask=True, initial_state=True),
]


class Setup(NamedTuple):
    """A built float64 layer and one call of it: input, mask, initial states, upstream gradients."""

    layer: Any
    x: np.ndarray
    mask: np.ndarray | None
    initial_state: list[np.ndarray] | None
    upstream: list[np.ndarray]


def setup(case: GradCase) -> Setup:
    cfg = with_defaults(case.spec)
    rng = np.random.default_rng(SEED)
    session.fresh("cpu", SEED, False)
    layer = keras_layer.build_layer(case.spec, "float64", SEED)
    layer.build((B, T, F))
    x = rng.normal(size=(B, T, F))
    init = [rng.normal(size=(B, u)) for u in layers.state_units(cfg)] if case.initial_state else None
    upstream = [rng.normal(size=shape) for shape in layers.output_shapes(cfg, B, T).values()]
    return Setup(layer, x, MASK if case.mask else None, init, upstream)


def losses(s: Setup, xs: np.ndarray, states: list[np.ndarray] | None) -> np.ndarray:
    """L = sum_k sum(upstream_k * output_k) for each of n copies of the call, in ONE call of the layer:
    ``xs`` (n, B, T, F) and each state (n, B, units) are stacked along the batch (the rows of a
    recurrent layer never meet), the outputs cut back into n copies and summed in float64."""
    n = len(xs)
    kwargs: dict[str, Any] = {}
    if states is not None:
        kwargs["initial_state"] = [session.to_tensor(v.reshape(n * B, -1), "float64") for v in states]
    if s.mask is not None:
        kwargs["mask"] = session.to_tensor(np.tile(s.mask, (n, 1)))
    out = s.layer(session.to_tensor(xs.reshape(n * B, T, F), "float64"), **kwargs)
    out = out if isinstance(out, (list, tuple)) else [out]
    assert len(out) == len(s.upstream)
    total = np.zeros(n)
    for u, o in zip(s.upstream, out):
        o = session.to_numpy(o).astype(np.float64).reshape(n, *u.shape)
        total += (o * u).reshape(n, -1).sum(axis=1)
    return total


def stacked(s: Setup, n: int) -> tuple[np.ndarray, list[np.ndarray] | None]:
    """n copies of the call's input and initial states."""
    states = None if s.initial_state is None else [np.repeat(v[None], n, axis=0) for v in s.initial_state]
    return np.repeat(s.x[None], n, axis=0), states


def input_differences(s: Setup) -> list[tuple[int | None, tuple[int, ...], float]]:
    """(state number or None for x, index, central difference) for every element of x and of each
    initial state: copy 2p moves element p up by eps, copy 2p+1 down, all in one call."""
    targets: list[tuple[int | None, tuple[int, ...]]] = [(None, index) for index in np.ndindex(s.x.shape)]
    targets += [(k, index) for k, v in enumerate(s.initial_state or ()) for index in np.ndindex(v.shape)]
    xs, states = stacked(s, 2 * len(targets))
    for p, (k, index) in enumerate(targets):
        moved = xs if k is None else states[k]
        moved[(2 * p, *index)] += REAL.eps
        moved[(2 * p + 1, *index)] -= REAL.eps
    values = losses(s, xs, states)
    return [(k, index, (values[2 * p] - values[2 * p + 1]) / (2 * REAL.eps)) for p, (k, index) in enumerate(targets)]


def weight_leaves(tree: dict, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], np.ndarray]]:
    """(key path, array) for every weight of a read_weights tree."""
    out = []
    for key, value in tree.items():
        out += weight_leaves(value, (*path, key)) if isinstance(value, dict) else [((*path, key), value)]
    return out


def nested(path: tuple[str, ...], value: np.ndarray) -> dict:
    """{path[0]: {...: {path[-1]: value}}}: what keras_layer.set_weights takes for one weight."""
    out: dict = {path[-1]: value}
    for key in reversed(path[:-1]):
        out = {key: out}
    return out


def pick(tree: dict, path: tuple[str, ...]):
    for key in path:
        tree = tree[key]
    return tree


def weight_differences(s: Setup) -> list[tuple[tuple[str, ...], tuple[int, ...], float]]:
    """(key path, index, central difference) for a seeded sample of each weight's elements, each
    moved in the layer itself (keras_layer.set_weights by name), then put back."""
    rows = []
    rng = np.random.default_rng(SEED + 1)
    xs, states = stacked(s, 1)
    for path, value in weight_leaves(keras_layer.read_weights(s.layer)):
        base = np.asarray(value, dtype=np.float64)
        for flat in rng.choice(base.size, size=min(WEIGHT_SAMPLES, base.size), replace=False):
            index = tuple(int(i) for i in np.unravel_index(flat, base.shape))
            values = []
            for sign in (1.0, -1.0):
                moved = base.copy()
                moved[index] += sign * REAL.eps
                keras_layer.set_weights(s.layer, nested(path, moved))
                values.append(losses(s, xs, states)[0])
            rows.append((path, index, (values[0] - values[1]) / (2 * REAL.eps)))
        keras_layer.set_weights(s.layer, nested(path, base))
    return rows


def differences(s: Setup, grads: keras_grad.KerasGradients) -> list[tuple[str, float, float]]:
    """(what, autodiff, finite difference) for every input and initial-state element and a seeded
    sample of each weight's elements."""
    rows = []
    for k, index, diff in input_differences(s):
        got = grads.inputs if k is None else grads.initial_state[k]
        rows.append((f"{'x' if k is None else f'initial_state[{k}]'}{list(index)}", float(got[index]), diff))
    for path, index, diff in weight_differences(s):
        rows.append(("/".join(path) + str(list(index)), float(pick(grads.weights, path)[index]), diff))
    return rows


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_keras_gradients_match_finite_differences_of_the_layer(case):
    s = setup(case)
    with session.device_scope("cpu"):
        grads = keras_grad.gradients(s.layer, s.x, s.upstream, mask=s.mask, initial_state=s.initial_state)
        rows = differences(s, grads)
    bad = [f"{what}: autodiff {a:.9g}, difference {d:.9g}" for what, a, d in rows
           if not abs(a - d) <= REAL.atol + REAL.rtol * abs(d)]
    worst = max(abs(a - d) for _, a, d in rows)
    assert not bad, (f"{len(bad)} of {len(rows)} gradients off (computed in {REAL.computes_in}, eps {REAL.eps}, "
                     f"worst {worst:.2g}):\n" + "\n".join(bad[:10]))


@pytest.mark.parametrize("case", [CASES[0], CASES[4], CASES[-1]], ids=lambda c: c.id)
def test_gradients_have_the_structure_of_the_call(case):
    s = setup(case)
    with session.device_scope("cpu"):
        grads = keras_grad.gradients(s.layer, s.x, s.upstream, mask=s.mask, initial_state=s.initial_state)
    expected = {path: np.shape(v) for path, v in weight_leaves(keras_layer.read_weights(s.layer))}
    assert {path: v.shape for path, v in weight_leaves(grads.weights)} == expected
    assert all(v.dtype == np.float64 for _, v in weight_leaves(grads.weights))
    assert grads.inputs.shape == (B, T, F) and grads.inputs.dtype == np.float64
    if s.initial_state is None:
        assert grads.initial_state is None
    else:
        assert [g.shape for g in grads.initial_state] == [v.shape for v in s.initial_state]


def test_a_second_call_gives_the_same_gradients():
    # torch adds each .backward() to the variables' .grad: a second call must not see the first's.
    s = setup(CASES[0])
    with session.device_scope("cpu"):
        first, second = (keras_grad.gradients(s.layer, s.x, s.upstream) for _ in range(2))
    for (path, a), (_, b) in zip(weight_leaves(first.weights), weight_leaves(second.weights)):
        np.testing.assert_array_equal(a, b, err_msg="/".join(path))
