"""The hand-derived BPTT (harness/reference/backward.py) against central finite differences of the
forward reference (recurrent.forward, float64).

The loss is L = sum over outputs of sum(upstream * output), with a seeded random upstream for every
output the layer returns, so dL/d(anything) is what ``gradients`` must return.  Every element of the
input, of every initial state (the zero state too) and of every weight is perturbed by +-EPS; shapes
are small and odd (B=2, T=1..5, F=3, U=2 or 3).  The five bugs the sensitivity hunt plants in a copy
of backward.py (harness/mutants.py BACKWARD_MUTANTS): the finite-difference check must catch each of them
on at least one setup too.
"""
from __future__ import annotations

import functools
from types import ModuleType
from typing import NamedTuple

import numpy as np
import pytest

from harness import layers
from harness.keras_api import with_defaults
from harness.mutants import BACKWARD_MUTANTS, BACKWARD_SOURCE, Mutant
from harness.reference import backward, recurrent

EPS = 1e-6
# |analytic - numeric| <= ATOL + RTOL * |numeric| per element; the differences' own rounding is about 3e-9.
RTOL, ATOL = 1e-7, 1e-8
B, F = 2, 3

# Masks per timestep count: row 0 has masked steps at the start, middle and end; row 1 is fully masked.
MASKS = {5: [[0, 1, 0, 1, 0], [0, 0, 0, 0, 0]], 4: [[1, 0, 1, 0], [0, 0, 0, 0]], 3: [[0, 1, 0], [0, 0, 0]]}


class Setup(NamedTuple):
    """One gradient check: a layer config, T, whether it has a mask, and whether it gets initial states."""

    name: str
    cfg: dict
    steps: int
    masked: bool = False
    initial: bool = False
    scale: float = 0.6  # standard deviation of the random weights


def layer(cls: str, units: int = 3, **args) -> dict:
    return with_defaults({"class": cls, "units": units, **args})


def bi(inner: dict, merge_mode: str | None = "concat", backward_layer: dict | None = None) -> dict:
    spec = {"class": "Bidirectional", "layer": inner, "merge_mode": merge_mode}
    if backward_layer is not None:
        spec["backward_layer"] = backward_layer
    return with_defaults(spec)


SEQ_STATE = {"return_sequences": True, "return_state": True}

