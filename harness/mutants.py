"""Planted bugs in the NumPy reference: proof that the case library can fail (DESIGN.md).

Each mutant is a fresh copy of reference/recurrent.py, loaded under its own module name, with
one bug put in: either exact source edits (old text -> new text; the old text must be found, so
a refactor of the reference makes the mutant fail loudly instead of quietly becoming the
reference) or a function replaced on the copy.  The real module is never touched.  The copy is
the whole recurrent reference, so its bugs reach the training-mode dropout fit too (it runs the
same cells).  ``run_case(case,
ref=mutant.load())`` runs a case against it; ``hunt`` looks for the first case that fails.

Descriptions name the discrepancy class of docs/peers.md §3 that the bug stands for.
"""
from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import numpy as np

from . import layers
from .case import Case
from .errors import MutantError
from .keras_api import with_defaults
from .reference import backward, recurrent
from .runner import run_case

SOURCE = Path(recurrent.__file__)
BACKWARD_SOURCE = Path(backward.__file__)  # the backward pass's planted bugs: expect.gradients cases kill them


@dataclass(frozen=True)
class Mutant:
    """One planted bug: a name, a one-line description, and how to make it."""

    name: str
    about: str
    edits: tuple[tuple[str, str], ...] = ()
    patch: Callable[[ModuleType], None] | None = None
    # Case tags (see case_tags) that should expose the bug, and tags under which it cannot show;
    # only used to try likely cases first.
    hints: tuple[str, ...] = ()
    avoid: tuple[str, ...] = ()
    source: Path = SOURCE  # the reference module the bug is planted in (BACKWARD_SOURCE: the backward pass)

    @property
    def in_backward(self) -> bool:
        return self.source == BACKWARD_SOURCE

    def load(self) -> ModuleType:
        """A fresh copy of the reference module (recurrent.py, or backward.py) with this bug in it."""
        text = self.source.read_text(encoding="utf-8")
        for old, new in self.edits:
            if old not in text:
                raise MutantError(f"mutant {self.name}: {old!r} is no longer in {self.source.name}")
            text = text.replace(old, new)
        module_name = f"harness.reference._mutant_{self.name.replace('-', '_')}"
        spec = importlib.util.spec_from_file_location(module_name, self.source)
        module = importlib.util.module_from_spec(spec)  # __package__ "harness.reference": relative imports work
        exec(compile(text, f"{self.source} [mutant {self.name}]", "exec"), module.__dict__)  # our own source
        if self.patch is not None:
            self.patch(module)
        return module


# ---------------------------------------------------------------- patches on a loaded copy

def _wrap_run_rnn(change: Callable[..., tuple]) -> Callable[[ModuleType], None]:
    """Replace run_rnn on the copy; ``change`` gets the original and the arguments."""
    def patch(ref: ModuleType) -> None:
        inner = ref.run_rnn

        def run_rnn(cfg, x, weights, mask=None, initial_state=None, zero_output_for_mask=None,
                    dropout=ref.NO_DROPOUT, dtype=None):
            return change(functools.partial(inner, dropout=dropout, dtype=dtype), cfg, x, weights, mask,
                          initial_state, zero_output_for_mask)

        ref.run_rnn = run_rnn
    return patch


def _read_gates_as(cls: str, order: tuple[int, ...]) -> Callable[[ModuleType], None]:
    """The cell takes its gate g from weight block order[g]: a wrong gate layout."""
    def patch(ref: ModuleType) -> None:
        make = ref.CELLS[cls]

        def cell(cfg, w):
            def permute(a):
                blocks = np.split(a, len(order), axis=-1)
                return np.concatenate([blocks[i] for i in order], axis=-1)
            return make(cfg, {k: permute(v) for k, v in w.items()})

        ref.CELLS[cls] = cell
    return patch


