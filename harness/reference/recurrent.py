"""The independent NumPy reference of the recurrent layers: float64, pure functions, vectorized
over the batch.

It never imports Keras.  It takes the weights the harness read from the real layer, by name,
so a wrong layout in the reference shows up as a failing case.  One set of cell equations
serves inference and training: a cell step takes optional dropout masks (``DropoutMasks``),
which is how the training-mode check (reference/dropout.py) reproduces Keras's dropout with
exactly these equations.  The same equations also run in a half-precision compute dtype
(``dtype=``): each operation rounds its result as Keras's ops do (matmuls accumulate in
float32, activations are rounded once), which gives the size of the rounding noise a layer
computed in that dtype must show (checks.precision).  Layout facts (gate order, weight shapes, output names) come from
harness/layers.py.  Sections (§) point at docs/semantics.md.

``trace`` is the time loop itself, one ``Step`` at a time (``run_rnn`` is built on it): what each
step read, what the cell computed (with its gate values: ``LstmGates``, ``GruGates``,
``SimpleGates``) and what the loop kept after the mask.  ``harness/diagnosis/divergence.py``
re-runs a layer with it to find where Keras first parts from the reference, and why.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from typing import NamedTuple

import numpy as np

from .. import layers

Array = np.ndarray


# ---------------------------------------------------------------- activations (Keras 3 formulas)

def _sigmoid(x: Array) -> Array:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # stable for large |x|


def _hard_sigmoid(x: Array) -> Array:
    return np.clip(x / 6.0 + 0.5, 0.0, 1.0)  # Keras 3: relu6(x+3)/6 (§1); Keras 2 used 0.2x+0.5


def _hard_sigmoid_keras2(x: Array) -> Array:
    # tf_keras (Keras 2): clip(0.2x + 0.5, 0, 1) (tfk: tf_keras/src/backend.py hard_sigmoid).
    # Cases never name it: harness/flavours.py maps hard_sigmoid to it under tf_keras.
    return np.clip(0.2 * x + 0.5, 0.0, 1.0)


def _softplus(x: Array) -> Array:
    return np.logaddexp(0.0, x)


def _elu(x: Array, alpha: float = 1.0) -> Array:
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))


def _softmax(x: Array) -> Array:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _sparsemax(x: Array) -> Array:
    # Martins & Astudillo 2016: project onto the simplex.
    z = np.sort(x, axis=-1)[..., ::-1]
    k = np.arange(1, x.shape[-1] + 1)
    cssv = np.cumsum(z, axis=-1) - 1.0
    support = z - cssv / k > 0
    k_z = support.sum(axis=-1, keepdims=True)
    tau = np.take_along_axis(cssv, k_z - 1, axis=-1) / k_z
    return np.maximum(x - tau, 0.0)


_erf = np.vectorize(math.erf, otypes=[np.float64])

_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772, 1.0507009873554805

ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "linear": lambda x: x,
    "tanh": np.tanh,
    "sigmoid": _sigmoid,
    "hard_sigmoid": _hard_sigmoid,
    "hard_sigmoid_keras2": _hard_sigmoid_keras2,
    "relu": lambda x: np.maximum(x, 0.0),
    "relu6": lambda x: np.clip(x, 0.0, 6.0),
    "leaky_relu": lambda x: np.where(x >= 0, x, 0.2 * x),
    "elu": _elu,
    "celu": _elu,  # alpha=1: same formula
    "selu": lambda x: _SELU_SCALE * _elu(x, _SELU_ALPHA),
    "softplus": _softplus,
    "softsign": lambda x: x / (1.0 + np.abs(x)),
    "exponential": np.exp,
    "silu": lambda x: x * _sigmoid(x),
    "swish": lambda x: x * _sigmoid(x),
    "hard_silu": lambda x: x * _hard_sigmoid(x),
    "hard_swish": lambda x: x * _hard_sigmoid(x),
    "gelu": lambda x: 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0))),
    "mish": lambda x: x * np.tanh(_softplus(x)),
    "log_sigmoid": lambda x: -_softplus(-x),
    "hard_tanh": lambda x: np.clip(x, -1.0, 1.0),
    "tanh_shrink": lambda x: x - np.tanh(x),
    "soft_shrink": lambda x: np.where(x > 0.5, x - 0.5, np.where(x < -0.5, x + 0.5, 0.0)),
    "hard_shrink": lambda x: np.where(np.abs(x) > 0.5, x, 0.0),
    "squareplus": lambda x: (x + np.sqrt(x * x + 4.0)) / 2.0,
    "sparse_plus": lambda x: np.where(x <= -1, 0.0, np.where(x >= 1, x, 0.25 * (x + 1.0) ** 2)),
    "sparse_sigmoid": lambda x: np.clip(0.5 * (x + 1.0), 0.0, 1.0),
    "softmax": _softmax,
    "log_softmax": lambda x: np.log(_softmax(x)),
    "sparsemax": _sparsemax,
}


def _rounded_once(f: Callable[[Array], Array]) -> Callable[[Array], Array]:
    """``f`` evaluated in float64 and rounded once to its argument's dtype (a no-op in float64)."""
    def g(v: Array) -> Array:
        v = np.asarray(v)
        return f(v) if v.dtype == np.float64 else f(v.astype(np.float64)).astype(v.dtype)
    return g


