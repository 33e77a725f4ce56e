"""How a layer is executed: one more axis of a case, like its device.

The same case, the same reference and the same tolerances in every mode; only the way Keras is
driven changes (keras_layer.py holds the Keras side of each):

- ``eager``: ``layer(x)``, op by op (what every case did before modes existed);
- ``function``: the backend's traced call: ``tf.function`` on TensorFlow and tf_keras, ``jax.jit``
  of ``layer.stateless_call`` on jax (jax traces to XLA: there this *is* the XLA run);
- ``xla``: ``tf.function(jit_compile=True)`` (TensorFlow and tf_keras);
- ``predict``: inside a ``keras.Model`` built on ``keras.Input``, run by ``model.predict`` (the
  backend's own compiled predict step);
- ``symbolic``: the layer is first called on ``keras.Input`` with the batch unknown (a stateful
  layer: its batch, which Keras requires), the ``keras.Model`` of that graph is then called on
  the data; the graph's output shapes must be those the call returns.

No Keras import here: listing, markers and the schema read this module.
"""
from __future__ import annotations

import enum


class Mode(str, enum.Enum):
    EAGER = "eager"
    FUNCTION = "function"
    XLA = "xla"
    PREDICT = "predict"
    SYMBOLIC = "symbolic"

    def __str__(self) -> str:
        return self.value


MODES = tuple(m.value for m in Mode)
DEFAULT = Mode.EAGER
ALL = "all"  # --mode all: every mode

# What each mode means, for `keras-equiv list --markers` and the schema's help.
ABOUT = {
    Mode.EAGER: "the layer is called eagerly, op by op",
    Mode.FUNCTION: "the layer runs in the backend's traced call (tf.function; jax.jit)",
    Mode.XLA: "the layer runs in tf.function(jit_compile=True)",
    Mode.PREDICT: "the layer runs inside a keras.Model, by model.predict",
    Mode.SYMBOLIC: "the layer is called on keras.Input (batch unknown), then the model on the data",
}

# Modes a backend has no way to run, and why: such a case skips with the reason.
UNAVAILABLE = {
    ("jax", Mode.XLA): "jax compiles every traced call with XLA: the function mode (jax.jit) is this run",
    ("torch", Mode.FUNCTION): ("Keras's torch backend has no traced call of its own; torch.compile "
                               "(its jit_compile) takes ~9 s per layer here and is not a Keras mode"),
    ("torch", Mode.XLA): "Keras's torch backend does not compile with XLA",
}


def unavailable(mode: str, backend: str) -> str | None:
    """Why ``backend`` cannot run a layer in ``mode``, or None."""
    return UNAVAILABLE.get((backend, Mode(mode)))
