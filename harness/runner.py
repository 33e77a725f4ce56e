"""Run one case: data, the Keras side, the reference, the checks -> ``CaseResult``.

The CLI, golden verify and the pytest plugin all call ``run_case``, so they can never disagree.
Whatever a Keras call raises arrives as ``KerasRaised`` (keras_layer.keras_call) and is the
case's verdict; any other exception is a harness bug: an error verdict with its traceback that
no expectation can turn into a pass.
"""
from __future__ import annotations

import dataclasses
import time
import traceback
from types import ModuleType
from typing import NamedTuple

import numpy as np
from packaging.specifiers import SpecifierSet

from . import checks, data, flavours, golden, keras_cell, keras_grad, keras_layer, keras_model, layers, session
from . import tolerances
from . import keras_api as api
from .case import Case, OutputKey
from .compare import Issue
from .diagnosis import findings
from .errors import GoldenError, KerasRaised, NoGPU, Unsupported
from .reference import backward, recurrent, sequential
from .result import CaseResult, Check, Side, Verdict


class RunOptions(NamedTuple):
    """How cases run here (settings of the run, not of the case)."""

    tf32: bool = False  # TF32 matmuls allowed on the GPU (off by default: it alone moves float32 by ~1e-3)
    require_gpu: bool = False  # a gpu case with no GPU fails instead of being skipped
    keep: bool = False  # keep the arrays and the Keras run in the result (what golden files record)


DEFAULTS = RunOptions()
HALF = ("float16", "bfloat16")  # compute dtypes whose rounding noise checks.precision judges


def requirement_unmet(case: Case) -> str | None:
    """Why this process cannot run the case (requires: keras, backend, device), or None."""
    req = case.requires
    if not req:
        return None
    v = session.versions()
    major = int(v["keras"].split(".")[0])
    wanted = req.get("keras")
    if isinstance(wanted, str) and not SpecifierSet(wanted).contains(v["keras"], prereleases=True):
        return f"requires Keras {wanted}, this is Keras {v['keras']} ({v.get('flavour', v['backend'])})"
    if isinstance(wanted, int) and wanted != major:
        how = "--keras tf_keras" if wanted == 2 else "--keras tensorflow|jax|torch"
        return f"requires Keras {wanted} ({how}), this is Keras {v['keras']} ({v.get('flavour', v['backend'])})"
    if "backend" in req and v["backend"] not in req["backend"]:
        return f"requires backend {', '.join(req['backend'])}, this is {v['backend']}"
    if "device" in req and req["device"] != case.device:
        return f"requires the {req['device']} device, this case runs on {case.device}"
    return None


def run_case(case: Case, options: RunOptions = DEFAULTS, *, ref: ModuleType = recurrent,
             keras_cache: dict | None = None, arrays: data.Arrays | None = None,
             backward: ModuleType = backward) -> CaseResult:
    """Build, run and compare one case.  Never raises: Keras's problems and the harness's are verdicts.

    ``ref`` is the recurrent reference and ``backward`` its backward pass (the sensitivity tests pass
    planted-bug copies);
    ``keras_cache`` (case id -> KerasRun, ModelRun or KerasRaised) lets them run Keras once per
    case; ``arrays`` replaces the seeded data (golden files).
    """
    start = time.perf_counter()
    try:
        reason = requirement_unmet(case)
        if reason:
            raise Unsupported(reason)
        if case.known:  # what the case expects here, on this flavour and Keras release
            v = session.versions()
            here = case.here(v["flavour"], v["keras"])
            if isinstance(here, str):
                raise Unsupported(f"known: {here}")
            case = here
        if case.model is not None:
            result = _run_model(case, options, ref, keras_cache, arrays)
        else:
            result = _run_layer(case, options, ref, keras_cache, arrays, backward)
    except NoGPU as exc:
        if options.require_gpu:
            message = f"{exc} (--require-gpu)"
            result = CaseResult(case, Verdict.FAIL, (Check("device", False, message),), message)
        else:
            result = CaseResult(case, Verdict.SKIP, message=str(exc))
    except Unsupported as exc:
        result = CaseResult(case, Verdict.SKIP, message=str(exc))
    except GoldenError as exc:  # an unreadable or foreign golden file: this case errors, the run goes on
        result = CaseResult(case, Verdict.ERROR, message=str(exc))
    except Exception as exc:  # noqa: BLE001 - a bug in the harness, never Keras's: shown with its traceback
        message = f"harness bug: {type(exc).__name__}: {exc}\n{traceback.format_exc()}"
        result = CaseResult(case, Verdict.ERROR, message=message)
    return dataclasses.replace(result, seconds=time.perf_counter() - start)


