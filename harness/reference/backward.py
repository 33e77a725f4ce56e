"""Gradients of the recurrent reference by hand: backpropagation through time, float64 NumPy.

For a scalar loss L, given dL/d(output) for each named output of one call (layers.output_names),
``gradients`` returns dL/dx, dL/d(initial states) and dL/d(every weight).  It walks the steps of
``recurrent.trace`` in reverse and reads the gate values they recorded, so the forward equations
are not written again here: only their derivatives are.  ``dV`` means dL/dV; ``a`` is a
pre-activation and ``y = act(a)``.  Sections (§ = docs/semantics.md):

- activations: act'(a) written from y: tanh 1-y^2, sigmoid y(1-y), hard_sigmoid 1/6 (Keras 2: 0.2)
  and relu 1 where y is not clipped, linear 1, ... (``DERIVATIVES``).
- cells, one step (§1-§3), dh = d(output) + d(h'); every gate's da = d(gate) * act'(gate):
  LSTM: dc = dc' + dh*o*act'(act(c')); do = dh*act(c'), di = dc*g, dg = dc*i, df = dc*c_prev,
  dc_prev = dc*f.  GRU: dz = dh*(h_prev - h^), dh^ = dh*(1-z), dh_prev gets dh*z; reset_after
  (a^ = x_h + r*(h_prev R_h + b_h)): dr = da^*(h_prev R_h + b_h), d(h_prev R_h + b_h) = da^*r;
  reset_before (a^ = x_h + (r*h_prev) R_h): d(r*h_prev) = da^ R_h^T, dr = that*h_prev, dh_prev gets
  that*r.  SimpleRNN: da = dh*act'(h').  For every block, with da its pre-activation gradient:
  dW += x^T da, dR += h_prev^T da, db += sum over the batch, dx = da W^T, dh_prev += da R^T.
- the time loop (§5, §6): a kept row sends d(output) and d(states) into the cell; a masked row
  passes d(states) through unchanged, and its output (the previous output repeated) sends its
  gradient on to the previous step's output, or nowhere with zero_output_for_mask.  dx lands on
  the timestep the step read, so go_backwards comes out in input time.
- the layer (§4, §8): upstream by output name, split into the directions of a Bidirectional (merge
  modes, the backward sequence flipped back only with return_sequences), states in Keras's order.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NamedTuple

import numpy as np

from .. import layers
from . import recurrent

Array = np.ndarray
Derivative = Callable[[Array], Array]


# ---------------------------------------------------------------- activations: act'(a) from y = act(a)

def _where_unclipped(slope: float, low: float, high: float) -> Derivative:
    """The slope of a function clipped to [low, high]: ``slope`` inside, 0 where it is clipped."""
    return lambda y: np.where((y > low) & (y < high), slope, 0.0)


DERIVATIVES: dict[str, Derivative] = {
    "linear": lambda y: np.ones_like(y),
    "tanh": lambda y: 1.0 - y * y,
    "sigmoid": lambda y: y * (1.0 - y),
    "hard_sigmoid": _where_unclipped(1.0 / 6.0, 0.0, 1.0),  # clip(a/6 + 1/2, 0, 1)
    "hard_sigmoid_keras2": _where_unclipped(0.2, 0.0, 1.0),  # clip(0.2a + 1/2, 0, 1)
    "relu": lambda y: np.where(y > 0.0, 1.0, 0.0),
    "relu6": _where_unclipped(1.0, 0.0, 6.0),
    "hard_tanh": _where_unclipped(1.0, -1.0, 1.0),
    "elu": lambda y: np.where(y > 0.0, 1.0, y + 1.0),  # a <= 0: y = e^a - 1, y' = e^a
    "softsign": lambda y: (1.0 - np.abs(y)) ** 2,  # y = a/(1+|a|): y' = 1/(1+|a|)^2
    "softplus": lambda y: -np.expm1(-y),  # y' = sigmoid(a) = 1 - e^-y
    "exponential": lambda y: y,
}


def derivative(name: str | None) -> Derivative:
    """act'(a) as a function of y = act(a), for a Keras activation name (None: linear)."""
    key = "linear" if name is None else name
    if key not in DERIVATIVES:
        raise NotImplementedError(f"backward.py has no derivative for activation {key!r}; "
                                  f"it has {', '.join(DERIVATIVES)}")
    return DERIVATIVES[key]


