"""Building a layer on the installed Keras (harness/keras_layer.py), with a stand-in Keras."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from harness.case import ErrorSpec
from harness.errors import KerasRaised, Unsupported
from harness.keras_layer import _construct


def fake_keras(message: str):
    def GRU(**kwargs):  # stands in for keras.layers.GRU
        raise ValueError(message)

    return SimpleNamespace(__version__="3.0.0", layers=SimpleNamespace(GRU=GRU))


def test_an_argument_the_installed_keras_lacks_skips_the_case_in_its_words():
    keras = fake_keras("Unrecognized keyword arguments passed to GRU: {'implementation': 1}")
    with pytest.raises(Unsupported) as info:
        _construct(keras, "GRU", {"implementation": 1})
    assert str(info.value) == ("Keras 3.0.0 lacks what the case sets: Unrecognized keyword arguments passed to "
                               "GRU: {'implementation': 1}")


def test_any_other_error_stays_what_keras_raised():
    keras = fake_keras("Received an invalid value for `units`, expected a positive integer.")
    with pytest.raises(KerasRaised):
        _construct(keras, "GRU", {"units": 0})


def test_a_case_that_expects_the_error_keeps_it_as_its_verdict():
    keras = fake_keras("Unrecognized keyword arguments passed to LSTM: {'time_major': True}")
    with pytest.raises(KerasRaised):
        _construct(keras, "GRU", {"time_major": True},
                   ErrorSpec("ValueError", "Unrecognized keyword arguments passed to LSTM"))


def test_a_case_that_expects_another_error_skips_where_the_feature_is_missing():
    # Keras 3.1 has no use_cudnn: the use_cudnn error the case expects cannot happen there.
    keras = fake_keras("Unrecognized keyword arguments passed to GRU: {'use_cudnn': True}")
    with pytest.raises(Unsupported, match="lacks what the case sets"):
        _construct(keras, "GRU", {"use_cudnn": True}, ErrorSpec("ValueError", "use_cudnn=True was specified"))