def _keras(case: Case, keras_cache: dict | None, call):
    """The Keras run (or what Keras raised), from the cache when there; timed."""
    t0 = time.perf_counter()
    run = keras_cache.get(case.id) if keras_cache is not None else None
    if run is None:
        try:
            run = call()
        except KerasRaised as raised:
            run = raised
        if keras_cache is not None:
            keras_cache[case.id] = run
    return run, time.perf_counter() - t0


def _verdict(case: Case, found: list[Check], **fields) -> CaseResult:
    failures = [c for c in found if not c.passed]
    if failures:
        return CaseResult(case, Verdict.FAIL, tuple(found), failures[0].detail, **fields)
    return CaseResult(case, Verdict.PASS, tuple(found), **fields)


def _raised(case: Case, raised: KerasRaised, keras_seconds: float, what: str = "") -> CaseResult:
    """A Keras call raised: the expected error passes, another fails it, none expected is an error."""
    found = checks.expected_error(case, raised)
    if found:
        return _verdict(case, found, keras_seconds=keras_seconds)
    message = f"Keras raised {raised}" + what
    return CaseResult(case, Verdict.ERROR, (Check("error", False, message),), message, keras_seconds=keras_seconds)


def reference_outputs(case: Case, ref: ModuleType, cfg: dict, inputs, mask, init, weights,
                      dtype: str | None = None) -> dict[OutputKey, object]:
    """The reference's outputs of every call, keyed like Keras's (reset_state() zeroes the state, §7);
    ``dtype``: computed in that compute dtype instead of float64."""
    if not case.calls:
        return {OutputKey(k): v for k, v in ref.run(cfg, inputs[0], weights, mask, init, dtype=dtype).items()}
    outputs, states = {}, init
    for call, x in enumerate(inputs, start=1):
        if call in case.calls.reset_before:
            states = None
        result, states = ref.forward(cfg, x, weights, mask, states, dtype=dtype)
        outputs.update({OutputKey(k, call): v for k, v in result.items()})
    return outputs


