"""The checks of a case, as pure functions: each returns the ``Check`` rows it found, for layer and
model cases alike.  runner.py decides the order and the verdict; nothing here raises or imports Keras.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import ModuleType

import numpy as np

from . import dropout_stats, layers, model_layers
from .case import Case, OutputKey
from .compare import compare
from .errors import KerasRaised
from .reference import dropout as dropout_fit
from .report import problem
from .result import Check, Pass, Side
from .tolerances import gradient as gradient_tolerance
from .tolerances import resolve

Outputs = Mapping[OutputKey, np.ndarray]


def error_matches(raised: KerasRaised, case: Case) -> bool:
    """Whether what Keras raised is the exception the case expects (type by name, message by regex)."""
    spec = case.expect.error
    return spec is not None and spec.matches(raised.original)


def expected_error(case: Case, raised: KerasRaised | None) -> list[Check]:
    """expect.error: Keras must raise the named exception; without it, raising is no check here."""
    spec = case.expect.error
    if spec is None:
        return []
    if raised is None:
        return [Check("error", False, f"expected Keras to raise {spec.type} matching {spec.match!r}, "
                                      "but it returned normally")]
    if error_matches(raised, case):
        return [Check("error", True, f"Keras raised as expected: {str(raised)[:300]}", how=Pass.EXPECTED_ERROR,
                      raised=type(raised.original).__name__)]
    return [Check("error", False, f"Keras raised {raised} (expected {spec.type} matching {spec.match!r})")]


def device(case: Case, ran_on: str) -> list[Check]:
    """The case's device is where Keras's output tensors really are."""
    if ran_on == case.device:
        return []
    where = "the CPU" if case.device == "gpu" and ran_on == "cpu" else ran_on
    return [Check("device", False, f"{case.device} case, but the output tensors are on {where}")]


def _ran_cudnn(kernel: str) -> bool:
    return "cudnn" in kernel.split("+")


def kernel(case: Case, run) -> list[Check]:
    """The kernel that ran: as harness/kernels.py predicts from Keras's rules, and as the case expects."""
    out = []
    predicted, observed = run.predicted, run.observed
    if predicted is not None and observed is not None and observed != predicted.kernel:
        out.append(Check("kernel", False, f"Keras ran the {observed} kernel, but harness/kernels.py "
                                          f"predicted {predicted.kernel} ({predicted.reason})"))
    if case.device == "cpu" and observed is not None and _ran_cudnn(observed):
        # Keras 3 TF and JAX pick cuDNN when a GPU exists at all, whatever the device scope (§11).
        out.append(Check("kernel", False, "cpu case, but the cuDNN kernel ran (a GPU is visible to this "
                                          "process): run cpu cases with CUDA_VISIBLE_DEVICES=-1 or use_cudnn: false"))
    if case.expect.kernel is not None:
        why = f" ({predicted.reason})" if predicted is not None else ""
        out.append(Check("expect.kernel", run.kernel == case.expect.kernel,
                         f"expect.kernel {case.expect.kernel}, ran {run.kernel}{why}"))
    return out


# What a documented mismatch names to say Keras's symbolic output shapes are known to be wrong
# (a known.yaml row: mismatch: [symbolic]).
SYMBOLIC = OutputKey("symbolic")


def symbolic(case: Case, actual: Outputs, shapes, problem: str, batch: int | None = None) -> list[Check]:
    """The output shapes Keras computes symbolically (batch unknown, or ``batch``) are those its
    call returned, batch aside (real Keras recurrent bugs show only there)."""
    if shapes is None and not problem:
        return []
    first_call = [np.shape(v) for key, v in actual.items() if key.call in (None, 1)]
    eager = [(batch, *s[1:]) for s in first_call]
    got = None if problem else [tuple(s) for s in shapes]
    agrees = got == eager
    known = "batch unknown" if batch is None else f"batch {batch}"
    detail = (f"computing the output shapes for an unknown batch raised {problem}" if problem else
              f"the symbolic output shapes ({known}) are {got}, the call returned {first_call}")
    return [documented_or_agreed(case, SYMBOLIC, Check("symbolic shapes", agrees, detail),
                                 "the symbolic shapes now agree")]


def outputs(case: Case, actual: Outputs, expected: Outputs, compute: str, tf32: bool = False) -> list[Check]:
    """Every output and state of Keras against the reference; documented mismatches must still differ."""
    if list(actual) != list(expected):
        return [Check("outputs", False, f"Keras returned {[str(k) for k in actual]}, "
                                        f"the reference {[str(k) for k in expected]}")]
    return [judged(case, str(key), compare(str(key), got, expected[key], resolve(case, key, tf32), "reference",
                                           compute), key)
            for key, got in actual.items()]