SETUPS = [
    # LSTM
    Setup("lstm-last", layer("LSTM"), 4),
    Setup("lstm-seq-state-init", layer("LSTM", **SEQ_STATE), 5, initial=True),
    Setup("lstm-nobias-hard-sigmoid", layer("LSTM", 2, use_bias=False, recurrent_activation="hard_sigmoid",
                                            return_state=True), 3),
    Setup("lstm-mask-seq", layer("LSTM", **SEQ_STATE), 5, masked=True, initial=True),
    Setup("lstm-mask-last", layer("LSTM", return_state=True), 4, masked=True, initial=True),
    Setup("lstm-mask-zero-output", layer("LSTM", zero_output_for_mask=True, **SEQ_STATE), 5, masked=True,
          initial=True),
    Setup("lstm-go-backwards", layer("LSTM", go_backwards=True, **SEQ_STATE), 5, initial=True),
    Setup("lstm-go-backwards-mask-last", layer("LSTM", go_backwards=True, return_state=True), 4, masked=True),
    Setup("lstm-t1", layer("LSTM", 2, **SEQ_STATE), 1, initial=True),
    Setup("lstm-keras2-relu", layer("LSTM", 2, activation="relu", recurrent_activation="hard_sigmoid_keras2",
                                    return_sequences=True), 4, initial=True),
    Setup("lstm-linear", layer("LSTM", 2, activation="linear", return_state=True), 3, initial=True),
    # GRU
    Setup("gru-after-bias", layer("GRU", reset_after=True, **SEQ_STATE), 5, initial=True),
    Setup("gru-before-bias", layer("GRU", reset_after=False, **SEQ_STATE), 5, initial=True),
    Setup("gru-after-nobias", layer("GRU", 2, reset_after=True, use_bias=False, return_state=True), 4, initial=True),
    Setup("gru-before-nobias-backwards", layer("GRU", 2, reset_after=False, use_bias=False, go_backwards=True,
                                               return_sequences=True), 4, initial=True),
    Setup("gru-after-mask", layer("GRU", reset_after=True, **SEQ_STATE), 5, masked=True, initial=True),
    Setup("gru-before-mask-backwards-zero", layer("GRU", reset_after=False, go_backwards=True,
                                                  zero_output_for_mask=True, **SEQ_STATE), 5, masked=True),
    Setup("gru-t1", layer("GRU", 2, reset_after=False, return_state=True), 1, initial=True),
    # SimpleRNN
    Setup("simple-last", layer("SimpleRNN"), 4),
    Setup("simple-seq-state-mask", layer("SimpleRNN", **SEQ_STATE), 5, masked=True, initial=True),
    Setup("simple-backwards-nobias", layer("SimpleRNN", 2, go_backwards=True, use_bias=False, **SEQ_STATE), 3,
          initial=True),
    # Bidirectional: every merge mode, both return_sequences, masks, initial states, backward_layer
    Setup("bi-concat-seq", bi(layer("LSTM", **SEQ_STATE)), 5, initial=True),
    Setup("bi-sum-last-mask", bi(layer("GRU", return_state=True), "sum"), 4, masked=True, initial=True),
    Setup("bi-ave-seq-mask", bi(layer("SimpleRNN", return_sequences=True), "ave"), 5, masked=True),
    Setup("bi-mul-seq", bi(layer("LSTM", 2, **SEQ_STATE), "mul"), 4, initial=True),
    Setup("bi-mul-last-mask", bi(layer("GRU", 2, reset_after=False), "mul"), 3, masked=True),
    Setup("bi-none-seq-mask", bi(layer("LSTM", 2, **SEQ_STATE), None), 4, masked=True, initial=True),
    Setup("bi-none-last", bi(layer("SimpleRNN", return_state=True), None), 3, initial=True),
    Setup("bi-forward-go-backwards", bi(layer("GRU", go_backwards=True, **SEQ_STATE), "concat"), 4, initial=True),
    Setup("bi-backward-layer", bi(layer("LSTM", **SEQ_STATE), "concat",
                                  layer("GRU", 2, go_backwards=True, reset_after=False, **SEQ_STATE)),
          5, masked=True, initial=True),
]


# Activations with a derivative: each through a SimpleRNN (activation) and an LSTM (recurrent_activation).
# Small weights keep exponential from overflowing.
ACTIVATION_SETUPS = [Setup(f"simple-{a}", layer("SimpleRNN", activation=a, return_sequences=True), 4, initial=True,
                           scale=0.3) for a in backward.DERIVATIVES]
ACTIVATION_SETUPS += [Setup(f"lstm-gates-{a}", layer("LSTM", 2, recurrent_activation=a, return_state=True), 3,
                            initial=True) for a in ("sigmoid", "hard_sigmoid", "hard_sigmoid_keras2", "linear")]
SETUP_BY_NAME = {s.name: s for s in SETUPS + ACTIVATION_SETUPS}


class Problem(NamedTuple):
    """A setup where a gradient missed the finite difference: which array, how far."""

    setup: str
    array: str
    max_abs: float
    max_rel: float


# ---------------------------------------------------------------- the data of a setup

class Data(NamedTuple):
    """Inputs, weights (by name, nested for Bidirectional), initial states, mask, upstream."""

    x: np.ndarray
    weights: dict
    states: list[np.ndarray]  # the zero state where the setup gives none
    mask: np.ndarray | None
    upstream: dict[str, np.ndarray]


def data(setup: Setup) -> Data:
    rng = np.random.default_rng(_seed(setup.name))
    shapes = layers.weight_shapes(setup.cfg, F)

    def draw(tree):
        return ({k: draw(v) for k, v in tree.items()} if isinstance(tree, dict)
                else rng.normal(0.0, setup.scale, size=tree))

    weights = draw(shapes)
    x = rng.normal(0.0, 1.0, size=(B, setup.steps, F))
    units = layers.state_units(setup.cfg)
    states = [rng.normal(0.0, 0.5, size=(B, u)) if setup.initial else np.zeros((B, u)) for u in units]
    mask = np.array(MASKS[setup.steps], dtype=bool) if setup.masked else None
    upstream = {n: rng.normal(0.0, 1.0, size=s) for n, s in layers.output_shapes(setup.cfg, B, setup.steps).items()}
    return Data(x, weights, states, mask, upstream)


