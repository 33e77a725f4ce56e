"""Run one case: Keras side, reference side, comparisons -> CaseResult.  The CLI and the
pytest plugin both call ``run_case`` so they can never disagree."""
from __future__ import annotations

import re
import time
import traceback
from dataclasses import dataclass, field
from types import ModuleType

import numpy as np

from . import data, dropout
from . import keras_api as api
from . import reference as default_reference
from .case import Case
from .compare import Comparison, compare
from .errors import Unsupported
from .tolerances import resolve

COMPUTE_DTYPE = {"float32": "float32", "float64": "float64", "float16": "float16",
                 "bfloat16": "bfloat16", "mixed_float16": "float16", "mixed_bfloat16": "bfloat16"}


@dataclass
class Check:
    """One thing that was checked for a case: an output, a parameter count, an expectation."""

    name: str
    passed: bool
    detail: str
    comparison: Comparison | None = None


@dataclass
class CaseResult:
    """The verdict for one case (pass, fail, error, skip), with every check behind it."""

    case: Case
    verdict: str
    checks: list[Check] = field(default_factory=list)
    message: str = ""
    seconds: float = 0.0
    keras_seconds: float = 0.0
    reference_seconds: float = 0.0
    device: str = ""
    kernel: str = ""  # cudnn | fused | generic (harness/kernels.py); "" when Keras did not run
    versions: dict = field(default_factory=dict)
    arrays: Arrays | None = None  # kept only when run_case(keep=True): what golden files record
    keras_run: object = None

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    @property
    def worst(self) -> Comparison | None:
        """The value comparison closest to (or furthest over) its tolerance."""
        comps = [c.comparison for c in self.checks if c.comparison is not None and c.comparison.tolerance]
        return max(comps, key=lambda c: c.ratio, default=None)


@dataclass
class Arrays:
    """The concrete data of one run.  Made from the case's seed, or read from a golden file."""

    inputs: list[np.ndarray]  # one (batch, timesteps, features) float64 array per call
    mask: np.ndarray | None = None
    initial_state: list[np.ndarray] | None = None
    weights: dict | None = None  # put in with set_weights(); None keeps Keras's initial values
    golden_outputs: dict | None = None  # Keras outputs recorded elsewhere, compared too


def make_arrays(case: Case, ref: ModuleType = default_reference) -> Arrays:
    """Inputs, mask, initial states and weights a case asks for, from its seed."""
    cfg = api.with_defaults(case.layer)
    inputs = data.make_inputs(case)
    mask = data.make_mask(case)
    if mask is not None and case.mask.via == "masking_layer":
        # Masking(mask_value=0) derives the mask from all-zero steps, so zero exactly those.
        inputs = [np.where(mask[..., None], x, 0.0) for x in inputs]
    return Arrays(inputs, mask, data.make_initial_state(case, default_reference.state_units(cfg)),
                  data.make_weights(case, ref.weight_shapes(cfg, case.input.features)))


def _golden_arrays(case: Case) -> Arrays | None:
    """expect.golden: the recorded inputs, weights and outputs of this case (by id, device first)."""
    from . import golden  # noqa: PLC0415

    path, _, wanted = case.expect.golden.partition("::")
    for recorded, arrays, _ in golden.load(path):
        if recorded.id == (wanted or case.id):
            return arrays
    return None


def round_to(array: np.ndarray, dtype: str) -> np.ndarray:
    """The values Keras really computes with, as float64 (inputs and states are cast)."""
    if dtype == "bfloat16":
        import ml_dtypes  # noqa: PLC0415 - numpy-only, ships with Keras

        return np.asarray(array).astype(ml_dtypes.bfloat16).astype(np.float64)
    return np.asarray(array).astype(dtype).astype(np.float64)


