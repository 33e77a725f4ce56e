"""Facts per layer class, in one place: no math, no Keras.

Gate blocks, weight names and shapes, state names and widths, output names and shapes,
parameter formulas, the dropout masks a cell draws, and the dtype table.  Every stage reads
them from here: the schema (what a case may name), the reference (how to cut the weights),
the Keras side (what a call returns) and the checks (what to compare).  The Sequential layer
table (``model:`` cases) is in ``model_layers.py``.  Layer configs (``cfg``) have every Keras
default filled in (``keras_api.with_defaults``).  Sections (§) point at docs/semantics.md.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from .case import OutputKey

# Gate blocks along the kernels' last axis, in Keras's order: LSTM [i, f, c, o] (§1),
# GRU [z, r, h] (§2), SimpleRNN one block.
GATES: dict[str, tuple[str, ...]] = {"LSTM": ("i", "f", "c", "o"), "GRU": ("z", "r", "h"), "SimpleRNN": ("h",)}
GATE_NAMES = {"i": "input gate", "f": "forget gate", "c": "cell candidate", "o": "output gate",
              "z": "update gate", "r": "reset gate", "h": "candidate"}
STATES: dict[str, tuple[str, ...]] = {"LSTM": ("h", "c"), "GRU": ("h",), "SimpleRNN": ("h",)}


class DtypeFacts(NamedTuple):
    """How a case dtype runs: the layer's compute dtype, what the harness feeds, its tolerance row."""

    compute: str
    feed: str
    tolerance_row: str


# The dtype policy names a case may give; Keras casts what it is fed to the compute dtype.
DTYPES: dict[str, DtypeFacts] = {
    "float32": DtypeFacts("float32", "float32", "float32"),
    "float64": DtypeFacts("float64", "float64", "float64"),
    "float16": DtypeFacts("float16", "float32", "float16"),
    "bfloat16": DtypeFacts("bfloat16", "float32", "bfloat16"),
    "mixed_float16": DtypeFacts("float16", "float32", "mixed_float16"),
    "mixed_bfloat16": DtypeFacts("bfloat16", "float32", "mixed_bfloat16"),
}


def numpy_dtype(compute: str):
    """The NumPy dtype of a compute dtype name (bfloat16 from ml_dtypes)."""
    if compute == "bfloat16":
        import ml_dtypes  # noqa: PLC0415 - NumPy's bfloat16; ships with Keras, needed only for bfloat16

        return ml_dtypes.bfloat16
    return getattr(np, compute)


def gates(layer_class: str) -> int:
    """Gate blocks per kernel."""
    return len(GATES[layer_class])


def state_names(layer_class: str) -> tuple[str, ...]:
    """Names of the states a recurrent layer returns, in Keras's order."""
    return STATES[layer_class]


def is_bidirectional(cfg: Mapping) -> bool:
    return cfg["class"] == "Bidirectional"


def backward_spec(cfg: Mapping) -> Mapping:
    """The config the backward direction was built from: backward_layer, else the wrapped layer."""
    return cfg["backward_layer"] if cfg.get("backward_layer") else cfg["layer"]


def cells(cfg: Mapping) -> tuple[Mapping, Mapping | None]:
    """(forward, backward) cell configs as they run; backward is None for a plain layer.

    Without a backward_layer, Bidirectional runs a copy of the layer with go_backwards
    flipped (§4)."""
    if not is_bidirectional(cfg):
        return cfg, None
    backward = dict(backward_spec(cfg))
    if not cfg.get("backward_layer"):
        backward["go_backwards"] = not cfg["layer"]["go_backwards"]
    return cfg["layer"], backward


def returns(cfg: Mapping, flag: str) -> bool:
    """return_sequences / return_state of a layer (Bidirectional: of the wrapped layer)."""
    return cfg["layer"][flag] if is_bidirectional(cfg) else cfg[flag]


# ---------------------------------------------------------------- weights and counts

def _cell_shapes(cfg: Mapping, features: int) -> dict[str, tuple[int, ...]]:
    k, u = gates(cfg["class"]), cfg["units"]
    shapes = {"kernel": (features, k * u), "recurrent_kernel": (u, k * u)}
    if cfg["use_bias"]:
        two_rows = cfg["class"] == "GRU" and cfg["reset_after"]
        shapes["bias"] = (2, k * u) if two_rows else (k * u,)  # §2: (2, 3U) when reset_after
    return shapes


def weight_shapes(cfg: Mapping, features: int) -> dict:
    """Weight name -> shape, as get_weights() returns them (nested by direction for Bidirectional)."""
    if is_bidirectional(cfg):
        return {"forward": _cell_shapes(cfg["layer"], features),
                "backward": _cell_shapes(backward_spec(cfg), features)}
    return _cell_shapes(cfg, features)