def judged(case: Case, name: str, comp, key: OutputKey, side: Side = Side.KERAS) -> Check:
    """A comparison of output ``key`` as a check: it must agree, or, where the case documents a
    mismatch on that output of Keras (expect.mismatch, known.yaml), Keras's side must still differ."""
    if side != Side.KERAS:
        return Check(name, comp.passed, problem(comp), comp, side)
    return documented_or_agreed(case, key, Check(name, comp.passed, problem(comp), comp, side),
                                f"Keras now agrees with the {comp.against}")


def documented_or_agreed(case: Case, key: OutputKey, check: Check, agreeing: str) -> Check:
    """``check`` as it stands, or, where the case documents a mismatch on ``key``, passing only
    while it fails (``agreeing`` says what it means when it no longer does)."""
    if case.expect.mismatch is None or key not in case.expect.mismatch.outputs:
        return check
    if check.passed:
        detail = f"documented mismatch did not happen ({agreeing}): {case.expect.mismatch.reason}"
    else:
        detail = f"documented mismatch seen: {check.detail}"
    return dataclasses.replace(check, passed=not check.passed, detail=detail, how=Pass.DOCUMENTED_MISMATCH)


# A case is ill-conditioned in its compute dtype when rounding to that dtype alone (the
# reference run in it, each op rounded) moves some element by more than this fraction of the
# element's allowance: a correct Keras could then pass or fail by its summation order.
# Measured on the bundled cases: at most 0.18 (Keras 3.15.1 weights, CPU).
CONDITION_LIMIT = 0.5


def ill_conditioned(case: Case, expected: Outputs, emulated: Outputs, compute: str, tf32: bool = False) -> str | None:
    """Why no Keras computing in ``compute`` can be judged against the reference here, or None."""
    largest = float(np.finfo(layers.numpy_dtype(compute)).max)
    for key, value in expected.items():
        v = np.asarray(value, dtype=np.float64)
        if not np.isfinite(v).all():
            continue  # nothing to judge there either: non_finite_reference fails the case
        if v.size and float(np.abs(v).max()) > largest:
            return (f"ill-conditioned: the float64 reference reaches {float(np.abs(v).max()):.2g} in {key}, beyond "
                    f"{compute}'s largest {largest:.2g}, so Keras must overflow")
        m = np.asarray(emulated[key], dtype=np.float64)
        tol = resolve(case, key, tf32)
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            used = np.abs(m - v) / (tol.atol + tol.rtol * np.abs(v))
        used = np.nan_to_num(used, nan=0.0, posinf=np.inf)  # 0/0: equal values under a zero tolerance
        worst = float(np.max(np.where(np.isfinite(m), used, np.inf))) if used.size else 0.0
        if worst > CONDITION_LIMIT:
            return (f"ill-conditioned: rounding to {compute} alone moves the reference's {key} by {worst:.2g} times "
                    f"its allowance ({tol}), more than {CONDITION_LIMIT:g}: a correct Keras could pass or fail "
                    "by its summation order")
    return None


def non_finite_reference(expected: Outputs) -> list[Check]:
    """A float64 reference that holds inf or NaN proves nothing when Keras matches it: a failure."""
    bad = [str(k) for k, v in expected.items() if not np.isfinite(np.asarray(v, dtype=np.float64)).all()]
    if not bad:
        return []
    return [Check("reference finite", False, f"the float64 reference holds inf or NaN in {', '.join(bad)}: matching "
                                             "non-finite values proves nothing (inputs or weights too large?)")]


# Half precision: Keras's rounding noise against the float64 reference (rms over every output)
# must be that of a computation in the compute dtype (the reference run in that dtype, each op
# rounded).  Measured on the bundled half-precision cases that pass (Keras 3.15.1 on TF 2.21,
# JAX 0.10 and torch 2.13, CPU): ratios 0.86 to 1.40.  Planted wrong computations
# (tests/keras/test_precision.py): bfloat16 where float16 was due 11.4; float16 where bfloat16
# was due 0.45; float32 then cast to the compute dtype 0.39 to 0.58 (the final cast alone is
# about half of the noise a whole half-precision computation makes).
PRECISION_RATIO = (0.7, 3.0)
# The rms of fewer elements fluctuates too much for the lower bound (~1/sqrt(2N) each side):
# smaller outputs get no precision check.
PRECISION_MIN_ELEMENTS = 96


def _rms(a: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(a)))) if a.size else 0.0


