"""The independent NumPy reference: float64, pure functions, vectorized over the batch.

It never imports Keras.  It takes the weights the harness read from the real layer, by name,
so a wrong layout in the reference shows up as a failing case.  Section numbers (§) point at
../shared/KERAS_RNN_SEMANTICS.md.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np

from .keras_api import state_names

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


def activation(name: str | None) -> Callable[[Array], Array]:
    return ACTIVATIONS["linear" if name is None else name]


# ---------------------------------------------------------------- layouts and counts

def gates(layer_class: str) -> int:
    """Gate blocks per kernel: LSTM [i,f,c,o] (§1), GRU [z,r,h] (§2), SimpleRNN one."""
    return {"LSTM": 4, "GRU": 3, "SimpleRNN": 1}[layer_class]


def _cell_shapes(cfg: Mapping, features: int) -> dict[str, tuple[int, ...]]:
    k, u = gates(cfg["class"]), cfg["units"]
    shapes = {"kernel": (features, k * u), "recurrent_kernel": (u, k * u)}
    if cfg["use_bias"]:
        two_rows = cfg["class"] == "GRU" and cfg["reset_after"]
        shapes["bias"] = (2, k * u) if two_rows else (k * u,)  # §2: (2,3U) when reset_after
    return shapes


def _backward_cfg(cfg: Mapping) -> Mapping:
    return cfg["backward_layer"] if cfg.get("backward_layer") else cfg["layer"]


def weight_shapes(cfg: Mapping, features: int) -> dict:
    """Weight name -> shape, as get_weights() returns them (nested by direction for Bidirectional)."""
    if cfg["class"] == "Bidirectional":
        return {"forward": _cell_shapes(cfg["layer"], features),
                "backward": _cell_shapes(_backward_cfg(cfg), features)}
    return _cell_shapes(cfg, features)


def param_formula(cfg: Mapping, features: int) -> tuple[int, str]:
    """The parameter count from the semantics doc, with the formula it came from."""
    if cfg["class"] == "Bidirectional":
        (nf, ff), (nb, fb) = param_formula(cfg["layer"], features), param_formula(_backward_cfg(cfg), features)
        return nf + nb, f"forward {ff} + backward {fb}"
    k, u, f = gates(cfg["class"]), cfg["units"], features
    if not cfg["use_bias"]:
        return k * (f * u + u * u), f"{k}*(F*U + U*U) = {k}*({f}*{u} + {u}*{u})"
    if cfg["class"] == "GRU" and cfg["reset_after"]:
        return k * (f * u + u * u + 2 * u), f"3*(F*U + U*U + 2U) = 3*({f}*{u} + {u}*{u} + 2*{u})"
    return k * (f * u + u * u + u), f"{k}*(F*U + U*U + U) = {k}*({f}*{u} + {u}*{u} + {u})"


def param_count(cfg: Mapping, features: int) -> int:
    return param_formula(cfg, features)[0]


def state_output_names(cfg: Mapping) -> list[str]:
    """States in the order Keras returns them (Bidirectional: forward first, §4)."""
    if cfg["class"] == "Bidirectional":
        fw = [f"{n}_fw" for n in state_names(cfg["layer"]["class"])]
        bw = [f"{n}_bw" for n in state_names(_backward_cfg(cfg)["class"])]
        return fw + bw
    return list(state_names(cfg["class"]))


def state_units(cfg: Mapping) -> list[int]:
    """The width of each state, in Keras's order (Bidirectional: forward states, then backward)."""
    if cfg["class"] == "Bidirectional":
        return state_units(cfg["layer"]) + state_units(_backward_cfg(cfg))
    return [cfg["units"]] * len(state_names(cfg["class"]))


def _returns(cfg: Mapping, flag: str) -> bool:
    return cfg["layer"][flag] if cfg["class"] == "Bidirectional" else cfg[flag]