def _seed(name: str) -> int:
    return sum((i + 1) * ord(ch) for i, ch in enumerate(name))  # stable across runs (hash() is salted)


def loss(setup: Setup, d: Data, x, weights, states) -> float:
    outputs, _ = recurrent.forward(setup.cfg, x, weights, d.mask, states)
    return float(sum(np.sum(d.upstream[n] * outputs[n]) for n in d.upstream))


# ---------------------------------------------------------------- finite differences of the forward reference

def _flat(d: Data) -> dict[str, np.ndarray]:
    """Every array a gradient is taken of, by a path name: x, state0.., weights as dir/name."""
    arrays = {"x": d.x}
    arrays.update({f"state{i}": s for i, s in enumerate(d.states)})

    def walk(prefix, tree):
        for k, v in tree.items():
            if isinstance(v, dict):
                walk(f"{prefix}{k}/", v)
            else:
                arrays[f"{prefix}{k}"] = v

    walk("w/", d.weights)
    return arrays


def _rebuild(d: Data, arrays: dict[str, np.ndarray]) -> tuple:
    def walk(prefix, tree):
        return {k: walk(f"{prefix}{k}/", v) if isinstance(v, dict) else arrays[f"{prefix}{k}"]
                for k, v in tree.items()}

    return arrays["x"], walk("w/", d.weights), [arrays[f"state{i}"] for i in range(len(d.states))]


@functools.cache
def numeric(name: str) -> dict[str, np.ndarray]:
    """Central differences of the forward reference's loss, for every element of every array."""
    setup = SETUP_BY_NAME[name]
    d = data(setup)
    arrays = _flat(d)
    result = {}
    for key, base in arrays.items():
        grad = np.zeros_like(base)
        for idx in np.ndindex(base.shape):
            values = []
            for sign in (1.0, -1.0):
                bumped = base.copy()
                bumped[idx] += sign * EPS
                values.append(loss(setup, d, *_rebuild(d, {**arrays, key: bumped})))
            grad[idx] = (values[0] - values[1]) / (2.0 * EPS)
        result[key] = grad
    return result


def analytic(setup: Setup, module: ModuleType = backward) -> dict[str, np.ndarray]:
    """``gradients`` of ``module``, laid out as ``_flat`` names them (no initial_state: the zero state)."""
    d = data(setup)
    g = module.gradients(setup.cfg, d.x, d.weights, d.upstream, d.mask, d.states if setup.initial else None)
    return _flat(Data(g.inputs, g.weights, g.initial_state, None, {}))


def problems(setup: Setup, module: ModuleType = backward) -> list[Problem]:
    """The arrays whose gradient from ``module`` misses the finite difference."""
    want, got = numeric(setup.name), analytic(setup, module)
    assert set(got) == set(want), f"{setup.name}: gradient arrays {sorted(got)}, expected {sorted(want)}"
    found = []
    for key, expected in want.items():
        if got[key].shape != expected.shape:
            found.append(Problem(setup.name, key, np.inf, np.inf))
            continue
        err = np.abs(got[key] - expected)
        if not np.all(err <= ATOL + RTOL * np.abs(expected)):
            rel = float(np.max(err / np.maximum(np.abs(expected), ATOL)))
            found.append(Problem(setup.name, key, float(err.max()), rel))
    return found


# ---------------------------------------------------------------- the checks

@pytest.mark.parametrize("setup", SETUPS, ids=[s.name for s in SETUPS])
def test_gradients_match_finite_differences(setup):
    found = problems(setup)
    assert not found, found