def _in_float32(ref: ModuleType) -> None:
    """Every cell step computes in float32, whatever the case dtype."""
    for cls, make in list(ref.CELLS.items()):
        def cell(cfg, w, make=make):
            step = make(cfg, {k: np.asarray(v, np.float32) for k, v in w.items()})

            def step32(x_t, states, *drop):
                return step(x_t.astype(np.float32), [s.astype(np.float32) for s in states], *drop)
            return step32

        ref.CELLS[cls] = cell


def _transpose_recurrent_blocks(ref: ModuleType) -> None:
    """Each (U, U) gate block of recurrent_kernel transposed (torch/cuDNN store it (kU, U))."""
    def change(inner, cfg, x, w, *rest):
        k = layers.gates(cfg["class"])
        blocks = np.split(np.asarray(w["recurrent_kernel"]), k, axis=-1)
        return inner(cfg, x, {**w, "recurrent_kernel": np.concatenate([b.T for b in blocks], axis=-1)}, *rest)
    _wrap_run_rnn(change)(ref)


def _rereversed(inner, cfg, *args):
    seq, last, states = inner(cfg, *args)
    return (seq[:, ::-1] if cfg["go_backwards"] else seq), last, states


def _swap_lstm_states(ref: ModuleType) -> None:
    inner = ref._single

    def _single(cfg, *args, **kwargs):
        out, states = inner(cfg, *args, **kwargs)
        return out, (states[::-1] if cfg["class"] == "LSTM" else states)

    ref._single = _single


def _forget_state(ref: ModuleType) -> None:
    inner = ref.forward

    def forward(cfg, x, weights, mask=None, initial_state=None, **kwargs):
        result, _ = inner(cfg, x, weights, mask, initial_state, **kwargs)
        return result, initial_state  # the next call starts where this one started

    ref.forward = forward


def _unit_forget_bias_twice(ref: ModuleType) -> None:
    def change(inner, cfg, x, w, *rest):
        if cfg["class"] == "LSTM" and "bias" in w:
            u = cfg["units"]
            bias = np.array(w["bias"], dtype=np.float64)
            bias[u:2 * u] += 1.0
            w = {**w, "bias": bias}
        return inner(cfg, x, w, *rest)
    _wrap_run_rnn(change)(ref)


# ---------------------------------------------------------------- the registry

def _m(name: str, about: str, *, edits=(), patch=None, hints=(), avoid=()) -> Mutant:
    return Mutant(name, about, tuple(edits), patch, tuple(hints), tuple(avoid))