# ---------------------------------------------------------------- results

class Gradients(NamedTuple):
    """dL/dx (B, T, F); dL/d(each initial state) in Keras's order (the zero state's too when none was
    given); dL/d(each weight) by its name (nested "forward"/"backward" for Bidirectional).  float64."""

    inputs: Array
    initial_state: list[Array]
    weights: dict


class StepGradients(NamedTuple):
    """One cell step backwards: dL/dx_t, dL/d(states the step read), this step's share of dL/dW."""

    x_t: Array
    states: tuple[Array, ...]
    weights: dict[str, Array]


CellBackward = Callable[[recurrent.Step, Array, tuple[Array, ...]], StepGradients]


# ---------------------------------------------------------------- cells: one step backwards

def _blocks(cls: str, w: Array) -> dict[str, Array]:
    """A kernel's gate blocks by gate name (layers.GATES order along the last axis)."""
    return dict(zip(layers.GATES[cls], np.split(w, layers.gates(cls), axis=-1)))


def _joined(cls: str, by_gate: Mapping[str, Array]) -> Array:
    """Per-gate arrays put side by side in the kernels' gate order."""
    return np.concatenate([by_gate[g] for g in layers.GATES[cls]], axis=-1)


def _dense_grads(w: Mapping[str, Array], x_t: Array, h_prev: Array, da: Array) -> dict[str, Array]:
    """dW, dR, db of ``a = x W + h R + b`` for one step, given da (B, kU)."""
    grads = {"kernel": x_t.T @ da, "recurrent_kernel": h_prev.T @ da}
    if "bias" in w:
        grads["bias"] = da.sum(axis=0)
    return grads


def _lstm_backward(cfg: Mapping, w: Mapping[str, Array]) -> CellBackward:
    act = recurrent.activation(cfg["activation"])
    dact, dract = derivative(cfg["activation"]), derivative(cfg["recurrent_activation"])
    slope = {"i": dract, "f": dract, "c": dact, "o": dract}  # §1: the candidate takes act, the gates ract

    def back(step: recurrent.Step, d_out: Array, d_states: tuple[Array, ...]) -> StepGradients:
        g = step.gates
        h_prev = step.states_before[0]
        dh = d_out + d_states[0]
        act_c = act(step.cell_states[1])  # act(c'), which h' = o*act(c') multiplied
        dc = d_states[1] + dh * g.o * dact(act_c)
        d_gate = {"i": dc * g.c, "f": dc * g.c_prev, "c": dc * g.i, "o": dh * act_c}
        da = _joined("LSTM", {n: d_gate[n] * slope[n](getattr(g, n)) for n in layers.GATES["LSTM"]})
        dc_prev = dc * g.f
        dh_prev = da @ w["recurrent_kernel"].T
        return StepGradients(da @ w["kernel"].T, (dh_prev, dc_prev), _dense_grads(w, step.x_t, h_prev, da))

    return back


def _gru_backward(cfg: Mapping, w: Mapping[str, Array]) -> CellBackward:
    dact, dract = derivative(cfg["activation"]), derivative(cfg["recurrent_activation"])
    rec = _blocks("GRU", w["recurrent_kernel"])
    reset_after = cfg["reset_after"]

    def back(step: recurrent.Step, d_out: Array, d_states: tuple[Array, ...]) -> StepGradients:
        g = step.gates
        h_prev = g.h_prev
        dh = d_out + d_states[0]
        da_hat = dh * (1.0 - g.z) * dact(g.h)  # the candidate's pre-activation
        da_z = dh * (h_prev - g.h) * dract(g.z)
        if reset_after:  # a^ = x_h + r*rec, rec = h_prev R_h + b_h
            d_r = da_hat * g.recurrent
            d_rec = da_hat * g.r
            dh_from_hat = d_rec @ rec["h"].T
            d_rec_h = h_prev.T @ d_rec
        else:  # a^ = x_h + (r*h_prev) R_h
            d_rh = da_hat @ rec["h"].T
            d_r = d_rh * h_prev
            d_rec = None
            dh_from_hat = d_rh * g.r
            d_rec_h = (g.r * h_prev).T @ da_hat
        da_r = d_r * dract(g.r)
        da_x = _joined("GRU", {"z": da_z, "r": da_r, "h": da_hat})  # gradient of x W + b_x, all gates
        dh_prev = dh * g.z + da_z @ rec["z"].T + da_r @ rec["r"].T + dh_from_hat
        grads = {"kernel": step.x_t.T @ da_x,
                 "recurrent_kernel": _joined("GRU", {"z": h_prev.T @ da_z, "r": h_prev.T @ da_r, "h": d_rec_h})}
        if "bias" in w:
            if w["bias"].ndim == 2:  # §2 reset_after: rows [b_x, b_h]; b_h's candidate block is inside r*(...)
                d_bh = _joined("GRU", {"z": da_z, "r": da_r, "h": d_rec})
                grads["bias"] = np.stack([da_x.sum(axis=0), d_bh.sum(axis=0)])
            else:
                grads["bias"] = da_x.sum(axis=0)
        return StepGradients(da_x @ w["kernel"].T, (dh_prev,), grads)

    return back


