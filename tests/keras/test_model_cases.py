"""Model cases with Keras: the Sequential layer table against the installed signatures, and planted
bugs in the non-recurrent references that bundled model cases must catch (an output, not a count).
"""
from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import numpy as np
import pytest

from harness import model_layers, schema
from harness.case import Expect
from harness.reference import sequential
from harness.result import Verdict
from harness.runner import run_case

CASES = Path(__file__).resolve().parents[2] / "cases" / "models"


def test_layer_table_matches_the_keras_signatures():
    keras = pytest.importorskip("keras")
    for cls, table in model_layers.MODEL_LAYERS.items():
        params = inspect.signature(getattr(keras.layers, cls)).parameters
        for arg, (default, _) in table.items():
            assert arg in params, f"{cls}.{arg}"
            if arg not in model_layers.REQUIRED.get(cls, ()):
                assert params[arg].default == default, f"{cls}.{arg}: Keras {params[arg].default!r}, table {default!r}"


# ---------------------------------------------------------------- with Keras: the checks can fail

@pytest.fixture(scope="module")
def bundled():
    pytest.importorskip("keras")
    cases = {c.base_id: c for c in schema.load_files(schema.find_case_files([CASES]))}
    return cases, {}  # cases by id, and one Keras run per case for every test here


def run(bundled, case_id: str, **replace):
    cases, cache = bundled
    case = dataclasses.replace(cases[case_id], **replace) if replace else cases[case_id]
    return run_case(case, keras_cache=cache)


def _flipped_conv(x, kernel, *args, **kwargs):
    return REAL["conv1d"](x, np.asarray(kernel)[::-1], *args, **kwargs)


def _front_heavy_conv(x, kernel, bias=None, strides=1, padding="valid", activation=None):
    if padding != "same":
        return REAL["conv1d"](x, kernel, bias, strides, padding, activation)
    k = np.asarray(kernel).shape[0]
    steps = -(-x.shape[1] // strides)
    total = max((steps - 1) * strides + k - x.shape[1], 0)
    x = np.pad(x, ((0, 0), (total - total // 2, total // 2), (0, 0)))
    return REAL["conv1d"](x, kernel, bias, strides, "valid", activation)[:, :steps]


def _zero_pad_pool(x, pool_size=2, strides=None, padding="valid"):
    strides = strides or pool_size
    if padding == "same":
        steps = -(-x.shape[1] // strides)
        total = max((steps - 1) * strides + pool_size - x.shape[1], 0)
        x = np.pad(x, ((0, 0), (total // 2, total - total // 2), (0, 0)))
    return REAL["max_pooling1d"](x, pool_size, strides, "valid")


REAL = {name: getattr(sequential, name) for name in ("conv1d", "max_pooling1d", "masking", "embedding", "reshape",
                                                 "flatten", "repeat_vector", "dense")}
# planted bug -> (what it replaces in harness.reference.sequential, the bundled case that must catch it)
PLANTED = {
    "conv-flipped-kernel": ({"conv1d": _flipped_conv}, "model-io-lstm-cnn-lstm"),
    "conv-same-pad-front-heavy": ({"conv1d": _front_heavy_conv}, "model-io-lstm-cnn-lstm"),
    "pool-same-pads-zeros": ({"max_pooling1d": _zero_pad_pool}, "model-io-lstm-cnn-lstm"),
    "masking-makes-no-mask": ({"masking": lambda x, v=0.0: (REAL["masking"](x, v)[0], None)}, "model-masking-lstm"),
    "masking-keeps-values": ({"masking": lambda x, v=0.0: (np.asarray(x, float), REAL["masking"](x, v)[1])},
                             "model-masking-value"),
    "time-distributed-drops-mask": ({"PASS_MASK": ("Dense",)}, "model-masking-through-timedistributed"),
    "embedding-ignores-mask-zero": ({"embedding": lambda ids, e, m=False: (REAL["embedding"](ids, e)[0], None)},
                                    "model-embedding-mask-zero"),
    "reshape-column-major": ({"reshape": lambda x, t: np.asarray(x).reshape((x.shape[0],) + tuple(t), order="F")},
                             "model-io-lstm-td-cnn-lstm"),
    "flatten-column-major": ({"flatten": lambda x: np.asarray(x).reshape(x.shape[0], -1, order="F")},
                             "model-io-lstm-lstm-cnn"),
    "repeat-vector-interleaved": ({"repeat_vector": lambda x, n: np.repeat(x, n, axis=1).reshape(x.shape[0], n, -1)},
                                  "model-lstm-explained-seq2seq"),
    "dense-drops-bias": ({"dense": lambda x, k, b=None, a=None: REAL["dense"](x, k, None, a)},
                         "model-rnn-basic-many-to-one"),
}


@pytest.mark.parametrize("name", PLANTED)
def test_planted_reference_bug_fails_a_bundled_model_case(name, bundled, monkeypatch):
    patches, case_id = PLANTED[name]
    control = run(bundled, case_id)
    assert control.verdict == Verdict.PASS, control.message
    for attr, value in patches.items():
        monkeypatch.setattr(sequential, attr, value)
    result = run(bundled, case_id)
    assert result.verdict == Verdict.FAIL, f"{name} survived {case_id}"
    assert any(c.comparison is not None for c in result.failures)  # an output, not a count, caught it


def test_wrong_counts_and_shapes_fail(bundled):
    # one count off per kind of expectation; the counts themselves are the seed's printed ones
    wrong = {"params": Expect(params=185), "layer_params": Expect(layer_params=(144, 41)),
             "output_shape": Expect(output_shape=(1, 11))}
    for name, expect in wrong.items():
        result = run(bundled, "model-rnn-basic-many-to-one", expect=expect)
        assert result.verdict == "fail", name
        assert [c.name for c in result.failures] == [f"expect.{name}"]