def _matmul(a: Array, b: Array) -> Array:
    """``a @ b``; in a half dtype, accumulated in float32 and rounded once (as TF, JAX and torch do)."""
    if a.dtype == np.float64:
        return a @ b
    return (a.astype(np.float32) @ b.astype(np.float32)).astype(a.dtype)


def activation(name: str | None) -> Callable[[Array], Array]:
    return ACTIVATIONS["linear" if name is None else name]


# ---------------------------------------------------------------- cells: one step, whole batch
#
# A cell step is ``step(x_t, states, drop=NO_DROPOUT, with_gates=False) -> (output, new states)``;
# with ``with_gates`` it returns (output, new states, gates) with the gate values it used.

class LstmGates(NamedTuple):
    """One LSTM step's gates after their activations (§1), fields named as layers.GATES, and c_prev:
    ``c' = f*c_prev + i*c``, ``h' = o*act(c')`` (``c`` is the candidate g)."""

    i: Array
    f: Array
    c: Array
    o: Array
    c_prev: Array


class GruGates(NamedTuple):
    """One GRU step (§2): z, r and the candidate h (h-hat) after their activations, and what they were
    made from: ``h' = z*h_prev + (1-z)*h``.  reset_after: ``h = act(x_part + r*recurrent)`` with
    recurrent = h_prev R_h + b_h; reset_before: ``h = act(x_part + recurrent)`` with recurrent =
    (r*h_prev) R_h (r already inside).  x_part is x W_h plus its bias."""

    z: Array
    r: Array
    h: Array
    h_prev: Array
    x_part: Array
    recurrent: Array


class SimpleGates(NamedTuple):
    """One SimpleRNN step (§3): the pre-activation ``x W + b + h R``."""

    pre: Array


class DropoutMasks(NamedTuple):
    """Training-mode dropout masks of one call: entries 0 or 1/(1-p), each broadcast over the batch.

    One mask is shared by every gate, or there is one per gate (Keras's per-gate path, §9)."""

    inputs: tuple[Array, ...] = ()
    recurrent: tuple[Array, ...] = ()


NO_DROPOUT = DropoutMasks()


def _masked(v: Array, masks: tuple[Array, ...], gate: int) -> Array:
    """``v`` as gate ``gate`` sees it: times its dropout mask (a shared one, or its own)."""
    if not masks:
        return v
    return v * np.asarray(masks[gate if len(masks) > 1 else 0], dtype=v.dtype)


def _project(v: Array, blocks: list[Array], masks: tuple[Array, ...]) -> list[Array]:
    """``v`` times each gate block of a kernel, each gate with its dropout mask."""
    return [_matmul(_masked(v, masks, g), block) for g, block in enumerate(blocks)]