def _simple_backward(cfg: Mapping, w: Mapping[str, Array]) -> CellBackward:
    dact = derivative(cfg["activation"])

    def back(step: recurrent.Step, d_out: Array, d_states: tuple[Array, ...]) -> StepGradients:
        da = (d_out + d_states[0]) * dact(step.cell_output)
        h_prev = step.states_before[0]
        return StepGradients(da @ w["kernel"].T, (da @ w["recurrent_kernel"].T,),
                             _dense_grads(w, step.x_t, h_prev, da))

    return back


CELL_BACKWARDS: dict[str, Callable[[Mapping, Mapping[str, Array]], CellBackward]] = {
    "LSTM": _lstm_backward, "GRU": _gru_backward, "SimpleRNN": _simple_backward}


# ---------------------------------------------------------------- the time loop backwards

class Traced(NamedTuple):
    """One direction's forward pass: how it ran and the steps it took (processing order)."""

    run: recurrent.CellRun
    steps: tuple[recurrent.Step, ...]


def _trace(run: recurrent.CellRun, x: Array, mask: Array | None) -> Traced:
    weights = {k: np.asarray(v, dtype=np.float64) for k, v in run.weights.items()}
    steps = recurrent.trace(run.cfg, x, weights, mask, run.initial_state, run.zero_output_for_mask)
    return Traced(recurrent.CellRun(run.cfg, weights, run.initial_state, run.zero_output_for_mask), tuple(steps))


def _output(traced: Traced, batch: int) -> Array:
    """What the direction returns as its output: the sequence (processing order) or the last output."""
    units = traced.run.cfg["units"]
    seq = (np.stack([s.output for s in traced.steps], axis=1) if traced.steps
           else np.zeros((batch, 0, units)))
    if traced.run.cfg["return_sequences"]:
        return seq
    return seq[:, -1] if traced.steps else np.zeros((batch, units))


def _kept(mask: Array | None, t: int, batch: int) -> Array:
    """(B, 1): which rows step on timestep t."""
    if mask is None:
        return np.ones((batch, 1), dtype=bool)
    return np.asarray(mask[:, t], dtype=bool)[:, None]


def _direction_gradients(traced: Traced, x: Array, mask: Array | None, d_output: Array,
                         d_final: tuple[Array, ...]) -> Gradients:
    """BPTT over one direction, given the gradient of its output (as ``_output`` returns it) and of
    its final states."""
    run = traced.run
    batch, steps, units = x.shape[0], x.shape[1], run.cfg["units"]
    zero_out = run.cfg["zero_output_for_mask"] if run.zero_output_for_mask is None else run.zero_output_for_mask
    if run.cfg["return_sequences"]:
        d_seq = d_output
    else:  # only the last step's output is returned
        d_seq = np.zeros((batch, steps, units))
        if steps:
            d_seq[:, -1] = d_output
    back = CELL_BACKWARDS[run.cfg["class"]](run.cfg, run.weights)
    dx = np.zeros_like(x)
    dw = {k: np.zeros_like(v) for k, v in run.weights.items()}
    d_states = d_final
    d_repeat = np.zeros((batch, units))  # what later masked steps, repeating this step's output, send to it
    for step in reversed(traced.steps):
        keep = _kept(mask, step.timestep, batch)
        d_out = d_seq[:, step.index] + d_repeat
        cell = back(step, np.where(keep, d_out, 0.0), tuple(np.where(keep, d, 0.0) for d in d_states))
        d_repeat = np.zeros((batch, units)) if zero_out else np.where(keep, 0.0, d_out)
        d_states = tuple(c + np.where(keep, 0.0, d) for c, d in zip(cell.states, d_states))
        dx[:, step.timestep] = cell.x_t
        dw = {k: dw[k] + cell.weights[k] for k in dw}
    return Gradients(dx, list(d_states), dw)