def _requirement_unmet(case: Case) -> str | None:
    req = case.requires
    if not req:
        return None
    from . import keras_build  # noqa: PLC0415

    v = keras_build.versions()
    major = int(v["keras"].split(".")[0])
    if "keras" in req and req["keras"] != major:
        how = "--keras tf_keras" if req["keras"] == 2 else "--keras tensorflow|jax|torch"
        return f"requires Keras {req['keras']} ({how}), this is Keras {v['keras']} ({v.get('flavour', v['backend'])})"
    if "backend" in req and v["backend"] not in req["backend"]:
        return f"requires backend {', '.join(req['backend'])}, this is {v['backend']}"
    if "device" in req and req["device"] != case.device:
        return f"requires the {req['device']} device, this case runs on {case.device}"
    return None


def _error_matches(exc: BaseException, spec) -> bool:
    names = {cls.__name__ for cls in type(exc).__mro__}
    return spec.type in names and re.search(spec.match, str(exc)) is not None


def _reference_cfg(case: Case) -> dict:
    """The layer config as the reference reads it in this process's Keras flavour (hard_sigmoid)."""
    from . import flavours, keras_build  # noqa: PLC0415

    return flavours.reference_cfg(api.with_defaults(case.layer), keras_build.flavour())


def _reference_outputs(case: Case, ref: ModuleType, inputs, mask, init, weights) -> dict:
    cfg = _reference_cfg(case)
    if not case.calls:
        return ref.run(cfg, inputs[0], weights, mask, init)
    outputs, states = {}, init
    for index, x in enumerate(inputs, start=1):
        if index in case.calls.reset_before:
            states = None  # reset_state() zeroes the stored state (§7)
        result, states = ref.forward(cfg, x, weights, mask, states)
        outputs.update({f"call{index}.{k}": v for k, v in result.items()})
    return outputs


def run_case(case: Case, ref: ModuleType = default_reference, keras_cache: dict | None = None,
             arrays: Arrays | None = None, keep: bool = False, require_gpu: bool = False) -> CaseResult:
    """Build, run and compare one case.  Never raises for a Keras problem: that is a verdict.

    ``ref`` is the reference module (the sensitivity tests pass planted-bug copies);
    ``keras_cache`` (case id -> Keras run or exception) lets them run Keras once per case;
    ``arrays`` replaces the seeded data (golden files); ``keep`` keeps arrays and the Keras run;
    ``require_gpu`` fails a gpu case that would be skipped for want of a GPU (--require-gpu).
    """
    from .kernels import NoGPU  # noqa: PLC0415

    start = time.perf_counter()
    result = CaseResult(case, "pass")
    try:
        if case.model is not None:  # a whole Sequential (harness/models.py); golden files hold layer cases only
            from . import models  # noqa: PLC0415

            models.run_into(case, ref, result, keras_cache)
        else:
            _run(case, ref, result, keras_cache, arrays, keep)
    except NoGPU as exc:
        result.verdict, result.message = ("fail", f"{exc} (--require-gpu)") if require_gpu else ("skip", str(exc))
        if require_gpu:
            result.checks.append(Check("device", False, result.message))
    except Unsupported as exc:
        result.verdict, result.message = "skip", str(exc)
    result.seconds = time.perf_counter() - start
    return result