def _run_layer(case: Case, options: RunOptions, ref: ModuleType, keras_cache: dict | None,
               arrays: data.Arrays | None, grad_ref: ModuleType = backward) -> CaseResult:
    if arrays is None and case.expect.golden:
        arrays = golden.case_arrays(case)
    arrays = arrays or data.make_arrays(case)
    run, keras_seconds = _keras(case, keras_cache, lambda: keras_layer.run(
        case, arrays.inputs, arrays.mask, arrays.initial_state, arrays.weights, options.tf32))
    if isinstance(run, KerasRaised):
        return _raised(case, run, keras_seconds)
    kept = {"arrays": arrays, "keras_run": dataclasses.replace(run, layer=None)} if options.keep else {}
    fields = dict(keras_seconds=keras_seconds, device=run.device, kernel=run.kernel, versions=run.versions, **kept)
    if case.expect.error:
        return _verdict(case, checks.expected_error(case, None), **fields)

    found = checks.device(case, run.device) + checks.kernel(case, run)
    if run.problem:
        found.append(Check("outputs", False, run.problem))
    else:
        found += checks.symbolic(case, run.outputs, run.symbolic, run.symbolic_problem, run.symbolic_batch)
    compute = layers.DTYPES[case.dtype].compute
    cfg = flavours.reference_cfg(api.with_defaults(case.layer), session.flavour())
    t0 = time.perf_counter()
    fed = [data.round_to(x, compute) for x in arrays.inputs]
    fed_init = [data.round_to(s, compute) for s in arrays.initial_state] if arrays.initial_state is not None else None
    expected = reference_outputs(case, ref, cfg, fed, arrays.mask, fed_init, run.weights)
    emulated = reference_outputs(case, ref, cfg, fed, arrays.mask, fed_init, run.weights, compute) \
        if compute != "float64" else expected
    found += checks.non_finite_reference(expected)
    refused = checks.ill_conditioned(case, expected, emulated, compute, options.tf32)
    if refused and all(c.passed for c in found):  # a failure found already stands
        return CaseResult(case, Verdict.SKIP, message=refused, **fields)
    if case.training and layers.dropout_bits(cfg, case.input.features):
        found += checks.dropout(case, cfg, fed[0], run.outputs, run.weights, fed_init, ref, options.tf32)
    else:
        found += checks.outputs(case, run.outputs, expected, compute, options.tf32)
        if compute in HALF:
            found += checks.precision(case, run.outputs, expected, emulated)
    reference_seconds = time.perf_counter() - t0
    if case.expect.gradients and not run.problem:
        try:
            found += _gradient_checks(case, cfg, fed, arrays.mask, fed_init, run, grad_ref)
        except KerasRaised as raised:
            return _raised(case, raised, keras_seconds, " (computing the gradients)")
    found += checks.params(case, cfg, run.params)
    found += checks.golden(case, run.outputs, arrays.golden_outputs or {}, options.tf32)
    found += checks.expected_values(case, run.outputs, expected, options.tf32)
    result = _verdict(case, found, reference_seconds=reference_seconds, **fields)
    # The diagnosis runs the real reference: a planted-bug copy (the sensitivity hunt) is not diagnosed.
    if ref is recurrent and grad_ref is backward and _diagnosable(result):
        result = _diagnosed(result, cfg, fed, fed_init, arrays.mask, run, expected, options)
    return result


def _gradient_checks(case: Case, cfg: dict, fed: list, mask, fed_init, run, grad_ref: ModuleType) -> list[Check]:
    """expect.gradients, call by call: Keras's autodiff (keras_grad) against the NumPy backward pass
    (reference/backward.py) for the seeded projection of every output.  A stateful call's incoming
    state is the reference's carried state, given to both sides as that call's initial state (the
    layer's own state zeroed first: tf_keras's base_rnn.py _process_inputs takes a stateful layer's
    recorded state instead of the given one when the recorded one is not all zeros)."""
    names = layers.output_names(cfg)
    found, states = [], fed_init
    for call, x in enumerate(fed, start=1):
        if case.calls and call in case.calls.reset_before:
            states = None
        if case.calls and states is None:  # explicit zeros: the layer's own state is where the last call left it
            states = [np.zeros((x.shape[0], u)) for u in layers.state_units(cfg)]
        upstream = data.gradient_upstream(case, layers.output_shapes(cfg, x.shape[0], x.shape[1]), call)
        with keras_layer.keras_call(f"computing the gradients (call {call})" if case.calls else
                                    "computing the gradients"):
            if case.calls:  # tf_keras uses a stateful layer's own non-zero state over the one given
                keras_layer.reset_states(run.layer)
            got = keras_grad.gradients(run.layer, x, [upstream[n] for n in names], mask, states)
        want = grad_ref.gradients(cfg, x, run.weights, upstream, mask, states)
        found += checks.gradients(case, cfg, got, want, call if case.calls else None)
        if case.calls:
            states = recurrent.forward(cfg, x, run.weights, mask, states)[1]
    return found