@pytest.mark.parametrize("name", ["lstm-last", "bi-backward-layer"])
def test_gradients_are_float64_with_the_weights_own_names_and_shapes(name):
    setup = SETUP_BY_NAME[name]
    d = data(setup)
    g = backward.gradients(setup.cfg, d.x.astype(np.float32), d.weights, d.upstream, d.mask)
    assert g.inputs.dtype == np.float64 and g.inputs.shape == d.x.shape
    assert [s.shape for s in g.initial_state] == [s.shape for s in d.states]

    def shapes(tree):
        return {k: shapes(v) if isinstance(v, dict) else (v.shape, v.dtype) for k, v in tree.items()}

    want = {k: ((s, np.float64) if isinstance(s, tuple) else {n: (t, np.float64) for n, t in s.items()})
            for k, s in layers.weight_shapes(setup.cfg, F).items()}
    assert shapes(g.weights) == want


def test_a_missing_output_name_means_zero_gradient():
    setup = SETUP_BY_NAME["lstm-seq-state-init"]
    d = data(setup)
    only_c = {"c": d.upstream["c"]}
    explicit = {n: (v if n == "c" else np.zeros_like(v)) for n, v in d.upstream.items()}
    a = backward.gradients(setup.cfg, d.x, d.weights, only_c, None, d.states)
    b = backward.gradients(setup.cfg, d.x, d.weights, explicit, None, d.states)
    np.testing.assert_array_equal(a.inputs, b.inputs)
    assert np.abs(a.inputs).max() > 1e-6  # the final c depends on every input step
    none = backward.gradients(setup.cfg, d.x, d.weights, {}, None, d.states)
    assert not np.any(none.inputs) and not any(np.any(s) for s in none.initial_state)


def test_unknown_output_name_and_wrong_shape_are_refused():
    setup = SETUP_BY_NAME["lstm-last"]
    d = data(setup)
    with pytest.raises(ValueError, match="'h' is not an output of this layer"):
        backward.gradients(setup.cfg, d.x, d.weights, {"h": np.zeros((B, 3))})
    with pytest.raises(ValueError, match=r"upstream\['output'\]: shape \(2, 4, 3\), the output is \(2, 3\)"):
        backward.gradients(setup.cfg, d.x, d.weights, {"output": np.zeros((B, 4, 3))})



@pytest.mark.parametrize("setup", ACTIVATION_SETUPS, ids=[s.name for s in ACTIVATION_SETUPS])
def test_activation_derivatives_match_finite_differences(setup):
    found = problems(setup)
    assert not found, found


def test_every_derivative_is_of_a_reference_activation():
    assert set(backward.DERIVATIVES) <= set(recurrent.ACTIVATIONS)


@pytest.mark.parametrize("name", list(backward.DERIVATIVES))
def test_derivative_from_the_output_matches_finite_differences_over_a_wide_range(name):
    # -7.97, -7.87, ..., 7.93: both sides of every clip (hard_sigmoid +-3, Keras 2 +-2.5, relu6 0 and 6,
    # hard_tanh +-1), never within 0.03 of a kink.
    a = np.arange(-7.97, 8.0, 0.1)
    act = recurrent.ACTIVATIONS[name]
    numeric_slope = (act(a + EPS) - act(a - EPS)) / (2.0 * EPS)
    np.testing.assert_allclose(backward.derivative(name)(act(a)), numeric_slope, rtol=1e-7, atol=1e-8)


def test_an_activation_without_a_derivative_is_named():
    cfg = layer("SimpleRNN", activation="gelu")
    with pytest.raises(NotImplementedError, match="'gelu'"):
        backward.gradients(cfg, np.zeros((B, 2, F)), {"kernel": np.zeros((F, 3)),
                                                      "recurrent_kernel": np.zeros((3, 3))}, {})


# ---------------------------------------------------------------- planted bugs: the check must catch each

@pytest.mark.parametrize("mutant", BACKWARD_MUTANTS, ids=[m.name for m in BACKWARD_MUTANTS])
def test_the_check_catches_each_planted_bug(mutant):
    module = mutant.load()  # the sensitivity hunt's own planted bugs (harness/mutants.py)
    caught = [s.name for s in SETUPS if problems(s, module)]
    assert caught, f"plant {mutant.name}: no setup's finite-difference check failed"


def test_an_unplanted_copy_passes():
    module = Mutant("none", "an edit that changes nothing", (("dc_prev = dc * g.f", "dc_prev = dc * g.f"),),
                    source=BACKWARD_SOURCE).load()
    assert not any(problems(s, module) for s in SETUPS)