def param_formula(cfg: Mapping, features: int) -> tuple[int, str]:
    """The parameter count from the semantics doc, with the formula it came from."""
    if is_bidirectional(cfg):
        (nf, ff), (nb, fb) = param_formula(cfg["layer"], features), param_formula(backward_spec(cfg), features)
        return nf + nb, f"forward {ff} + backward {fb}"
    k, u, f = gates(cfg["class"]), cfg["units"], features
    if not cfg["use_bias"]:
        return k * (f * u + u * u), f"{k}*(F*U + U*U) = {k}*({f}*{u} + {u}*{u})"
    if cfg["class"] == "GRU" and cfg["reset_after"]:
        return k * (f * u + u * u + 2 * u), f"3*(F*U + U*U + 2U) = 3*({f}*{u} + {u}*{u} + 2*{u})"
    return k * (f * u + u * u + u), f"{k}*(F*U + U*U + U) = {k}*({f}*{u} + {u}*{u} + {u})"


def param_count(cfg: Mapping, features: int) -> int:
    return param_formula(cfg, features)[0]


# ---------------------------------------------------------------- states and outputs

def state_output_names(cfg: Mapping) -> list[str]:
    """States in the order Keras returns them (Bidirectional: forward first, §4)."""
    if is_bidirectional(cfg):
        return ([f"{n}_fw" for n in state_names(cfg["layer"]["class"])]
                + [f"{n}_bw" for n in state_names(backward_spec(cfg)["class"])])
    return list(state_names(cfg["class"]))


def state_units(cfg: Mapping) -> list[int]:
    """The width of each state, in Keras's order (Bidirectional: forward states, then backward)."""
    if is_bidirectional(cfg):
        return state_units(cfg["layer"]) + state_units(backward_spec(cfg))
    return [cfg["units"]] * len(state_names(cfg["class"]))


def output_names(cfg: Mapping) -> list[str]:
    """Names of everything one call of the layer returns, in Keras's order."""
    names = ["output_fw", "output_bw"] if is_bidirectional(cfg) and cfg["merge_mode"] is None else ["output"]
    if returns(cfg, "return_state"):
        names += state_output_names(cfg)
    return names


def output_keys(cfg: Mapping, calls: int | None = None) -> list[OutputKey]:
    """Every output of a run: one set per call for stateful runs (``calls``), else one."""
    names = output_names(cfg)
    if not calls:
        return [OutputKey(n) for n in names]
    return [OutputKey(n, call) for call in range(1, calls + 1) for n in names]


def output_shapes(cfg: Mapping, batch: int, timesteps: int) -> dict[str, tuple[int, ...]]:
    """Output name -> shape, for one call."""
    if is_bidirectional(cfg):
        uf, ub = cfg["layer"]["units"], backward_spec(cfg)["units"]
        width = uf + ub if cfg["merge_mode"] == "concat" else uf
    else:
        uf = ub = width = cfg["units"]
    seq = returns(cfg, "return_sequences")

    def out(u: int) -> tuple[int, ...]:
        return (batch, timesteps, u) if seq else (batch, u)

    shapes = {"output": out(width), "output_fw": out(uf), "output_bw": out(ub)}
    for name in state_output_names(cfg):
        shapes[name] = (batch, ub if name.endswith("_bw") else uf)
    return {n: shapes[n] for n in output_names(cfg)}


# The axes of a compared array, by rank: every output and state of a recurrent layer, and every
# layer output a model case compares, is (batch, unit) or (batch, timestep, unit).
OUTPUT_AXES = {2: ("batch", "unit"), 3: ("batch", "timestep", "unit")}


def output_axes(rank: int) -> tuple[str, ...]:
    """The names of the axes of a compared array of this rank (``axis0``, ... for other ranks)."""
    return OUTPUT_AXES.get(rank, tuple(f"axis{i}" for i in range(rank)))


# ---------------------------------------------------------------- dropout masks (§9)

# The training-mode dropout check tries every mask set of a row: at most 2**14 candidates.
DROPOUT_FIT_MAX_BITS = 14


def _active(rate: float) -> bool:
    return 0.0 < rate < 1.0  # the cell applies dropout only then (§9)


def dropout_masks(cfg: Mapping) -> tuple[int, int]:
    """(input masks, recurrent masks) one cell draws per call.

    ``recurrent_dropout > 0`` or ``implementation=1`` runs LSTM/GRU on the per-gate path, with one
    input mask and one recurrent mask per gate; otherwise one input mask is shared by all gates.
    SimpleRNN has one of each (Keras 3.15 ``LSTMCell.__init__``/``GRUCell.__init__`` set
    ``dropout_mask_count``; ``DropoutRNNCell._create_dropout_mask``)."""
    per_gate = cfg["class"] != "SimpleRNN" and (_active(cfg["recurrent_dropout"]) or cfg.get("implementation") == 1)
    k = gates(cfg["class"]) if per_gate else 1
    return (k if _active(cfg["dropout"]) else 0), (k if _active(cfg["recurrent_dropout"]) else 0)


def dropout_mask_bits(cfg: Mapping, features: int) -> int:
    """Mask entries one cell draws per row and call (input masks are F wide, recurrent ones U)."""
    n_in, n_rec = dropout_masks(cfg)
    return n_in * features + n_rec * cfg["units"]


def dropout_bits(cfg: Mapping, features: int) -> int:
    """Mask entries of a layer (Bidirectional: the larger of its two directions)."""
    forward, backward = cells(cfg)
    return max(dropout_mask_bits(c, features) for c in (forward, backward) if c is not None)
