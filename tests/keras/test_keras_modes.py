"""Each execution mode drives the layer the way it says (harness/keras_modes.py), under the
flavour this process runs (``pytest --keras F tests/keras/test_keras_modes.py`` for the others)."""
from __future__ import annotations

import numpy as np
import pytest

from harness import keras_modes, modes, schema, session
from harness.modes import Mode
from harness.result import Verdict
from harness.runner import run_case

pytest.importorskip("keras")

FEED = keras_modes.Feed(dtype="float32", mask=None, masking=None, training=False, static_batch=False)
X = np.arange(12, dtype="float32").reshape(2, 3, 2)


def how_called(x) -> str:
    """What a layer's call was given: a symbolic tensor (Keras computing output specs, or tf_keras
    building a functional graph), a traced one, or an eager one."""
    keras = session.keras()
    if session.flavour() == "tf_keras":
        graph = getattr(getattr(x, "graph", None), "name", "")
        if graph == "keras_graph" or graph.endswith("scratch_graph"):
            return "symbolic"
    else:
        from keras.src.backend.common.symbolic_scope import in_symbolic_scope  # noqa: PLC0415 - only under the flavour that has it

        if in_symbolic_scope():
            return "symbolic"
    backend = keras.backend.backend()
    if backend == "jax":
        import jax  # noqa: PLC0415 - only under the flavour that has it

        return "traced" if isinstance(x, jax.core.Tracer) else "eager"
    if backend == "tensorflow":
        import tensorflow as tf  # noqa: PLC0415 - only under the flavour that has it

        return "eager" if tf.executing_eagerly() else "traced"
    return "eager"


def probe(body=None):
    """A layer without weights that records how each call reached it and returns its input."""
    keras = session.keras()

    class Probe(keras.layers.Layer):
        def __init__(self):
            super().__init__()
            self.seen: list[str] = []

        def call(self, x):
            kind = how_called(x)
            if not self.seen or self.seen[-1] != kind:  # torch computes an output spec twice
                self.seen.append(kind)
            return body(x) if body else x * 1.0
    layer = Probe()
    layer.build(X.shape)  # as keras_layer.run builds a layer before a traced call
    return layer


def compiled() -> tuple[str, ...]:
    """The modes the backend here runs traced (modes.unavailable refuses the others)."""
    backend = session.keras().backend.backend()
    return tuple(m for m in (Mode.FUNCTION, Mode.XLA) if not modes.unavailable(m, backend))


@pytest.mark.parametrize("mode", list(Mode))
def test_each_mode_calls_the_layer_its_way(mode):
    if modes.unavailable(mode, session.keras().backend.backend()):
        pytest.skip(modes.unavailable(mode, session.keras().backend.backend()))
    layer = probe()
    call = keras_modes.make_call(mode, session.keras(), layer, FEED)
    out = call(X, None)
    np.testing.assert_array_equal(session.to_numpy(out), X)
    traced_predict = session.keras().backend.backend() != "torch"  # Keras's torch trainer predicts eagerly
    expected = {Mode.EAGER: ["eager"], Mode.FUNCTION: ["traced"], Mode.XLA: ["traced"],
                Mode.PREDICT: ["symbolic", "traced" if traced_predict else "eager"],
                Mode.SYMBOLIC: ["symbolic", "eager"]}[mode]
    assert layer.seen == expected


def test_a_second_call_reuses_the_trace_and_the_graph():
    for mode in (*compiled(), Mode.PREDICT, Mode.SYMBOLIC):
        layer = probe()
        call = keras_modes.make_call(mode, session.keras(), layer, FEED)
        call(X, None)
        call(X + 1, None)
        assert layer.seen.count("symbolic") <= 1 and layer.seen.count("traced") <= (2 if mode == Mode.PREDICT else 1)


def test_xla_mode_compiles_with_xla():
    if Mode.XLA not in compiled():
        pytest.skip(modes.unavailable(Mode.XLA, session.keras().backend.backend()))
    import tensorflow as tf  # noqa: PLC0415 - only under the flavour that has it

    # tf.strings has no XLA kernel: the function mode runs it, the xla mode cannot compile it.
    def body(x):
        tf.strings.as_string(x)
        return x * 1.0
    ok = keras_modes.make_call(Mode.FUNCTION, session.keras(), probe(body), FEED)
    np.testing.assert_array_equal(session.to_numpy(ok(X, None)), X)
    with pytest.raises(Exception, match="(?i)xla|compil|unsupported"):
        keras_modes.make_call(Mode.XLA, session.keras(), probe(body), FEED)(X, None)


def test_a_training_case_has_no_predict_mode_and_says_why(tmp_path):
    (tmp_path / "c.yaml").write_text("cases:\n  - id: drop\n    layer: {class: GRU, units: 2, dropout: 0.5}\n"
                                     "    input: {batch: 2, timesteps: 3, features: 2}\n    training: true\n"
                                     "    modes: [predict]\n")
    result = run_case(schema.load_file(tmp_path / "c.yaml")[0])
    assert result.verdict == Verdict.SKIP
    assert result.message == ("model.predict calls the layer with training=False; this case calls it with "
                              "training=True (run it in another mode)")


def test_a_mode_the_backend_lacks_skips_with_the_reason(tmp_path):
    (tmp_path / "c.yaml").write_text("cases:\n  - id: any\n    layer: {class: GRU, units: 2}\n"
                                     "    input: {batch: 2, timesteps: 3, features: 2}\n"
                                     "    modes: [function, xla]\n")
    backend = session.keras().backend.backend()
    for case in schema.load_file(tmp_path / "c.yaml"):
        result = run_case(case)
        why = modes.unavailable(case.mode, backend)
        if why:
            assert (result.verdict, result.message) == (Verdict.SKIP, f"mode {case.mode} on {session.flavour()}: {why}")
        else:
            assert result.verdict == Verdict.PASS, result.message


def test_a_stateful_layer_carries_its_state_in_every_mode(tmp_path):
    # Three calls, reset before the third: the third call must equal the first in every mode
    # (a mode that dropped the state update would make call 2 equal call 1 and fail the reference).
    (tmp_path / "c.yaml").write_text("cases:\n  - id: carry\n    layer: {class: LSTM, units: 3, stateful: true}\n"
                                     "    input: {batch: 2, timesteps: 4, features: 2}\n"
                                     "    calls: {count: 3, reset_before: [3]}\n"
                                     "    modes: [eager, function, xla, predict, symbolic]\n")
    backend = session.keras().backend.backend()
    for case in schema.load_file(tmp_path / "c.yaml"):
        if modes.unavailable(case.mode, backend):
            continue
        if backend == "jax" and case.mode in (Mode.FUNCTION, Mode.PREDICT):
            continue  # the Keras bug pinned in cases/known.yaml: stateless_call drops the rnn_state update
        result = run_case(case)
        assert result.verdict == Verdict.PASS, f"{case.id}: {result.message}"