def _run(case: Case, ref: ModuleType, result: CaseResult, keras_cache: dict | None,
         arrays: Arrays | None, keep: bool) -> None:
    reason = _requirement_unmet(case)
    if reason:
        raise Unsupported(reason)
    from . import keras_build  # noqa: PLC0415 - TensorFlow only when a case runs

    cfg = _reference_cfg(case)
    features = case.input.features
    compute = COMPUTE_DTYPE[case.dtype]
    if arrays is None and case.expect.golden:
        from .golden import GoldenError  # noqa: PLC0415

        path, _, wanted = case.expect.golden.partition("::")
        try:
            arrays = _golden_arrays(case)
        except GoldenError as exc:  # unreadable or foreign file: this case errors, the run goes on
            result.verdict, result.message = "error", str(exc)
            return
        if arrays is None:
            result.verdict = "error"
            result.message = f"{path}: no case '{wanted or case.id}' recorded in this golden file"
            return
    arrays = arrays or make_arrays(case, ref)
    inputs, mask, init, given = arrays.inputs, arrays.mask, arrays.initial_state, arrays.weights

    t0 = time.perf_counter()
    try:
        run = keras_cache.get(case.id) if keras_cache is not None else None
        if run is None:
            try:
                run = keras_build.run(case, inputs, mask, init, given)
            except Exception as exc:  # noqa: BLE001
                run = exc
            if keras_cache is not None:
                keras_cache[case.id] = run
        if isinstance(run, BaseException):
            raise run
    except Unsupported:
        raise
    except Exception as exc:  # noqa: BLE001 - a Keras exception is the case's verdict
        result.keras_seconds = time.perf_counter() - t0
        text = f"{type(exc).__name__}: {exc}".strip()
        if case.expect.error and _error_matches(exc, case.expect.error):
            result.checks.append(Check("error", True, f"Keras raised as expected: {text[:300]}"))
            return
        result.verdict = "fail" if case.expect.error else "error"
        want = f" (expected {case.expect.error.type} matching {case.expect.error.match!r})" if case.expect.error else ""
        result.message = f"Keras raised {text}{want}"
        result.checks.append(Check("error", False, result.message))
        return
    result.keras_seconds = time.perf_counter() - t0
    result.device, result.versions, result.kernel = run.device, run.versions, run.kernel
    if keep:
        result.arrays, result.keras_run = arrays, run
    if case.expect.error:
        result.verdict = "fail"
        result.message = (f"expected Keras to raise {case.expect.error.type} matching "
                          f"{case.expect.error.match!r}, but it returned normally")
        result.checks.append(Check("error", False, result.message))
        return
    if case.device == "gpu" and run.device != "gpu":
        result.checks.append(Check("device", False, "gpu case, but the output tensors are on the CPU"))
    if case.device == "cpu" and run.device != "cpu":
        result.checks.append(Check("device", False, f"cpu case, but the output tensors are on {run.device}"))
    _check_kernel(case, run, result)

    t0 = time.perf_counter()
    try:
        fed = [round_to(x, compute) for x in inputs]
        fed_init = [round_to(s, compute) for s in init] if init is not None else None
        expected = _reference_outputs(case, ref, fed, mask, fed_init, run.weights)
    except Exception:  # noqa: BLE001 - a harness bug, reported with its traceback
        result.verdict = "error"
        result.message = "the reference raised:\n" + traceback.format_exc()
        return
    result.reference_seconds = time.perf_counter() - t0

    if case.training and dropout.mask_bits(cfg, features):
        _check_dropout(case, cfg, fed[0], run, fed_init, result)
    else:
        _check_outputs(case, run.outputs, expected, compute, result)
    _check_params(case, cfg, run.params, ref, result)
    for name, recorded in (arrays.golden_outputs or {}).items():
        got = run.outputs.get(name)
        comp = compare(name, got if got is not None else np.zeros(0), recorded, resolve(case, name),
                       against="golden file")
        result.checks.append(Check(f"{name} vs golden", comp.passed, comp.problem, comp))
    for name, values in case.expect.values.items():
        tol = resolve(case, name)
        for side, got in (("keras", run.outputs.get(name)), ("reference", expected.get(name))):
            if got is not None:
                comp = compare(name, got, values, tol, against="expected values")
                result.checks.append(Check(f"{side} {name} vs expect.values", comp.passed, comp.problem, comp))
    if result.failures:
        result.verdict = "fail"
        result.message = result.failures[0].detail


def _ran_cudnn(kernel: str) -> bool:
    return "cudnn" in kernel.split("+")


