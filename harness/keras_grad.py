"""Keras's own gradients of one call of a built recurrent layer, by the backend's autodiff.

For a scalar loss L = sum_k sum(upstream[k] * output_k) over the tensors the call returns (outputs,
then states, in Keras's order), ``gradients`` asks the backend of this process's flavour for dL/dx,
dL/d(initial states) and dL/d(each trainable weight): ``tf.GradientTape`` on TensorFlow and tf_keras,
``jax.grad`` through ``layer.stateless_call`` on jax, ``.backward()`` on torch.  Weight gradients are
keyed as ``keras_layer.read_weights`` keys the weights, found by variable identity.  The call is the
one keras_modes makes eagerly (``keras_modes.call_kwargs``), fed in the dtype keras_layer feeds.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from . import keras_layer, keras_modes, layers, session
from .errors import HarnessError


class KerasGradients(NamedTuple):
    """dL/dx, dL/d(each initial state) (None without initial states), dL/d(weights) keyed like read_weights."""

    inputs: np.ndarray
    initial_state: list[np.ndarray] | None
    weights: dict


class _Call(NamedTuple):
    """One call of the layer, as every backend gets it (NumPy; the backend makes its own tensors)."""

    x: np.ndarray
    upstream: list[np.ndarray]
    mask: np.ndarray | None
    initial_state: list[np.ndarray] | None
    feed: keras_modes.Feed


class _Raw(NamedTuple):
    """What a backend returns: the gradients as backend tensors (None: not connected to the loss)."""

    inputs: Any
    initial_state: list | None
    weights: list  # one per layer.trainable_weights, in that order


def feed_dtype(layer) -> str:
    """The dtype keras_layer feeds a layer of this dtype policy (layers.DTYPES), else its compute dtype."""
    policy = getattr(getattr(layer, "dtype_policy", None), "name", None)
    facts = layers.DTYPES.get(policy) if isinstance(policy, str) else None
    return facts.feed if facts is not None else str(layer.compute_dtype)


def _weight_paths(layer) -> dict[int, tuple[str, ...]]:
    """id(variable) -> its key path in read_weights (Bidirectional: direction, then name)."""
    if type(layer).__name__ == "Bidirectional":
        return {id(v): (direction, keras_layer.weight_name(v))
                for direction, sub in (("forward", layer.forward_layer), ("backward", layer.backward_layer))
                for v in sub.weights}
    return {id(v): (keras_layer.weight_name(v),) for v in layer.weights}


def _tensorflow(layer, call: _Call) -> _Raw:
    import tensorflow as tf  # noqa: PLC0415 - the backend itself (Keras 3 on TF, or tf_keras), already imported

    x = tf.convert_to_tensor(call.x, dtype=call.feed.dtype)
    states = [tf.convert_to_tensor(s, dtype=call.feed.dtype) for s in call.initial_state or ()]
    mask = tf.convert_to_tensor(call.mask) if call.mask is not None else None
    given = states if call.initial_state is not None else None
    with tf.GradientTape() as tape:
        tape.watch([x, *states])
        out = keras_layer.as_list(layer(x, **keras_modes.call_kwargs(call.feed, mask, given)))
        loss = tf.add_n([tf.reduce_sum(tf.cast(u, o.dtype) * o) for u, o in zip(call.upstream, out)])
    weights = list(layer.trainable_weights)
    grads = tape.gradient(loss, [x, states, weights], unconnected_gradients=tf.UnconnectedGradients.ZERO)
    return _Raw(grads[0], grads[1] if call.initial_state is not None else None, grads[2])


def _jax(layer, call: _Call) -> _Raw:
    import jax  # noqa: PLC0415 - the backend itself, already imported by Keras
    import jax.numpy as jnp  # noqa: PLC0415 - the backend itself, already imported by Keras

    mask = session.to_tensor(call.mask) if call.mask is not None else None
    non_trainable = [v.value for v in layer.non_trainable_variables]

    def loss(trainable, x, states):
        kwargs = keras_modes.call_kwargs(call.feed, mask, states)
        out, _ = layer.stateless_call(trainable, non_trainable, x, **kwargs)
        return sum(jnp.sum(jnp.asarray(u, dtype=o.dtype) * o) for u, o in zip(call.upstream, keras_layer.as_list(out)))

    trainable = [v.value for v in layer.trainable_variables]
    x = session.to_tensor(call.x, call.feed.dtype)
    states = [session.to_tensor(s, call.feed.dtype) for s in call.initial_state] \
        if call.initial_state is not None else None
    g_weights, g_x, g_states = jax.grad(loss, argnums=(0, 1, 2))(trainable, x, states)
    return _Raw(g_x, g_states, list(g_weights))


def _torch(layer, call: _Call) -> _Raw:
    def leaf(array):
        return session.to_tensor(array, call.feed.dtype).detach().clone().requires_grad_(True)

    x = leaf(call.x)
    states = [leaf(s) for s in call.initial_state] if call.initial_state is not None else None
    mask = session.to_tensor(call.mask) if call.mask is not None else None
    variables = list(layer.trainable_weights)
    for v in variables:
        v.value.grad = None  # .backward() adds to what an earlier call left
    out = keras_layer.as_list(layer(x, **keras_modes.call_kwargs(call.feed, mask, states)))
    loss = sum((o.new_tensor(u) * o).sum() for u, o in zip(call.upstream, out))  # u in o's dtype, on o's device
    loss.backward()
    return _Raw(x.grad, [s.grad for s in states] if states is not None else None, [v.value.grad for v in variables])


_BACKENDS: dict[str, Callable[[Any, _Call], _Raw]] = {"tensorflow": _tensorflow, "jax": _jax, "torch": _torch}


def _numpy(grad, like) -> np.ndarray:
    """A gradient as float64 NumPy; zeros of ``like``'s shape where the backend gave none (unconnected)."""
    if grad is None:
        return np.zeros(tuple(like.shape), dtype=np.float64)
    if hasattr(grad, "detach"):  # torch: a tensor that may still carry a graph
        grad = grad.detach()
    return np.asarray(session.to_numpy(grad), dtype=np.float64)