def _diagnosable(result: CaseResult) -> bool:
    """A failed case whose outputs Keras returned in the reference's shapes but with other values."""
    if result.verdict != Verdict.FAIL or result.case.training:
        return False
    comps = [c.comparison for c in result.failures if c.comparison is not None and c.side == Side.KERAS
             and c.comparison.against == "reference"]
    return any(c.issue == Issue.VALUES for c in comps) and all(c.issue in (Issue.VALUES, Issue.NONE) for c in comps)


def _diagnosed(result: CaseResult, cfg: dict, fed: list, fed_init, mask, run, expected, options: RunOptions):
    """The result with its Findings: error by timestep, first divergence (Keras's own cell driven on
    the reference's states) and the layout hypotheses (harness/diagnosis/findings.py)."""
    case = result.case
    try:
        cell = keras_cell.cell_steps(run.layer, cfg) if run.layer is not None else None
        found = findings.diagnose(cfg, fed, run.weights, run.outputs, expected,
                                  lambda key: tolerances.resolve(case, key, options.tf32), mask=mask,
                                  initial_state=fed_init, cell_step=cell,
                                  reset_before=case.calls.reset_before if case.calls else ())
    except Exception as exc:  # noqa: BLE001 - the verdict stands; the diagnosis's own bug is shown beside it
        return dataclasses.replace(result, diagnosis_problem=f"harness bug in the diagnosis: {type(exc).__name__}: "
                                                             f"{exc}\n{traceback.format_exc()}")
    return dataclasses.replace(result, findings=found)


def _run_model(case: Case, options: RunOptions, ref: ModuleType, keras_cache: dict | None,
               arrays: data.Arrays | None) -> CaseResult:
    x = (arrays or data.make_arrays(case)).inputs[0]
    run, keras_seconds = _keras(case, keras_cache, lambda: keras_model.run(case, x, options.tf32))
    if isinstance(run, KerasRaised):
        return _raised(case, run, keras_seconds, f"\n  model: {api.describe_model(case.model)}")
    fields = dict(keras_seconds=keras_seconds, device=run.device, versions=run.versions)
    found = checks.device(case, run.device)
    t0 = time.perf_counter()
    fed = x if case.model[0]["class"] == "Embedding" else data.round_to(x, case.dtype)
    per_layer = sequential.run_model(case.model, fed, run.weights, session.flavour(), ref)
    reference_seconds = time.perf_counter() - t0
    actual = {OutputKey("output"): run.output,
              **{OutputKey(f"model[{i}]"): y for i, y in enumerate(run.layer_outputs)}}
    expected = {OutputKey("output"): per_layer[-1],
                **{OutputKey(f"model[{i}]"): y for i, y in enumerate(per_layer)}}
    found += checks.model_outputs(case, actual, expected)
    found += checks.model_params(case, run.layer_params, run.params)
    found += checks.output_shape(case, run.output.shape, per_layer[-1].shape)
    found += checks.expected_values(case, actual, expected)
    return _verdict(case, found, reference_seconds=reference_seconds, **fields)


class GoldenJob(NamedTuple):
    """One recorded case of a golden file to rerun: the case, its recorded arrays, and the command
    that reruns just it."""

    case: Case
    arrays: data.Arrays
    reproduce: str


def golden_jobs(path: str, case_id: str | None = None, device: str | None = None,
                keras: str | None = None) -> list[GoldenJob]:
    """The cases recorded in a golden file (or one: ``case_id``), on ``device`` instead of the
    recorded one where given (golden.load checks the whole file first)."""
    return [GoldenJob(case, arrays, golden.reproduce(path, case.point_id if device else case.id, keras, device))
            for case, arrays, _ in golden.load(path, case_id, device)]


def run_golden(job: GoldenJob, options: RunOptions = DEFAULTS, runner=None) -> CaseResult:
    """Rerun one recorded case on its recorded inputs and weights, here (``runner``: run_case)."""
    result = (runner or run_case)(job.case, options, arrays=job.arrays)
    return dataclasses.replace(result, reproduce=job.reproduce)