def precision(case: Case, actual: Outputs, expected: Outputs, emulated: Outputs) -> list[Check]:
    """The rounding noise of Keras's half-precision outputs is that of its compute dtype."""
    compute = layers.DTYPES[case.dtype].compute
    documented = set(case.expect.mismatch.outputs) if case.expect.mismatch else set()
    seen, model = [], []
    for key, got in actual.items():
        if key in documented or key not in expected or np.shape(got) != np.shape(expected[key]):
            continue
        a, e, m = (np.asarray(v, dtype=np.float64).ravel() for v in (got, expected[key], emulated[key]))
        finite = np.isfinite(a) & np.isfinite(e) & np.isfinite(m)
        seen.append(a[finite] - e[finite])
        model.append(m[finite] - e[finite])
    seen_all = np.concatenate(seen) if seen else np.zeros(0)
    noise, keras_noise = _rms(np.concatenate(model) if model else np.zeros(0)), _rms(seen_all)
    if seen_all.size < PRECISION_MIN_ELEMENTS or noise == 0.0:
        return []
    lo, hi = PRECISION_RATIO
    ratio = keras_noise / noise
    detail = (f"rounding noise against the float64 reference is {ratio:.2f} times that of a {compute} "
              f"computation (rms {keras_noise:.2g} vs {noise:.2g} over {seen_all.size} elements; allowed "
              f"{lo:.2g} to {hi:g} times)")
    if ratio < lo:
        detail += f": Keras computed in a wider dtype than {compute} (a cast skipped?)"
    elif ratio > hi:
        detail += f": Keras computed in a narrower dtype than {compute}"
    return [Check("precision", lo <= ratio <= hi, detail)]


def dropout(case: Case, cfg: Mapping, x: np.ndarray, actual: Outputs, weights: Mapping,
            initial_state: list | None, ref: ModuleType, tf32: bool = False) -> list[Check]:
    """training: true with dropout: some single mask set per row must reproduce Keras (§9)."""
    tol = resolve(case, OutputKey("output"), tf32)
    fits = dropout_fit.fit_rows(cfg, x, weights, {k.name: v for k, v in actual.items()}, initial_state,
                                tol.atol, tol.rtol, ref)
    bits = layers.dropout_mask_bits(cfg, case.input.features)
    out = []
    for fit in fits:
        detail = (f"row {fit.row}: a single dropout mask set (of {2 ** bits}) reused at every step reproduces "
                  f"Keras within {tol}, max abs err {fit.error:.2g}, {fit.kept:.0%} of mask entries kept")
        if not fit.passed:
            detail = (f"row {fit.row}: no single dropout mask set (of {2 ** bits}, entries 0 or 1/(1-p), reused "
                      f"at every step) reproduces Keras; closest max abs err {fit.error:.3g} ({tol})")
        out.append(Check(f"dropout row {fit.row}", fit.passed, detail))
    dropped = any(f.kept < 1.0 for f in fits)
    out.append(Check("dropout applied", dropped, "some mask entries were dropped" if dropped else
                     "training: true, but every row matches the all-kept masks: Keras applied no dropout"))
    return out + dropout_stats.checks(fits, cfg)


def params(case: Case, cfg: Mapping, keras_params: int) -> list[Check]:
    """count_params() against the formula, and expect.params against both."""
    count, formula = layers.param_formula(cfg, case.input.features)
    out = [Check("params", keras_params == count, f"count_params() {keras_params} vs formula {formula} = {count}")]
    if case.expect.params is not None:
        out.append(Check("expect.params", case.expect.params == keras_params == count,
                         f"expect.params {case.expect.params}, count_params() {keras_params}, formula {count}"))
    return out


def golden(case: Case, actual: Outputs, recorded: Outputs, tf32: bool = False) -> list[Check]:
    """Keras's outputs here against the outputs a golden file recorded elsewhere."""
    out = []
    for key, want in recorded.items():
        got = actual.get(key)
        comp = compare(str(key), got if got is not None else np.zeros(0), want, resolve(case, key, tf32),
                       against="golden file")
        out.append(Check(f"{key} vs golden", comp.passed, problem(comp), comp))
    return out


def expected_values(case: Case, actual: Outputs, expected: Outputs, tf32: bool = False) -> list[Check]:
    """expect.values (numbers from an outside source): Keras and the reference must both match them."""
    out = []
    for key, values in case.expect.values.items():
        tol = resolve(case, key, tf32)
        for side, got in ((Side.KERAS, actual.get(key)), (Side.REFERENCE, expected.get(key))):
            if got is not None:  # Keras's side of a documented mismatch must still differ from the values
                comp = compare(str(key), got, values, tol, against="expected values")
                out.append(judged(case, f"{side} {key} vs expect.values", comp, key, side))
    return out