def _lstm_step(cfg: Mapping, w: Mapping[str, Array]):
    act, ract = _rounded_once(activation(cfg["activation"])), _rounded_once(activation(cfg["recurrent_activation"]))
    kernel = np.split(w["kernel"], 4, axis=-1)  # §1 gate order [i, f, c, o]
    rec = np.split(w["recurrent_kernel"], 4, axis=-1)
    bias = np.split(w["bias"], 4, axis=-1) if "bias" in w else [0.0] * 4

    def step(x_t: Array, states: list[Array], drop: DropoutMasks = NO_DROPOUT, with_gates: bool = False):
        h, c = states
        xs, hs = _project(x_t, kernel, drop.inputs), _project(h, rec, drop.recurrent)
        zi, zf, zc, zo = (xs[g] + hs[g] + bias[g] for g in range(4))
        i, f, g, o = ract(zi), ract(zf), act(zc), ract(zo)
        c_new = f * c + i * g
        h_new = o * act(c_new)
        return (h_new, [h_new, c_new], LstmGates(i, f, g, o, c)) if with_gates else (h_new, [h_new, c_new])

    return step


def _gru_step(cfg: Mapping, w: Mapping[str, Array]):
    act, ract = _rounded_once(activation(cfg["activation"])), _rounded_once(activation(cfg["recurrent_activation"]))
    kernel = np.split(w["kernel"], 3, axis=-1)  # §2 gate order [z, r, h]
    rec = np.split(w["recurrent_kernel"], 3, axis=-1)
    if cfg["reset_after"]:
        zeros = np.zeros(3 * cfg["units"], dtype=w["kernel"].dtype)
        b_x, b_h = (w["bias"][0], w["bias"][1]) if "bias" in w else (zeros, zeros)
        bx, bh = np.split(b_x, 3, axis=-1), np.split(b_h, 3, axis=-1)

        def step(x_t: Array, states: list[Array], drop: DropoutMasks = NO_DROPOUT, with_gates: bool = False):
            (h,) = states
            xz, xr, xh = (p + b for p, b in zip(_project(x_t, kernel, drop.inputs), bx))
            hz, hr, hh = (p + b for p, b in zip(_project(h, rec, drop.recurrent), bh))
            z, r = ract(xz + hz), ract(xr + hr)
            h_hat = act(xh + r * hh)  # reset applied after the recurrent matmul (and its bias)
            h_new = z * h + (1.0 - z) * h_hat
            return (h_new, [h_new], GruGates(z, r, h_hat, h, xh, hh)) if with_gates else (h_new, [h_new])
    else:
        b = np.split(w["bias"], 3, axis=-1) if "bias" in w else [0.0] * 3

        def step(x_t: Array, states: list[Array], drop: DropoutMasks = NO_DROPOUT, with_gates: bool = False):
            (h,) = states
            xz, xr, xh = (p + bg for p, bg in zip(_project(x_t, kernel, drop.inputs), b))
            z = ract(xz + _matmul(_masked(h, drop.recurrent, 0), rec[0]))
            r = ract(xr + _matmul(_masked(h, drop.recurrent, 1), rec[1]))
            hh = _matmul(r * _masked(h, drop.recurrent, 2), rec[2])
            h_hat = act(xh + hh)  # reset applied before the matmul
            h_new = z * h + (1.0 - z) * h_hat
            return (h_new, [h_new], GruGates(z, r, h_hat, h, xh, hh)) if with_gates else (h_new, [h_new])

    return step


def _simple_step(cfg: Mapping, w: Mapping[str, Array]):
    act = _rounded_once(activation(cfg["activation"]))
    bias = w.get("bias", 0.0)

    def step(x_t: Array, states: list[Array], drop: DropoutMasks = NO_DROPOUT, with_gates: bool = False):
        (h,) = states
        (xk,), (hk,) = _project(x_t, [w["kernel"]], drop.inputs), _project(h, [w["recurrent_kernel"]], drop.recurrent)
        pre = xk + bias + hk
        h_new = act(pre)  # §3
        return (h_new, [h_new], SimpleGates(pre)) if with_gates else (h_new, [h_new])

    return step


CELLS = {"LSTM": _lstm_step, "GRU": _gru_step, "SimpleRNN": _simple_step}


# ---------------------------------------------------------------- the time loop

