"""The Keras side of a layer case: build the real layer, put weights in, call it, read it back.

Only the Keras calls themselves are wrapped (``keras_call``): whatever they raise comes out as
``KerasRaised``, which alone can satisfy ``expect.error``.  Anything else that goes wrong here is
a harness bug and reaches the runner as such.  Session set-up, tensors and devices are
session.py's; the kernel watch is kernel_watch.py's.
"""
from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import kernel_watch, kernels, keras_modes, layers, modes, session
from . import keras_api as api
from .case import Case, ErrorSpec, OutputKey
from .errors import HarnessError, KerasRaised, Unsupported
from .modes import Mode

# Default bias values: random, so a dropped or misplaced bias cannot hide behind zeros.
BIAS_RANGE = (-0.5, 0.5)


@contextlib.contextmanager
def keras_call(during: str) -> Iterator[None]:
    """Around a call into Keras: its exception becomes KerasRaised (the harness's own pass through)."""
    try:
        yield
    except HarnessError:
        raise
    except Exception as exc:  # whatever Keras raises is the case's verdict
        raise KerasRaised(exc, during) from exc


@dataclass(frozen=True)
class KerasRun:
    """What the real layer did: outputs by key, weights by name, counts, where and how it ran."""

    outputs: dict[OutputKey, np.ndarray]
    weights: dict
    params: int
    device: str = "cpu"
    kernel: str = kernels.GENERIC  # the observed kernel when it could be watched, else the predicted one
    versions: dict[str, str] = field(default_factory=dict)
    predicted: kernels.Decision | None = None  # what kernels.py says Keras's rules choose
    observed: str | None = None  # what the watched backend functions did (None: not watchable)
    tf32: bool = False
    problem: str = ""  # Keras returned a structure other than the one its outputs are named by
    # The output shapes Keras computes without running the layer, for an input of unknown batch
    # (None: not computed); symbolic_problem: what Keras raised computing them.
    symbolic: tuple[tuple[int | None, ...], ...] | None = None
    symbolic_problem: str = ""
    symbolic_batch: int | None = None  # the batch those shapes were computed for (a stateful graph's)
    # The built layer, for the diagnosis of a failing case (its cell driven step by step); never kept in
    # a CaseResult (runner.py drops it), so results stay plain data across worker processes.
    layer: Any = field(default=None, compare=False, repr=False)


def reset_states(layer) -> None:
    """Zero a stateful layer's states: Keras 3 reset_state() (alias reset_states); tf_keras reset_states() only (§7)."""
    (getattr(layer, "reset_state", None) or layer.reset_states)()


def _initializer(keras, value: Any):
    if isinstance(value, str):
        return keras.initializers.get(api.INITIALIZER_NAMES.get(value, value))
    config = {k: v for k, v in value.items() if k != "class"}
    cls = api.INITIALIZER_NAMES.get(value["class"], value["class"])
    return getattr(keras.initializers, cls)(**config)


def _keras2_kwargs(keras, kwargs: dict) -> dict:
    """Constructor arguments for tf_keras: skip (with the reason) what Keras 2 does not have."""
    use_cudnn = kwargs.pop("use_cudnn", "auto")
    if use_cudnn != "auto":
        raise Unsupported(f"use_cudnn={use_cudnn} is a Keras 3 argument; tf_keras picks its kernel itself")
    if kwargs.get("seed") is not None:
        raise Unsupported("seed= is a Keras 3 argument; tf_keras layers have none")
    kwargs.pop("seed", None)
    for key in ("activation", "recurrent_activation"):
        name = kwargs.get(key)
        if isinstance(name, str):
            try:
                keras.activations.get(name)
            except ValueError:
                raise Unsupported(f"activation {name!r} does not exist in tf_keras {keras.__version__}") from None
    return kwargs


# What Keras says when the installed release lacks an argument or an activation a case sets
# (Keras 3.0 has no GRU(implementation=...) nor use_cudnn; hard_tanh came later): the case then
# skips with Keras's own words, decided by the installed Keras and not by a table per release.
MISSING_FEATURE = re.compile(r"Unrecognized keyword arguments passed to \w+|Could not interpret activation "
                             r"function identifier")


def _construct(keras, cls: str, kwargs: dict, expected: ErrorSpec | None = None):
    """The layer; where Keras lacks what the case sets, a skip, unless that very error is the one
    the case ``expected`` (then it stays the verdict).  A case that expects another error cannot
    see it on a Keras without the feature, so it skips too."""
    try:
        with keras_call("building the layer"):
            return getattr(keras.layers, cls)(**kwargs)
    except KerasRaised as raised:
        missing = isinstance(raised.original, ValueError) and MISSING_FEATURE.search(str(raised.original))
        if missing and not (expected is not None and expected.matches(raised.original)):
            raise Unsupported(f"Keras {keras.__version__} lacks what the case sets: {raised.original}") from None
        raise