# ---------------------------------------------------------------- gradients

GRADIENT_AGAINST = "reference gradient"
# A documented mismatch's name for a case's gradient checks as a whole (known.yaml mismatch: all or
# [gradients]): they pass while at least one gradient still differs.
GRADIENTS = OutputKey("gradients")


def _named_leaves(tree: Mapping, prefix: str = "") -> list[tuple[str, np.ndarray]]:
    """(``forward.kernel``-style name, array) of a weight tree, in its order."""
    out = []
    for key, value in tree.items():
        name = f"{prefix}{key}"
        out += _named_leaves(value, name + ".") if isinstance(value, Mapping) else [(name, value)]
    return out


def gradients(case: Case, cfg: Mapping, keras_grads, reference_grads, call: int | None = None) -> list[Check]:
    """expect.gradients: Keras's dL/dx, dL/d(initial states) and dL/d(every weight, by name) against the
    NumPy backward pass, under the gradient tolerance row (one check each; ``call``: of a stateful run)."""
    tol = gradient_tolerance(case)
    where = f" (call {call})" if call is not None else ""
    pairs = [("input", keras_grads.inputs, reference_grads.inputs)]
    if keras_grads.initial_state is not None:
        names = layers.state_output_names(cfg)
        pairs += [(f"initial_state {n}", k, r)
                  for n, k, r in zip(names, keras_grads.initial_state, reference_grads.initial_state)]
    mine, theirs = dict(_named_leaves(keras_grads.weights)), dict(_named_leaves(reference_grads.weights))
    if set(mine) != set(theirs):
        return [Check(f"gradient{where}", False, f"Keras's weight gradients are {sorted(mine)}, "
                                                 f"the reference's {sorted(theirs)}")]
    pairs += [(name, mine[name], theirs[name]) for name in theirs]
    out = []
    for what, got, want in pairs:
        name = f"gradient {what}{where}"
        comp = compare(name, got, want, tol, GRADIENT_AGAINST)
        out.append(Check(name, comp.passed, problem(comp), comp))
    if case.expect.mismatch is None or GRADIENTS not in case.expect.mismatch.outputs:
        return out
    differing = [c for c in out if not c.passed]
    seen = Check(f"gradients{where}", not differing, differing[0].detail if differing else "every gradient agrees",
                 differing[0].comparison if differing else None)
    return [documented_or_agreed(case, GRADIENTS, seen, f"Keras's gradients now agree with the {GRADIENT_AGAINST}")]


# ---------------------------------------------------------------- model cases

def model_params(case: Case, layer_params: list[int], params: int) -> list[Check]:
    """Each layer's count_params() against its formula, the total against model.count_params()."""
    shape = model_layers.input_shape(case.model, case.input.timesteps, case.input.features)
    out, formulas = [], []
    for i, (spec, got) in enumerate(zip(case.model, layer_params)):
        count, formula = model_layers.param_formula(spec, shape)
        formulas.append(count)
        out.append(Check(f"model[{i}] params", got == count,
                         f"model[{i}] {spec['class']}: count_params() {got} vs formula {formula} = {count}"))
        shape = model_layers.output_shape(spec, shape)
    total = sum(formulas)
    summed = " + ".join(map(str, formulas))
    out.append(Check("params", params == total == sum(layer_params),
                     f"model.count_params() {params} vs the layers' formulas {summed} = {total}"))
    exp = case.expect
    if exp.params is not None:
        out.append(Check("expect.params", exp.params == params == total,
                         f"expect.params {exp.params}, model.count_params() {params}, formula {total}"))
    if exp.layer_params is not None:
        out.append(Check("expect.layer_params", list(exp.layer_params) == list(layer_params) == formulas,
                         f"expect.layer_params {list(exp.layer_params)}, count_params() {list(layer_params)}, "
                         f"formulas {formulas}"))
    return out


def output_shape(case: Case, keras_shape: tuple[int, ...], reference_shape: tuple[int, ...]) -> list[Check]:
    """expect.output_shape of a model case, against Keras and the reference."""
    want = case.expect.output_shape
    if want is None:
        return []
    return [Check("expect.output_shape", tuple(want) == tuple(keras_shape) == tuple(reference_shape),
                  f"expect.output_shape {list(want)}, Keras {list(keras_shape)}, reference {list(reference_shape)}")]


def model_outputs(case: Case, actual: Outputs, expected: Outputs) -> list[Check]:
    """The final output and every layer's output of a model case against the reference."""
    return [judged(case, str(key), compare(str(key), got, expected[key], resolve(case, key), "reference", case.dtype),
                   key) for key, got in actual.items()]