MUTANTS: tuple[Mutant, ...] = (
    # class 5: gate order and weight layout
    _m("lstm-gates-icfo", "class 5 gate order: LSTM blocks [i,f,c,o] read as [i,c,f,o]",
       patch=_read_gates_as("LSTM", (0, 2, 1, 3)), hints=("LSTM",)),
    _m("lstm-gates-onnx-iofc", "class 5 gate order: LSTM blocks read in ONNX order [i,o,f,c]",
       patch=_read_gates_as("LSTM", (0, 2, 3, 1)), hints=("LSTM",)),
    _m("gru-gates-rzh", "class 5 gate order: GRU blocks [z,r,h] read as cuDNN/torch [r,z,h]",
       patch=_read_gates_as("GRU", (1, 0, 2)), hints=("GRU",)),
    _m("kernels-swapped", "class 5 weight layout: recurrent_kernel used for the input, kernel for h",
       patch=_wrap_run_rnn(lambda inner, cfg, x, w, *rest: inner(
           cfg, x, {**w, "kernel": w["recurrent_kernel"], "recurrent_kernel": w["kernel"]}, *rest)),
       hints=("square",)),
    _m("kernel-reshaped-not-transposed", "class 5 weight layout: kernel stored (kU, F) as torch does, "
       "reshaped to (F, kU) instead of transposed",
       patch=_wrap_run_rnn(lambda inner, cfg, x, w, *rest: inner(
           cfg, x, {**w, "kernel": np.reshape(np.asarray(w["kernel"]).T, np.shape(w["kernel"]))}, *rest)),
       hints=("features>1",)),
    _m("recurrent-blocks-transposed", "class 5 weight layout: each (U,U) recurrent gate block transposed "
       "(torch/cuDNN per-gate layout)", patch=_transpose_recurrent_blocks, hints=("units>1",)),
    # class 3: the two GRU variants
    _m("gru-reset-before-matmul", "class 3 GRU variant: reset applied before the recurrent matmul "
       "although reset_after=True (b_h no longer inside r*(...))",
       edits=[("h_hat = act(xh + r * hh)", "h_hat = act(xh + (r * h) @ rec[2] + bh[2])")],
       hints=("GRU", "reset_after")),
    _m("gru-z-weighting-swapped", "class 3 GRU variant: h' = (1-z)*h + z*h_hat (the other paper's form)",
       edits=[("h_new = z * h + (1.0 - z) * h_hat", "h_new = (1.0 - z) * h + z * h_hat")], hints=("GRU",)),
    # class 4: bias shape
    _m("gru-bias-rows-swapped", "class 4 bias layout: GRU reset_after bias rows b_x <-> b_h swapped",
       edits=[('(w["bias"][0], w["bias"][1])', '(w["bias"][1], w["bias"][0])')], hints=("GRU", "reset_after")),
    _m("gru-recurrent-bias-dropped", "class 4 bias layout: GRU second bias row (b_h) dropped",
       edits=[('(w["bias"][0], w["bias"][1])', '(w["bias"][0], 0.0 * w["bias"][1])')],
       hints=("GRU", "reset_after")),
    _m("bias-dropped", "class 4 bias: the bias weight ignored",
       patch=_wrap_run_rnn(lambda inner, cfg, x, w, *rest: inner(
           cfg, x, {k: v for k, v in w.items() if k != "bias"}, *rest))),
    _m("lstm-forget-bias-plus-one", "class 4 bias: unit_forget_bias added again (forget bias 1+b)",
       patch=_unit_forget_bias_twice, hints=("LSTM",)),
    # class 6: go_backwards
    _m("go-backwards-input-order", "class 6 go_backwards: output sequence re-reversed into input order",
       patch=_wrap_run_rnn(_rereversed),
       hints=("go_backwards", "return_sequences")),
    _m("go-backwards-ignored", "class 6 go_backwards: the input read forwards",
       edits=[("range(steps - 1, -1, -1) if cfg[\"go_backwards\"] else range(steps)", "range(steps)")],
       hints=("go_backwards",)),
    # states
    _m("lstm-states-h-c-swapped", "state order: LSTM returns [c, h] instead of [h, c]",
       patch=_swap_lstm_states, hints=("LSTM", "return_state")),
    _m("initial-state-ignored", "initial state: the given initial_state ignored (zeros used)",
       patch=_wrap_run_rnn(lambda inner, cfg, x, w, mask, init, zo: inner(cfg, x, w, mask, None, zo)),
       hints=("initial_state",)),
    # class 2: masking
    _m("mask-ignored", "class 2 masking: the mask ignored",
       patch=_wrap_run_rnn(lambda inner, cfg, x, w, mask, init, zo: inner(cfg, x, w, None, init, zo)),
       hints=("mask",)),
    _m("mask-output-zeroed", "class 2 masking: masked steps output 0 instead of repeating the last output",
       patch=_wrap_run_rnn(lambda inner, cfg, x, w, mask, init, zo: inner(cfg, x, w, mask, init, True)),
       hints=("mask", "return_sequences"), avoid=("Bidirectional", "zero_output_for_mask")),  # zeros there anyway
    _m("mask-prev-output-h0", "class 2 masking: the repeated output starts at h0 instead of 0 "
       "(the JAX/NumPy-backend rule)",
       edits=[("prev = np.zeros((batch, units), dtype=dt)", "prev = states[0]")], hints=("mask", "initial_state")),
    # class 7: Bidirectional
    _m("bidi-backward-not-rereversed", "class 7 Bidirectional: backward sequence left in processing order",
       edits=[("y_rev = y_rev[:, ::-1]", "y_rev = y_rev")], hints=("Bidirectional", "return_sequences")),
    _m("bidi-state-order-backward-first", "class 7 Bidirectional: states returned [h_b, c_b, h_f, c_f]",
       edits=[("states = list(st_f) + list(st_b)", "states = list(st_b) + list(st_f)")],
       hints=("Bidirectional", "return_state")),
    _m("bidi-initial-state-halves-swapped", "class 7 Bidirectional: initial_state halves given to the "
       "wrong directions",
       edits=[("init_f, init_b = initial_state[:n_fw], initial_state[n_fw:]",
               "init_b, init_f = initial_state[:n_fw], initial_state[n_fw:]")],
       hints=("Bidirectional", "initial_state")),
    # class 8: stateful
    _m("stateful-state-not-carried", "class 8 stateful: each call starts from the initial state again",
       patch=_forget_state, hints=("stateful",)),
    # class 1: precision
    _m("float64-in-float32", "class 1 precision: float64 cases computed in float32",
       patch=_in_float32, hints=("float64",)),
    # class 10: training-mode dropout (the fit runs these same cells)
    _m("dropout-masks-shared-by-gates", "class 10 dropout: one mask for every gate on the per-gate path "
       "(recurrent_dropout > 0 draws one per gate)",
       edits=[("masks[gate if len(masks) > 1 else 0]", "masks[0]")], hints=("training",)),
    _m("dropout-recurrent-mask-ignored", "class 10 dropout: the LSTM recurrent dropout mask never applied",
       edits=[("xs, hs = _project(x_t, kernel, drop.inputs), _project(h, rec, drop.recurrent)",
               "xs, hs = _project(x_t, kernel, drop.inputs), _project(h, rec, ())")],
       hints=("training", "LSTM")),
    # class 9: activation definitions
    _m("hard-sigmoid-keras2", "class 9 activation: hard_sigmoid as Keras 2's clip(0.2x+0.5) not x/6+0.5",
       edits=[("np.clip(x / 6.0 + 0.5, 0.0, 1.0)", "np.clip(0.2 * x + 0.5, 0.0, 1.0)")],
       hints=("hard_sigmoid",)),
)
# Bugs planted in the backward pass (reference/backward.py): the gradient cases must kill each one;
# tests/unit/test_backward.py shows finite differences catch each too.
BACKWARD_MUTANTS: tuple[Mutant, ...] = tuple(Mutant(name, about, (edit,), hints=("gradients", *hints),
                                                    source=BACKWARD_SOURCE) for name, about, edit, hints in (
    ("grad-lstm-o-gate-dropped", "gradients: the LSTM output gate's derivative dropped",
     ('"o": dh * act_c}', '"o": 0.0 * act_c}'), ("LSTM",)),
    ("grad-lstm-forget-path-cut", "gradients: the path through c to the previous step cut (dc_prev = 0)",
     ("dc_prev = dc * g.f", "dc_prev = 0.0 * g.f"), ("LSTM",)),
    ("grad-gru-reset-wrong-side", "gradients: GRU reset_before differentiated as reset_after (r on the wrong side)",
     ("if reset_after:  # a^ = x_h + r*rec", "if True:  # a^ = x_h + r*rec"), ("GRU",)),
    ("grad-mask-does-not-stop", "gradients: masked steps differentiated as kept (the mask does not stop it)",
     ("return np.asarray(mask[:, t], dtype=bool)[:, None]", "return np.ones((batch, 1), dtype=bool)"), ("mask",)),
    ("grad-go-backwards-dx-not-reversed", "gradients: go_backwards input gradients left in processing order",
     ("dx[:, step.timestep] = cell.x_t", "dx[:, step.index] = cell.x_t"), ("go_backwards",)),
))
BY_NAME = {m.name: m for m in (*MUTANTS, *BACKWARD_MUTANTS)}