# ---------------------------------------------------------------- the layer

def _upstream(cfg: Mapping, upstream: Mapping[str, Array], batch: int, steps: int) -> dict[str, Array]:
    """Every output's gradient by name (zeros where none was given), checked against the output shapes."""
    shapes = layers.output_shapes(cfg, batch, steps)
    unknown = sorted(set(upstream) - set(shapes))
    if unknown:
        raise ValueError(f"upstream: {', '.join(map(repr, unknown))} is not an output of this layer "
                         f"(it returns {', '.join(shapes)})")
    grads = {}
    for name, shape in shapes.items():
        g = np.asarray(upstream[name], dtype=np.float64) if name in upstream else np.zeros(shape)
        if g.shape != shape:
            raise ValueError(f"upstream[{name!r}]: shape {g.shape}, the output is {shape}")
        grads[name] = g
    return grads


def _state_grads(cfg: Mapping, grads: Mapping[str, Array], batch: int) -> list[Array]:
    """d(final state) for every state in Keras's order (zeros for states the layer does not return)."""
    return [grads[n] if n in grads else np.zeros((batch, u))
            for n, u in zip(layers.state_output_names(cfg), layers.state_units(cfg))]


def _merge_backward(cfg: Mapping, grads: Mapping[str, Array], y: Array, y_rev: Array) -> tuple[Array, Array]:
    """(dy, dy_rev) of a Bidirectional's merged output (§4); y_rev in the time order the merge saw."""
    mode = cfg["merge_mode"]
    if mode is None:
        return grads["output_fw"], grads["output_bw"]
    g = grads["output"]
    if mode == "concat":
        return g[..., :y.shape[-1]], g[..., y.shape[-1]:]
    if mode == "sum":
        return g, g
    if mode == "ave":
        return g / 2.0, g / 2.0
    if mode == "mul":
        return g * y_rev, g * y
    raise ValueError(f"merge_mode {mode!r}: not one of concat, sum, ave, mul, None")


def gradients(cfg: Mapping, x: Array, weights: Mapping, upstream: Mapping[str, Array], mask: Array | None = None,
              initial_state: list[Array] | None = None) -> Gradients:
    """dL/dx, dL/d(initial states) and dL/d(weights) of one call, for a loss whose gradient with respect
    to each named output (layers.output_names) is ``upstream[name]`` (a missing name: zero).

    ``cfg`` has every default filled (keras_api.with_defaults); weights and states are by Keras's
    names and order, as recurrent.forward takes them.  Everything is computed in float64."""
    x = np.asarray(x, dtype=np.float64)
    batch, steps = x.shape[0], x.shape[1]
    if initial_state is not None:
        initial_state = [np.asarray(s, dtype=np.float64) for s in initial_state]
    grads = _upstream(cfg, upstream, batch, steps)
    traced = [_trace(run, x, mask) for run in recurrent.cell_runs(cfg, weights, initial_state)]
    d_states = _state_grads(cfg, grads, batch)
    if not layers.is_bidirectional(cfg):
        (only,) = traced
        return _direction_gradients(only, x, mask, grads["output"], tuple(d_states))
    fw, bw = traced
    seq = fw.run.cfg["return_sequences"]
    y, y_bw = _output(fw, batch), _output(bw, batch)
    dy, dy_rev = _merge_backward(cfg, grads, y, y_bw[:, ::-1] if seq else y_bw)
    n_fw = len(layers.state_names(fw.run.cfg["class"]))  # §8: forward states first
    g_fw = _direction_gradients(fw, x, mask, dy, tuple(d_states[:n_fw]))
    g_bw = _direction_gradients(bw, x, mask, dy_rev[:, ::-1] if seq else dy_rev, tuple(d_states[n_fw:]))
    return Gradients(g_fw.inputs + g_bw.inputs, g_fw.initial_state + g_bw.initial_state,
                     {"forward": g_fw.weights, "backward": g_bw.weights})
