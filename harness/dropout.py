"""Training-mode dropout: recover Keras's dropout masks from its output (§9).

Keras's random stream cannot be reproduced, so the check is structural: for every batch row,
try every possible set of masks (each entry 0 or 1/(1-p), one set per call reused at every
timestep) through a masked copy of the reference cell, and require that one set reproduces
Keras's outputs within tolerance.  That proves one mask per call, inverted scaling, and which
tensor each mask multiplies; it does not pretend to predict which entries were dropped.

Mask layout follows keras/src/layers/rnn/{lstm,gru}.py: ``recurrent_dropout > 0`` forces
implementation 1, with one input mask and one recurrent mask per gate; otherwise one input mask
is shared by all gates.  SimpleRNN has one of each.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from collections.abc import Mapping

import numpy as np

from .reference import activation, gates, output_names

MAX_BITS = 14  # 2**14 candidate mask sets per row, evaluated as one batch


def _active(rate: float) -> bool:
    return 0.0 < rate < 1.0  # the cell applies dropout only then (§9)


def mask_counts(cfg: Mapping, features: int) -> tuple[int, int]:
    """(input masks, recurrent masks) the cell draws, each as many entries as its input width."""
    per_gate = cfg["class"] != "SimpleRNN" and _active(cfg["recurrent_dropout"])
    k = gates(cfg["class"]) if per_gate else 1
    n_in = k if _active(cfg["dropout"]) else 0
    n_rec = k if _active(cfg["recurrent_dropout"]) else 0
    return n_in, n_rec


def mask_bits(cfg: Mapping, features: int) -> int:
    n_in, n_rec = mask_counts(cfg, features)
    return n_in * features + n_rec * cfg["units"]


def _masked_step(cfg: Mapping, w: Mapping[str, np.ndarray], m_in: list, m_rec: list):
    """One step of the cell with dropout masks applied the way Keras applies them."""
    cls = cfg["class"]
    act = activation(cfg["activation"])
    ract = activation(cfg.get("recurrent_activation", "sigmoid"))
    k = gates(cls)
    kern = np.split(w["kernel"], k, axis=1)
    rec = np.split(w["recurrent_kernel"], k, axis=1)
    bias = w.get("bias")

    def gate_in(x, g):  # x masked by gate g's input mask (or the shared one)
        return x * m_in[g if len(m_in) > 1 else 0] if m_in else x

    def gate_rec(h, g):
        return h * m_rec[g if len(m_rec) > 1 else 0] if m_rec else h

    if cls == "SimpleRNN":
        def step(x, states):
            (h,) = states
            h_new = act(gate_in(x, 0) @ w["kernel"] + (bias if bias is not None else 0.0)
                        + gate_rec(h, 0) @ w["recurrent_kernel"])
            return h_new, [h_new]
        return step

    if cls == "LSTM":
        b = np.split(bias, 4) if bias is not None else [0.0] * 4

        def step(x, states):
            h, c = states
            z = [gate_in(x, g) @ kern[g] + gate_rec(h, g) @ rec[g] + b[g] for g in range(4)]
            c_new = ract(z[1]) * c + ract(z[0]) * act(z[2])
            h_new = ract(z[3]) * act(c_new)
            return h_new, [h_new, c_new]
        return step

    reset_after = cfg["reset_after"]
    if bias is None:
        b_x, b_h = [0.0] * 3, [0.0] * 3
    elif reset_after:
        b_x, b_h = np.split(bias[0], 3), np.split(bias[1], 3)
    else:
        b_x, b_h = np.split(bias, 3), [0.0] * 3

    def step(x, states):
        (h,) = states
        xz, xr, xh = (gate_in(x, g) @ kern[g] + b_x[g] for g in range(3))
        z = ract(xz + gate_rec(h, 0) @ rec[0] + b_h[0])
        r = ract(xr + gate_rec(h, 1) @ rec[1] + b_h[1])
        if reset_after:
            hh = act(xh + r * (gate_rec(h, 2) @ rec[2] + b_h[2]))
        else:
            hh = act(xh + (r * gate_rec(h, 2)) @ rec[2])
        h_new = z * h + (1.0 - z) * hh
        return h_new, [h_new]
    return step


def _candidates(cfg: Mapping, features: int) -> tuple[list, list, int]:
    """Every mask set as arrays over the candidate axis: (input masks, recurrent masks, count)."""
    n_in, n_rec = mask_counts(cfg, features)
    u = cfg["units"]
    bits = n_in * features + n_rec * u
    table = np.array(list(itertools.product((0.0, 1.0), repeat=bits))).reshape(2 ** bits, bits)
    keep_in = 1.0 / (1.0 - cfg["dropout"]) if n_in else 1.0  # inverted dropout scaling
    keep_rec = 1.0 / (1.0 - cfg["recurrent_dropout"]) if n_rec else 1.0
    m_in = [table[:, g * features:(g + 1) * features] * keep_in for g in range(n_in)]
    off = n_in * features
    m_rec = [table[:, off + g * u: off + (g + 1) * u] * keep_rec for g in range(n_rec)]
    return m_in, m_rec, 2 ** bits


@dataclass(frozen=True)
class RowFit:
    """The best mask set found for one batch row."""

    row: int
    error: float  # max abs error of the best candidate over every output
    passed: bool  # every element of every output within atol + rtol*|keras|
    kept: float  # fraction of mask entries kept in that candidate


def fit_rows(cfg: Mapping, x: np.ndarray, weights: Mapping, keras_outputs: Mapping[str, np.ndarray],
             initial_state: list | None, atol: float, rtol: float) -> list[RowFit]:
    """For each row, the candidate mask set closest to what Keras returned."""
    w = {k: np.asarray(v, dtype=np.float64) for k, v in weights.items()}
    m_in, m_rec, n = _candidates(cfg, x.shape[-1])
    step = _masked_step(cfg, w, m_in, m_rec)
    names = output_names(cfg)
    fits = []
    for b in range(x.shape[0]):
        xs = np.repeat(x[b:b + 1], n, axis=0)
        n_states = 2 if cfg["class"] == "LSTM" else 1
        states = ([np.repeat(np.asarray(s[b:b + 1], dtype=np.float64), n, axis=0) for s in initial_state]
                  if initial_state is not None else [np.zeros((n, cfg["units"]))] * n_states)
        order = range(x.shape[1] - 1, -1, -1) if cfg["go_backwards"] else range(x.shape[1])
        seq = []
        for t in order:
            out, states = step(xs[:, t], states)
            seq.append(out)
        result = {"output": np.stack(seq, axis=1) if cfg["return_sequences"] else seq[-1]}
        if cfg["return_state"]:
            result.update(zip(("h", "c"), states))
        err = np.zeros(n)
        slack = np.full(n, np.inf)
        for name in names:
            want = np.asarray(keras_outputs[name][b], dtype=np.float64)
            diff = np.abs(result[name] - want[None]).reshape(n, -1)
            allowed = atol + rtol * np.abs(want).reshape(1, -1)
            err = np.maximum(err, diff.max(axis=1))
            slack = np.minimum(slack, (allowed - diff).min(axis=1))
        best = int(np.argmax(slack))
        entries = np.concatenate([m[best] for m in m_in + m_rec]) if (m_in or m_rec) else np.ones(1)
        fits.append(RowFit(b, float(err[best]), bool(slack[best] >= 0), float(np.mean(entries > 0))))
    return fits