class Step(NamedTuple):
    """One step of the time loop: where it read, what the cell computed, what the loop kept.

    ``output`` and ``states`` are what the loop carries on (§6: masked rows keep the old states
    and repeat the previous output, or output zero); ``cell_output`` and ``cell_states`` are the
    cell's own results before the mask.  States are in Keras's order (layers.state_names)."""

    index: int  # processing step: 0 is the first step the loop runs
    timestep: int  # the input timestep it read (go_backwards: T-1-index, §5)
    x_t: Array
    states_before: tuple[Array, ...]
    cell_output: Array
    cell_states: tuple[Array, ...]
    gates: LstmGates | GruGates | SimpleGates
    output: Array
    states: tuple[Array, ...]


def _start(cfg: Mapping, x: Array, weights: Mapping[str, Array], initial_state: list[Array] | None,
           dtype: str | None) -> tuple[Array, dict[str, Array], list[Array]]:
    """The input, weights and initial states in the compute dtype (None: float64)."""
    dt = layers.numpy_dtype(dtype) if dtype else np.float64
    x = np.asarray(x).astype(dt)
    w = {k: np.asarray(v).astype(dt) for k, v in weights.items()}
    batch, units = x.shape[0], cfg["units"]
    n_states = len(layers.state_names(cfg["class"]))
    states = ([np.asarray(s).astype(dt) for s in initial_state] if initial_state is not None
              else [np.zeros((batch, units), dtype=dt) for _ in range(n_states)])
    return x, w, states


def _loop(cfg: Mapping, x: Array, w: Mapping[str, Array], states: list[Array], mask: Array | None,
          zero_output_for_mask: bool | None, dropout: DropoutMasks) -> Iterator[Step]:
    batch, steps = x.shape[0], x.shape[1]
    units, dt = cfg["units"], x.dtype
    zero_out = cfg["zero_output_for_mask"] if zero_output_for_mask is None else zero_output_for_mask
    step = CELLS[cfg["class"]](cfg, w)
    order = range(steps - 1, -1, -1) if cfg["go_backwards"] else range(steps)
    prev = np.zeros((batch, units), dtype=dt)
    for index, t in enumerate(order):
        # with_gates passed by position: a planted-bug wrapper of a step (mutants.py) forwards *args.
        cell_out, cell_states, gates = step(x[:, t], states, dropout, True)
        out, new_states = cell_out, cell_states
        if mask is not None:
            keep = np.asarray(mask[:, t], dtype=bool)[:, None]
            new_states = [np.where(keep, n, s) for n, s in zip(new_states, states)]
            out = np.where(keep, out, 0.0 if zero_out else prev)
        yield Step(index, t, x[:, t], tuple(states), cell_out, tuple(cell_states), gates, out, tuple(new_states))
        states, prev = new_states, out


def trace(cfg: Mapping, x: Array, weights: Mapping[str, Array], mask: Array | None = None,
          initial_state: list[Array] | None = None, zero_output_for_mask: bool | None = None,
          dropout: DropoutMasks = NO_DROPOUT, dtype: str | None = None) -> Iterator[Step]:
    """The time loop of one recurrent layer (not Bidirectional: see ``cell_runs``), one ``Step`` per
    processing step, in processing order; the arguments are run_rnn's."""
    x, w, states = _start(cfg, x, weights, initial_state, dtype)
    return _loop(cfg, x, w, states, mask, zero_output_for_mask, dropout)


def run_rnn(cfg: Mapping, x: Array, weights: Mapping[str, Array], mask: Array | None = None,
            initial_state: list[Array] | None = None, zero_output_for_mask: bool | None = None,
            dropout: DropoutMasks = NO_DROPOUT, dtype: str | None = None):
    """One recurrent layer over a (B, T, F) input.

    Returns (outputs in processing order (B, T, U), last output (B, U), final states).
    Masked steps keep the states and repeat the previous output, which starts at zero, not h0
    (§6); with zero_output_for_mask they output zero.  go_backwards iterates from T-1 down and
    leaves the sequence in processing order (§5).  ``dropout`` masks are reused at every step (§9).
    ``dtype`` (a compute dtype name; None: float64) is what every value is rounded to.
    """
    x, w, states = _start(cfg, x, weights, initial_state, dtype)
    batch, units = x.shape[0], cfg["units"]
    last = np.zeros((batch, units), dtype=x.dtype)  # no steps: the loop's first previous output
    outputs = []
    for step in _loop(cfg, x, w, states, mask, zero_output_for_mask, dropout):
        outputs.append(step.output)
        last, states = step.output, list(step.states)
    seq = np.stack(outputs, axis=1) if outputs else np.zeros((batch, 0, units), dtype=x.dtype)
    return seq, last, states


