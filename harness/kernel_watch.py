"""Which recurrent kernel really ran: wrap the backend functions the layers call, for one block.

Keras 3: ``backend.lstm/gru`` (and the fused bidirectional ones) return only when their fast
path ran and raise NotImplementedError to fall back to the generic loop; torch's
``_cudnn_lstm/_cudnn_gru`` tell cuDNN from its fallback loop; tf_keras: ``gpu_lstm/gpu_gru``.
Nothing is recorded for a call that never reached them (SimpleRNN, use_cudnn=False,
recurrent_dropout): generic.  The wrappers are ``unittest.mock.patch.object`` patches in one
ExitStack, so every one is undone however the block ends.  kernels.py predicts the same thing
from Keras's rules; the runner compares the two.
"""
from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator
from unittest import mock

from . import kernels, session


def _backend_call(original: Callable, on_return: Callable[[], str], records: list[str], state: dict,
                  bidirectional: bool = False) -> Callable:
    def wrapper(*args, **kwargs):
        state["cudnn"] = False
        try:
            out = original(*args, **kwargs)
        except NotImplementedError:
            if not bidirectional:  # the fused both-directions try falls back to two calls
                records.append(kernels.GENERIC)
            raise
        records.append(on_return())
        return out
    wrapper.__wrapped_original__ = original
    return wrapper


# Recorded where a call was traced into a graph whose kernel the runtime picks: tf_keras outside
# eager mode registers gpu_lstm/gpu_gru as an alternative that Grappler's implementation selector
# chooses when the graph runs, so tracing it says nothing about what ran.
UNOBSERVABLE = "unobservable"


def _eager_only(wrapped: Callable, records: list[str]) -> Callable:
    import tensorflow as tf  # noqa: PLC0415 - tf_keras's backend, already imported

    def wrapper(*args, **kwargs):
        if tf.executing_eagerly():
            return wrapped(*args, **kwargs)
        records.append(UNOBSERVABLE)
        return wrapped.__wrapped_original__(*args, **kwargs)
    return wrapper


def _flag_cudnn(original: Callable, state: dict) -> Callable:
    def wrapper(*args, **kwargs):
        out = original(*args, **kwargs)
        state["cudnn"] = True
        return out
    return wrapper


def _targets(records: list[str], state: dict) -> list[tuple[str, str, Callable[[Callable], Callable]]]:
    """(module, attribute, wrap) for every function to watch under this process's flavour."""
    def call(on_return, bidirectional=False):
        return lambda original: _backend_call(original, on_return, records, state, bidirectional)

    if session.flavour() == "tf_keras":
        cudnn = lambda original: _eager_only(_backend_call(original, lambda: kernels.CUDNN, records, state), records)
        return [("tf_keras.src.layers.rnn.lstm", "gpu_lstm", cudnn), ("tf_keras.src.layers.rnn.gru", "gpu_gru", cudnn)]
    backend = session.keras().backend.backend()
    out = []
    if backend == "torch":
        # The module, by its full name: ``from keras.src.backend.torch import rnn`` gives the
        # function ``rnn`` that the package re-exports, and patching that observes nothing.
        flag = lambda original: _flag_cudnn(original, state)
        out += [("keras.src.backend.torch.rnn", name, flag) for name in ("_cudnn_lstm", "_cudnn_gru")]
        lstm = gru = lambda: kernels.CUDNN if state["cudnn"] else kernels.FUSED
    elif backend == "jax":
        lstm, gru = (lambda: kernels.CUDNN), (lambda: kernels.FUSED)
    else:
        lstm = gru = lambda: kernels.CUDNN
    out += [("keras.src.backend", "lstm", call(lstm)), ("keras.src.backend", "gru", call(gru))]
    out += [("keras.src.backend", name, call(lambda: kernels.CUDNN, True))
            for name in ("bidirectional_lstm", "bidirectional_gru")]
    return out


@contextlib.contextmanager
def watch() -> Iterator[list[str] | None]:
    """Record the kernel of every recurrent call while the block runs (None: cannot watch here)."""
    records: list[str] = []
    state = {"cudnn": False}
    with contextlib.ExitStack() as stack:
        for module_name, attribute, wrap in _targets(records, state):
            module = importlib.import_module(module_name)
            original = getattr(module, attribute, None)
            if not callable(original):
                yield None  # this Keras has no such function: the kernel is not observable
                return
            stack.enter_context(mock.patch.object(module, attribute, wrap(original)))
        yield records


def observed(records: list[str] | None) -> str | None:
    """The kernel the watch saw (generic when no fast path was tried), or None when unwatchable."""
    if records is None or UNOBSERVABLE in records:
        return None
    return kernels.combine(records) if records else kernels.GENERIC