def gradients(layer, x: np.ndarray, upstream: Sequence[np.ndarray], mask: np.ndarray | None = None,
              initial_state: Sequence[np.ndarray] | None = None, training: bool = False) -> KerasGradients:
    """The gradients of L = sum_k sum(upstream[k] * output_k) over one call ``layer(x, mask=...,
    initial_state=..., training=...)`` of a built layer, by the backend's own autodiff.

    ``upstream``: one array per tensor the call returns, in Keras's order and of its shape.  Weight
    gradients are keyed like ``keras_layer.read_weights(layer)`` (nested by direction for
    Bidirectional), for every trainable weight; a weight the loss does not reach gets zeros.
    """
    backend = session.keras().backend.backend()
    feed = keras_modes.Feed(dtype=feed_dtype(layer), mask=mask, masking=None, training=training, static_batch=False)
    call = _Call(np.asarray(x), [np.asarray(u) for u in upstream], None if mask is None else np.asarray(mask, bool),
                 None if initial_state is None else [np.asarray(s) for s in initial_state], feed)
    raw = _BACKENDS[backend](layer, call)
    paths = _weight_paths(layer)
    weights: dict = {}
    for variable, grad in zip(layer.trainable_weights, raw.weights):
        path = paths.get(id(variable))
        if path is None:
            raise HarnessError(f"trainable variable {variable.name} is none of the weights read_weights reads")
        node = weights
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = _numpy(grad, variable)
    states = None if call.initial_state is None else \
        [_numpy(g, s) for g, s in zip(raw.initial_state, call.initial_state)]
    return KerasGradients(_numpy(raw.inputs, call.x), states, weights)