def output_names(cfg: Mapping, calls: int | None = None) -> list[str]:
    """Names of everything the layer returns, in Keras's order; ``callN.`` prefix for stateful runs."""
    bidi_none = cfg["class"] == "Bidirectional" and cfg["merge_mode"] is None
    names = ["output_fw", "output_bw"] if bidi_none else ["output"]
    if _returns(cfg, "return_state"):
        names += state_output_names(cfg)
    if calls:
        return [f"call{i}.{n}" for i in range(1, calls + 1) for n in names]
    return names


def output_shapes(cfg: Mapping, batch: int, timesteps: int) -> dict[str, tuple[int, ...]]:
    """Output name -> shape (before any ``callN.`` prefix)."""
    if cfg["class"] == "Bidirectional":
        uf, ub = cfg["layer"]["units"], _backward_cfg(cfg)["units"]
        width = {"concat": uf + ub}.get(cfg["merge_mode"], uf)
    else:
        uf = ub = width = cfg["units"]
    seq = _returns(cfg, "return_sequences")
    out = lambda u: (batch, timesteps, u) if seq else (batch, u)  # noqa: E731
    shapes = {"output": out(width), "output_fw": out(uf), "output_bw": out(ub)}
    for name in state_output_names(cfg):
        shapes[name] = (batch, ub if name.endswith("_bw") else uf)
    return {n: shapes[n] for n in output_names(cfg)}


# ---------------------------------------------------------------- cells: one step, whole batch

def _lstm_step(cfg: Mapping, w: Mapping[str, Array]):
    act, ract = activation(cfg["activation"]), activation(cfg["recurrent_activation"])
    bias = w.get("bias", 0.0)

    def step(x_t: Array, states: list[Array]):
        h, c = states
        z = x_t @ w["kernel"] + h @ w["recurrent_kernel"] + bias
        zi, zf, zc, zo = np.split(z, 4, axis=-1)  # §1 gate order [i, f, c, o]
        c_new = ract(zf) * c + ract(zi) * act(zc)
        h_new = ract(zo) * act(c_new)
        return h_new, [h_new, c_new]

    return step


def _gru_step(cfg: Mapping, w: Mapping[str, Array]):
    act, ract = activation(cfg["activation"]), activation(cfg["recurrent_activation"])
    u = cfg["units"]
    kernel, rec = w["kernel"], w["recurrent_kernel"]

    if cfg["reset_after"]:
        b_x, b_h = (w["bias"][0], w["bias"][1]) if "bias" in w else (0.0, 0.0)

        def step(x_t: Array, states: list[Array]):
            (h,) = states
            xz, xr, xh = np.split(x_t @ kernel + b_x, 3, axis=-1)  # §2 gate order [z, r, h]
            hz, hr, hh = np.split(h @ rec + b_h, 3, axis=-1)
            z, r = ract(xz + hz), ract(xr + hr)
            h_hat = act(xh + r * hh)  # reset applied after the recurrent matmul (and its bias)
            h_new = z * h + (1.0 - z) * h_hat
            return h_new, [h_new]
    else:
        b = w.get("bias", np.zeros(3 * u))

        def step(x_t: Array, states: list[Array]):
            (h,) = states
            xz, xr, xh = np.split(x_t @ kernel + b, 3, axis=-1)
            z = ract(xz + h @ rec[:, :u])
            r = ract(xr + h @ rec[:, u:2 * u])
            h_hat = act(xh + (r * h) @ rec[:, 2 * u:])  # reset applied before the matmul
            h_new = z * h + (1.0 - z) * h_hat
            return h_new, [h_new]

    return step


def _simple_step(cfg: Mapping, w: Mapping[str, Array]):
    act = activation(cfg["activation"])
    bias = w.get("bias", 0.0)

    def step(x_t: Array, states: list[Array]):
        (h,) = states
        h_new = act(x_t @ w["kernel"] + bias + h @ w["recurrent_kernel"])  # §3
        return h_new, [h_new]

    return step