# ---------------------------------------------------------------- which cases to try first

def case_tags(case: Case) -> set[str]:
    """Coarse features of a case, matched against mutant hints."""
    cfg = with_defaults(dict(case.layer))
    # The layers as written (a Bidirectional's copy of its layer adds no tags of its own).
    cells = [layers.cells(cfg)[0]] + ([cfg["backward_layer"]] if cfg.get("backward_layer") else [])
    tags = {c["class"] for c in cells} | ({"Bidirectional"} if cfg["class"] == "Bidirectional" else set())
    for c in cells:
        if c["class"] == "GRU":
            tags.add("reset_after" if c["reset_after"] else "reset_before")
        for flag in ("go_backwards", "return_sequences", "return_state", "zero_output_for_mask"):
            if c[flag]:
                tags.add(flag)
        if {c.get("activation"), c.get("recurrent_activation")} & {"hard_sigmoid", "hard_silu", "hard_swish"}:
            tags.add("hard_sigmoid")  # the activations built on _hard_sigmoid
        if c["units"] > 1:
            tags.add("units>1")
        if c["units"] == case.input.features:
            tags.add("square")
    if case.input.features > 1:
        tags.add("features>1")
    if case.mask is not None:
        tags.add("mask")
    if case.initial_state is not None and case.initial_state != "zeros":
        tags.add("initial_state")
    if case.calls is not None:
        tags.add("stateful")
    if case.training:
        tags.add("training")
    if case.expect.gradients:
        tags.add("gradients")
    tags.add(case.dtype)
    return tags


