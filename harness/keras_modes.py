"""The Keras side of each execution mode (harness/modes.py): one function per mode that makes a
layer's call, so keras_layer.run is the same loop in every mode.

A ``Call`` takes one call's input (NumPy, already time-major where the layer is) and, on the
first call only, the initial states, and returns what Keras returned (tensors or NumPy arrays).
The mask and the training flag are the same for every call of a case.  Tracing, compiling and
the ``keras.Input`` graph are made on the first call that needs them and reused, as a user's
code reuses them; a new signature (the first call's initial states) makes a new trace.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from . import session
from .errors import Unsupported
from .modes import Mode

Call = Callable[[np.ndarray, "list[np.ndarray] | None"], Any]


class Feed(NamedTuple):
    """What every call of the case passes besides its input."""

    dtype: str  # the dtype inputs and states are fed in
    mask: np.ndarray | None  # (batch, timesteps) bool, time-major where the layer is
    masking: Any  # a keras.layers.Masking the input goes through first, or None
    training: bool
    static_batch: bool  # the batch is part of the layer (stateful): keras.Input needs it


def call_kwargs(feed: Feed, mask, states) -> dict:
    """The layer call's keyword arguments: training, the first call's states, the mask (tensors)."""
    kwargs: dict[str, Any] = {"training": True} if feed.training else {}
    if states is not None:
        kwargs["initial_state"] = states
    if mask is not None:
        kwargs["mask"] = mask
    return kwargs


def _states(feed: Feed, initial_state):
    return [session.to_tensor(s, feed.dtype) for s in initial_state] if initial_state is not None else None


def _eager(layer, feed: Feed) -> Call:
    mask = session.to_tensor(feed.mask) if feed.mask is not None else None

    def call(x, initial_state):
        tensor = session.to_tensor(x, feed.dtype)
        if feed.masking is not None:
            tensor = feed.masking(tensor)
        return layer(tensor, **call_kwargs(feed, mask, _states(feed, initial_state)))
    return call


def _tf_function(layer, feed: Feed, jit_compile: bool) -> Call:
    import tensorflow as tf  # noqa: PLC0415 - the backend itself (TensorFlow or tf_keras), already imported

    def body(tensor, mask, states):
        if feed.masking is not None:
            tensor = feed.masking(tensor)
        return layer(tensor, **call_kwargs(feed, mask, states))

    traced = tf.function(body, jit_compile=jit_compile)
    mask = session.to_tensor(feed.mask) if feed.mask is not None else None

    def call(x, initial_state):
        return traced(session.to_tensor(x, feed.dtype), mask, _states(feed, initial_state))
    return call


def _jax_jit(layer, feed: Feed) -> Call:
    import jax  # noqa: PLC0415 - the backend itself, already imported by Keras

    def body(trainable, non_trainable, tensor, tensors):
        if feed.masking is not None:
            tensor = feed.masking(tensor)
        kwargs = {"training": True} if feed.training else {}
        return layer.stateless_call(trainable, non_trainable, tensor, **kwargs, **tensors)

    jitted = jax.jit(body)
    mask = session.to_tensor(feed.mask) if feed.mask is not None else None

    def call(x, initial_state):
        tensors = {"mask": mask} if mask is not None else {}
        if initial_state is not None:
            tensors["initial_state"] = _states(feed, initial_state)
        trainable = [v.value for v in layer.trainable_variables]
        non_trainable = [v.value for v in layer.non_trainable_variables]
        out, updated = jitted(trainable, non_trainable, session.to_tensor(x, feed.dtype), tensors)
        for variable, value in zip(layer.non_trainable_variables, updated):  # the stateful layer's state
            variable.assign(value)
        return out
    return call


class _Graph(NamedTuple):
    model: Any
    shapes: tuple[tuple[int | None, ...], ...]  # the graph's output shapes


def _graph(keras, layer, feed: Feed, x: np.ndarray, initial_state) -> _Graph:
    """A keras.Model of the layer on keras.Input: the batch unknown, unless the layer is stateful
    (Keras requires its batch: "When using `stateful=True` in a RNN, the batch size must be
    static", keras/src/layers/rnn/rnn.py build)."""
    batch = x.shape[0] if feed.static_batch else None

    def placeholder(array, dtype):
        return keras.Input(shape=array.shape[1:], batch_size=batch, dtype=dtype)

    inputs = [placeholder(x, feed.dtype)]
    tensor = feed.masking(inputs[0]) if feed.masking is not None else inputs[0]
    kwargs: dict[str, Any] = {}
    if feed.mask is not None:
        inputs.append(placeholder(feed.mask, "bool"))
        kwargs["mask"] = inputs[-1]
    if initial_state is not None:
        states = [placeholder(s, feed.dtype) for s in initial_state]
        inputs += states
        kwargs["initial_state"] = states
    outputs = layer(tensor, **kwargs)
    flat = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
    shapes = tuple(tuple(t.shape) for t in flat)
    return _Graph(keras.Model(inputs, outputs), shapes)


class GraphCall:
    """predict and symbolic: the layer inside a keras.Model of keras.Input, run by model.predict
    (``predict``) or called on the data (``symbolic``).  ``shapes``: the first graph's output shapes."""

    def __init__(self, keras, layer, feed: Feed, predict: bool):
        if predict and feed.training:
            raise Unsupported("model.predict calls the layer with training=False; this case calls it with "
                              "training=True (run it in another mode)")
        self.keras, self.layer, self.feed, self.predict = keras, layer, feed, predict
        self.graphs: dict[bool, _Graph] = {}  # by whether the call passes initial states
        self.shapes: tuple[tuple[int | None, ...], ...] | None = None

    def __call__(self, x, initial_state):
        with_state = initial_state is not None
        if with_state not in self.graphs:
            self.graphs[with_state] = _graph(self.keras, self.layer, self.feed, x, initial_state)
        graph = self.graphs[with_state]
        if self.shapes is None:
            self.shapes = graph.shapes
        feeds = [np.asarray(x, dtype=self.feed.dtype)]
        if self.feed.mask is not None:
            feeds.append(self.feed.mask)
        feeds += [np.asarray(s, dtype=self.feed.dtype) for s in initial_state or ()]
        if self.predict:
            return graph.model.predict(feeds, batch_size=len(x), verbose=0)
        tensors = [session.to_tensor(f, str(f.dtype)) for f in feeds]
        return graph.model(tensors, training=self.feed.training)


def make_call(mode: str, keras, layer, feed: Feed) -> Call:
    """The call of ``layer`` in ``mode`` under this process's Keras (modes.unavailable is checked first)."""
    mode = Mode(mode)
    if mode == Mode.EAGER:
        return _eager(layer, feed)
    if mode in (Mode.PREDICT, Mode.SYMBOLIC):
        return GraphCall(keras, layer, feed, predict=mode == Mode.PREDICT)
    if keras.backend.backend() == "jax":
        return _jax_jit(layer, feed)
    return _tf_function(layer, feed, jit_compile=mode == Mode.XLA)