CELLS = {"LSTM": _lstm_step, "GRU": _gru_step, "SimpleRNN": _simple_step}


# ---------------------------------------------------------------- the time loop

def run_rnn(cfg: Mapping, x: Array, weights: Mapping[str, Array], mask: Array | None = None,
            initial_state: list[Array] | None = None, zero_output_for_mask: bool | None = None):
    """One recurrent layer over a (B, T, F) input.

    Returns (outputs in processing order (B, T, U), last output (B, U), final states).
    Masked steps keep the states and repeat the previous output, which starts at zero, not h0
    (§6); with zero_output_for_mask they output zero.  go_backwards iterates from T-1 down and
    leaves the sequence in processing order (§5).
    """
    x = np.asarray(x, dtype=np.float64)
    w = {k: np.asarray(v, dtype=np.float64) for k, v in weights.items()}
    batch, steps = x.shape[0], x.shape[1]
    units = cfg["units"]
    n_states = len(state_names(cfg["class"]))
    states = ([np.asarray(s, dtype=np.float64) for s in initial_state] if initial_state is not None
              else [np.zeros((batch, units)) for _ in range(n_states)])
    zero_out = cfg["zero_output_for_mask"] if zero_output_for_mask is None else zero_output_for_mask
    step = CELLS[cfg["class"]](cfg, w)
    order = range(steps - 1, -1, -1) if cfg["go_backwards"] else range(steps)
    prev = np.zeros((batch, units))
    outputs = []
    for t in order:
        out, new_states = step(x[:, t], states)
        if mask is not None:
            keep = np.asarray(mask[:, t], dtype=bool)[:, None]
            new_states = [np.where(keep, n, s) for n, s in zip(new_states, states)]
            out = np.where(keep, out, 0.0 if zero_out else prev)
        states, prev = new_states, out
        outputs.append(out)
    seq = np.stack(outputs, axis=1) if outputs else np.zeros((batch, 0, units))
    return seq, prev, states


def _single(cfg: Mapping, x, weights, mask, initial_state, zero_output_for_mask=None):
    seq, last, states = run_rnn(cfg, x, weights, mask, initial_state, zero_output_for_mask)
    out = seq if cfg["return_sequences"] else last
    return out, states


def run(cfg: Mapping, x: Array, weights: Mapping, mask: Array | None = None,
        initial_state: list[Array] | None = None) -> dict[str, Array]:
    """Everything the layer returns, by name (see output_names), from the reference."""
    return forward(cfg, x, weights, mask, initial_state)[0]


def forward(cfg: Mapping, x: Array, weights: Mapping, mask: Array | None = None,
            initial_state: list[Array] | None = None) -> tuple[dict[str, Array], list[Array]]:
    """The named outputs and the final states in Keras's order (what a stateful layer keeps)."""
    if cfg["class"] != "Bidirectional":
        out, states = _single(cfg, x, weights, mask, initial_state)
        result = {"output": out}
        if cfg["return_state"]:
            result.update(zip(state_names(cfg["class"]), states))
        return result, list(states)
    fcfg, bcfg = cfg["layer"], dict(_backward_cfg(cfg))
    if not cfg.get("backward_layer"):
        bcfg["go_backwards"] = not fcfg["go_backwards"]  # §4: the copy runs the other way
    n_fw = len(state_names(fcfg["class"]))
    init_f = init_b = None
    if initial_state is not None:  # §8: split in halves, forward first
        init_f, init_b = initial_state[:n_fw], initial_state[n_fw:]
    # §4: zero_output_for_mask is forced to return_sequences on both directions.
    zf = fcfg["return_sequences"]
    y, st_f = _single(fcfg, x, weights["forward"], mask, init_f, zf)
    y_rev, st_b = _single(bcfg, x, weights["backward"], mask, init_b, zf)
    if fcfg["return_sequences"]:
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
    if fcfg["return_state"]:
        result.update(zip(state_output_names(cfg), states))
    return result, states