def judges_reference(case: Case, mutant: Mutant | None = None) -> bool:
    """False for cases whose verdict never reads the (mutated) reference's numbers: an expected Keras
    error (the runner stops there); for a backward-pass bug, a case without expect.gradients.
    Training-mode dropout cases judge the recurrent reference: the fit runs its cells."""
    return case.expect.error is None and (mutant is None or not mutant.in_backward or case.expect.gradients)


def order_cases(mutant: Mutant, cases: Iterable[Case]) -> list[Case]:
    """Cases that judge the reference, most hints matched first, then the cheapest."""
    def key(case: Case):
        tags = case_tags(case)
        score = len(set(mutant.hints) & tags) - len(set(mutant.avoid) & tags)
        inp = case.input
        cost = inp.batch * inp.timesteps * inp.features * (case.calls.count if case.calls else 1)
        return (-score, cost, case.id)
    return sorted((c for c in cases if judges_reference(c, mutant)), key=key)


# ---------------------------------------------------------------- the hunt

@dataclass
class Hunt:
    """What one mutant met: the case that killed it (or None), every case tried."""

    mutant: Mutant
    killer: str | None = None
    verdict: str = ""
    message: str = ""
    tried: list[str] = field(default_factory=list)
    # Cases that failed for the mutant but also for the unmutated reference: not kills.
    unfair: list[str] = field(default_factory=list)

    @property
    def killed(self) -> bool:
        return self.killer is not None


def hunt(mutant: Mutant, cases: Iterable[Case], keras_cache: dict | None = None,
         control: dict | None = None) -> Hunt:
    """Run cases (likely ones first) against the mutant until one fails or errors.

    A failure counts only if the unmutated reference passes that same case; ``control`` (case id
    -> CaseResult of the real reference) memoizes those runs across mutants, ``keras_cache`` the
    Keras runs.
    """
    control = {} if control is None else control
    module = mutant.load()
    found = Hunt(mutant)
    for case in order_cases(mutant, cases):
        planted = {"backward": module} if mutant.in_backward else {"ref": module}
        result = run_case(case, keras_cache=keras_cache, **planted)
        found.tried.append(case.id)
        if not result.verdict.failed:
            continue
        if case.id not in control:
            control[case.id] = run_case(case, keras_cache=keras_cache)
        if control[case.id].verdict != "pass":
            found.unfair.append(case.id)
            continue
        found.killer, found.verdict = case.id, result.verdict
        found.message = (result.message or "").strip().splitlines()[0] if result.message else ""
        break
    return found