def _check_kernel(case: Case, run, result: CaseResult) -> None:
    """The kernel that ran: as harness/kernels.py predicts from Keras's rules, and as the case expects."""
    predicted = getattr(run, "predicted", None)
    observed = getattr(run, "observed", None)
    if predicted is not None and observed is not None and observed != predicted.kernel:
        result.checks.append(Check("kernel", False, f"Keras ran the {observed} kernel, but harness/kernels.py "
                                                    f"predicted {predicted.kernel} ({predicted.reason})"))
    if case.device == "cpu" and observed is not None and _ran_cudnn(observed):
        # Keras 3 TF and JAX pick cuDNN when a GPU exists at all, whatever the device scope (§11).
        result.checks.append(Check("kernel", False, "cpu case, but the cuDNN kernel ran (a GPU is visible to this "
                                                    "process): run cpu cases with CUDA_VISIBLE_DEVICES=-1 or "
                                                    "use_cudnn: false"))
    if case.expect.kernel is not None:
        why = f" ({predicted.reason})" if predicted is not None else ""
        ok = run.kernel == case.expect.kernel
        result.checks.append(Check("expect.kernel", ok, f"expect.kernel {case.expect.kernel}, ran {run.kernel}{why}"))


def _check_outputs(case: Case, actual: dict, expected: dict, compute: str, result: CaseResult) -> None:
    if list(actual) != list(expected):
        result.checks.append(Check("outputs", False, f"Keras returned {list(actual)}, the reference {list(expected)}"))
        return
    documented = set(case.expect.mismatch.outputs) if case.expect.mismatch else set()
    for name in actual:
        comp = compare(name, actual[name], expected[name], resolve(case, name), "reference", compute)
        if name in documented:
            ok = not comp.passed
            detail = (f"documented mismatch seen: {comp.problem}" if ok else
                      f"documented mismatch did not happen (Keras now agrees with the reference): "
                      f"{case.expect.mismatch.reason}")
            result.checks.append(Check(name, ok, detail, comp))
        else:
            result.checks.append(Check(name, comp.passed, comp.problem, comp))


def _check_dropout(case: Case, cfg: dict, x: np.ndarray, run, init, result: CaseResult) -> None:
    """training: true with dropout: some single mask set per row must reproduce Keras (§9)."""
    tol = resolve(case, "output")
    fits = dropout.fit_rows(cfg, x, run.weights, run.outputs, init, tol.atol, tol.rtol)
    bits = dropout.mask_bits(cfg, case.input.features)
    for fit in fits:
        detail = (f"row {fit.row}: a single dropout mask set (of {2 ** bits}) reused at every step reproduces "
                  f"Keras within {tol}, max abs err {fit.error:.2g}, {fit.kept:.0%} of mask entries kept")
        if not fit.passed:
            detail = (f"row {fit.row}: no single dropout mask set (of {2 ** bits}, entries 0 or 1/(1-p), reused "
                      f"at every step) reproduces Keras; closest max abs err {fit.error:.3g} ({tol})")
        result.checks.append(Check(f"dropout row {fit.row}", fit.passed, detail))
    dropped = any(f.kept < 1.0 for f in fits)
    result.checks.append(Check("dropout applied", dropped,
                               "some mask entries were dropped" if dropped else
                               "training: true, but every row matches the all-kept masks: Keras applied no dropout"))


def _check_params(case: Case, cfg: dict, keras_params: int, ref: ModuleType, result: CaseResult) -> None:
    formula_params, formula = ref.param_formula(cfg, case.input.features)
    ok = keras_params == formula_params
    result.checks.append(Check("params", ok, f"count_params() {keras_params} vs formula {formula} = {formula_params}"))
    if case.expect.params is not None:
        ok = case.expect.params == keras_params == formula_params
        result.checks.append(Check("expect.params", ok,
                                   f"expect.params {case.expect.params}, count_params() {keras_params}, "
                                   f"formula {formula_params}"))