class CellRun(NamedTuple):
    """One direction of a layer as its time loop runs: config, weights, initial states, and the
    zero_output_for_mask it runs with (None: its config's own)."""

    cfg: Mapping
    weights: Mapping
    initial_state: list[Array] | None
    zero_output_for_mask: bool | None


def cell_runs(cfg: Mapping, weights: Mapping, initial_state: list[Array] | None = None) -> tuple[CellRun, ...]:
    """The time loops a layer runs: one for a plain layer, (forward, backward) for Bidirectional."""
    if cfg["class"] != "Bidirectional":
        return (CellRun(cfg, weights, initial_state, None),)
    fcfg, bcfg = layers.cells(cfg)  # §4: the backward copy runs the other way
    n_fw = len(layers.state_names(fcfg["class"]))
    init_f = init_b = None
    if initial_state is not None:  # §8: split in halves, forward first
        init_f, init_b = initial_state[:n_fw], initial_state[n_fw:]
    # §4: zero_output_for_mask is forced to return_sequences on both directions.
    zf = fcfg["return_sequences"]
    return (CellRun(fcfg, weights["forward"], init_f, zf), CellRun(bcfg, weights["backward"], init_b, zf))


def _single(cfg: Mapping, x, weights, mask, initial_state, zero_output_for_mask=None, dropout=NO_DROPOUT,
            dtype=None):
    seq, last, states = run_rnn(cfg, x, weights, mask, initial_state, zero_output_for_mask, dropout, dtype)
    out = seq if cfg["return_sequences"] else last
    return out, states


def run(cfg: Mapping, x: Array, weights: Mapping, mask: Array | None = None,
        initial_state: list[Array] | None = None, dtype: str | None = None) -> dict[str, Array]:
    """Everything the layer returns, by name (layers.output_names), from the reference."""
    return forward(cfg, x, weights, mask, initial_state, dtype=dtype)[0]


def forward(cfg: Mapping, x: Array, weights: Mapping, mask: Array | None = None,
            initial_state: list[Array] | None = None, dropout: DropoutMasks = NO_DROPOUT,
            dtype: str | None = None) -> tuple[dict[str, Array], list[Array]]:
    """The named outputs and the final states in Keras's order (what a stateful layer keeps).

    ``dropout`` applies to a plain layer only (the training check takes no Bidirectional);
    ``dtype`` rounds every operation to a compute dtype (None: float64)."""
    if cfg["class"] != "Bidirectional":
        out, states = _single(cfg, x, weights, mask, initial_state, dropout=dropout, dtype=dtype)
        result = {"output": out}
        if cfg["return_state"]:
            result.update(zip(layers.state_names(cfg["class"]), states))
        return result, list(states)
    fw, bw = cell_runs(cfg, weights, initial_state)
    y, st_f = _single(fw.cfg, x, fw.weights, mask, fw.initial_state, fw.zero_output_for_mask, dtype=dtype)
    y_rev, st_b = _single(bw.cfg, x, bw.weights, mask, bw.initial_state, bw.zero_output_for_mask, dtype=dtype)
    if fw.cfg["return_sequences"]:
        y_rev = y_rev[:, ::-1]  # back to input time order, only for sequences
    mode = cfg["merge_mode"]
    result: dict[str, Array]
    if mode is None:
        result = {"output_fw": y, "output_bw": y_rev}
    else:
        merged = {"concat": lambda: np.concatenate([y, y_rev], axis=-1), "sum": lambda: y + y_rev,
                  "ave": lambda: (y + y_rev) / 2.0, "mul": lambda: y * y_rev}[mode]()
        result = {"output": merged}
    states = list(st_f) + list(st_b)
    if fw.cfg["return_state"]:
        result.update(zip(layers.state_output_names(cfg), states))
    return result, states