def build_layer(spec: dict, dtype: str, seed: int, expected: ErrorSpec | None = None):
    """The Keras layer a case describes; initializers named by the case, biases random by default.
    An argument or activation this Keras lacks skips the case, unless that error is the one the
    case ``expected`` (_construct)."""
    keras = session.keras()
    cls = spec["class"]
    if cls == "Bidirectional":
        backward = spec.get("backward_layer")
        inner = build_layer(spec["layer"], dtype, seed, expected)
        back = build_layer(backward, dtype, seed + 1, expected) if backward else None
        with keras_call("building the layer"):
            return keras.layers.Bidirectional(inner, merge_mode=spec.get("merge_mode", "concat"),
                                              backward_layer=back, dtype=dtype)
    kwargs = {k: v for k, v in spec.items() if k != "class"}
    if session.flavour() == "tf_keras":
        kwargs = _keras2_kwargs(keras, kwargs)
    with keras_call("building the layer"):
        for key, (_, kind) in api.LAYER_ARGS[cls].items():
            if kind == api.INITIALIZER and key in kwargs:
                kwargs[key] = _initializer(keras, kwargs[key])
        if "bias_initializer" not in spec:
            kwargs["bias_initializer"] = keras.initializers.RandomUniform(*BIAS_RANGE, seed=seed)
    return _construct(keras, cls, {"dtype": dtype, **kwargs}, expected)


def symbolic_shapes(keras, layer, shape: tuple, dtype: str) -> tuple[tuple[tuple[int | None, ...], ...] | None, str]:
    """The shapes of the layer's outputs as Keras computes them without running it, for an input of
    the case's shape with the batch unknown: Keras 3 ``compute_output_spec`` on a KerasTensor,
    tf_keras ``compute_output_shape``.  (None, what Keras raised) where that fails."""
    unknown_batch = (None, *tuple(shape)[1:])
    try:
        if hasattr(keras, "KerasTensor"):
            out = layer.compute_output_spec(keras.KerasTensor(unknown_batch, dtype=dtype))
            flat = list(out) if isinstance(out, (list, tuple)) else [out]
            return tuple(tuple(t.shape) for t in flat), ""
        out = layer.compute_output_shape(unknown_batch)
        flat = out if isinstance(out, (list, tuple)) and out and not isinstance(out[0], (int, type(None))) else [out]
        return tuple(tuple(s.as_list() if hasattr(s, "as_list") else s) for s in flat), ""
    except Exception as exc:  # noqa: BLE001 - whatever Keras raises here is the finding
        return None, f"{type(exc).__name__}: {exc}".strip()


def as_list(result) -> list:
    """What a Keras call returned, as a list of its tensors (one tensor: a list of one)."""
    return list(result) if isinstance(result, (list, tuple)) else [result]


def weight_name(variable) -> str:
    # Keras 3: "kernel"; tf_keras: "lstm/lstm_cell/kernel:0".
    return variable.name.split("/")[-1].split(":")[0]


def _cell_weights(layer) -> dict[str, np.ndarray]:
    return {weight_name(v): np.asarray(w) for v, w in zip(layer.weights, layer.get_weights())}


def read_weights(layer) -> dict:
    """Weights by their Keras names; Bidirectional by direction (§4: never the original layer)."""
    with keras_call("reading the weights"):
        if type(layer).__name__ == "Bidirectional":
            return {"forward": _cell_weights(layer.forward_layer), "backward": _cell_weights(layer.backward_layer)}
        return _cell_weights(layer)


def set_weights(layer, values: dict) -> None:
    """Put weights in by name (Bidirectional: by direction); names not given keep their values."""
    if type(layer).__name__ == "Bidirectional":
        for direction, sub in (("forward", layer.forward_layer), ("backward", layer.backward_layer)):
            if direction in values:
                set_weights(sub, values[direction])
        return
    with keras_call("reading the weights"):
        current = _cell_weights(layer)
    current.update({k: np.asarray(v, dtype=current[k].dtype) for k, v in values.items()})
    with keras_call("setting the weights"):
        layer.set_weights([current[weight_name(v)] for v in layer.weights])


def predict_kernel(case: Case, mask: np.ndarray | None, gpu_visible: bool,
                   has_initial_state: bool = False) -> kernels.Decision:
    """What Keras's eligibility rules choose for this case here (harness/kernels.py)."""
    if mask is not None and case.mask.via == "masking_layer" and has_initial_state and session.flavour() != "tf_keras":
        # §6: Keras 3 fills `mask` from a Masking layer only for a call with one tensor argument, so
        # with a tensor initial_state no mask reaches the layer (and its kernel choice).
        mask = None
    if mask is not None and case.mask.via == "masking_layer" and case.mode == Mode.FUNCTION \
            and session.keras().backend.backend() == "jax":
        mask = None  # jax's function mode is stateless_call: layer.call, so no mask from a Masking layer
    return kernels.decide(api.with_defaults(case.layer), flavour=session.flavour(), device=case.device,
                          gpu_visible=gpu_visible, mask=kernels.mask_info(mask),
                          compute=layers.DTYPES[case.dtype].compute)


def run(case: Case, inputs: list[np.ndarray], mask: np.ndarray | None,
        initial_state: list[np.ndarray] | None, weights: dict | None, tf32: bool = False) -> KerasRun:
    """Build the layer under the case seed, run each call in the case's mode, read everything back."""
    keras = session.keras()
    why = modes.unavailable(case.mode, keras.backend.backend())
    if why:
        raise Unsupported(f"mode {case.mode} on {session.flavour()}: {why}")
    gpu = session.fresh(case.device, case.seed, tf32)
    feed_dtype = layers.DTYPES[case.dtype].feed
    cfg = api.with_defaults(case.layer)
    # tf_keras only: time_major layers take (T, B, F) and return (T, B, U) sequences (§10).
    time_major = bool(layers.cells(cfg)[0].get("time_major"))
    swap = (lambda a: np.swapaxes(a, 0, 1)) if time_major else (lambda a: a)
    names = layers.output_names(cfg)
    sequences = layers.returns(cfg, "return_sequences")
    outputs: dict[OutputKey, np.ndarray] = {}
    devices, problem = set(), ""
    with session.device_scope(case.device), kernel_watch.watch() as watched:
        layer = build_layer(dict(case.layer), case.dtype, case.seed, case.expect.error)
        with keras_call("building the layer"):
            if weights is not None or case.mode != Mode.EAGER:  # a traced call or a graph needs it built
                layer.build(swap(inputs[0]).shape)
        if weights is not None:
            set_weights(layer, weights)
        with keras_call("preparing the call"):
            masking = keras.layers.Masking(mask_value=0.0) if mask is not None and case.mask.via == "masking_layer" \
                else None
            feed = keras_modes.Feed(dtype=feed_dtype, mask=swap(mask) if mask is not None and masking is None else None,
                                    masking=masking, training=case.training,
                                    static_batch=bool(layers.cells(cfg)[0].get("stateful")))
            call_layer = keras_modes.make_call(case.mode, keras, layer, feed)
        for index, x in enumerate(inputs, start=1):
            call = index if case.calls else None
            with keras_call(f"calling the layer (call {index})" if call else "calling the layer"):
                if case.calls and index in case.calls.reset_before:
                    reset_states(layer)
                # initial_state starts the first call; later calls carry the state
                result = call_layer(swap(x), initial_state if index == 1 else None)
                result = as_list(result)
                values = [session.to_numpy(t) for t in result]
                devices.update(session.tensor_device(t) for t in result)
            if len(values) != len(names):
                problem = f"Keras returned {len(values)} tensors, expected {len(names)} ({', '.join(names)})"
            for name, value in zip(names, values):
                outputs[OutputKey(name, call)] = swap(value) if sequences and name.startswith("output") else value
        seen = kernel_watch.observed(watched)
    symbolic_batch = None
    if time_major:
        symbolic, symbolic_problem = None, ""
    elif isinstance(call_layer, keras_modes.GraphCall) and case.mode == Mode.SYMBOLIC:
        symbolic, symbolic_problem = call_layer.shapes, ""  # the keras.Input graph's own shapes
        symbolic_batch = inputs[0].shape[0] if feed.static_batch else None
    else:
        symbolic, symbolic_problem = symbolic_shapes(keras, layer, inputs[0].shape, feed_dtype)
    predicted = predict_kernel(case, mask, gpu, initial_state is not None)
    with keras_call("counting the parameters"):
        params = layer.count_params()
    return KerasRun(outputs=outputs, weights=read_weights(layer), params=params,
                    device=devices.pop() if len(devices) == 1 else "+".join(sorted(devices)),
                    kernel=seen or predicted.kernel, versions=session.versions(), predicted=predicted,
                    observed=seen, tf32=tf32, problem=problem, symbolic=symbolic, symbolic_problem=symbolic_problem,
                    symbolic_batch=symbolic_batch, layer=layer)
