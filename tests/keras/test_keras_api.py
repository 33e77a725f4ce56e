"""harness/keras_api.py against the installed Keras, so the schema's tables cannot drift from it.

This test imports Keras on purpose: it is about the installed version.
"""
from __future__ import annotations

import inspect

import pytest

from harness import keras_api as api
from harness import schema
from harness.errors import CaseSchemaError

keras = pytest.importorskip("keras")

# Signature parameters the table leaves out on purpose, each with the reason.
NOT_IN_TABLE = {
    # Bidirectional(weights=...) sets initial weights; a case gives them in its own `weights:` section.
    ("Bidirectional", "weights"),
}


def _params(cls) -> dict[str, inspect.Parameter]:
    return {name: p for name, p in inspect.signature(cls).parameters.items()
            if name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}


@pytest.mark.parametrize("layer_class", sorted(api.LAYER_ARGS))
def test_every_signature_parameter_is_in_the_table_with_its_default(layer_class):
    table = api.LAYER_ARGS[layer_class]
    problems = []
    for name, param in _params(getattr(keras.layers, layer_class)).items():
        if (layer_class, name) in NOT_IN_TABLE:
            continue
        if name not in table:
            problems.append(f"{name} missing from the table")
            continue
        # A required argument (units, layer) is written with default None in the table.
        keras_default = None if param.default is inspect.Parameter.empty else param.default
        if table[name][0] != keras_default:
            problems.append(f"{name}: table default {table[name][0]!r}, Keras {keras_default!r}")
    assert problems == []


@pytest.mark.parametrize("layer_class", sorted(api.LAYER_ARGS))
def test_every_table_entry_is_a_real_argument(layer_class):
    own = _params(getattr(keras.layers, layer_class))
    problems = []
    for name in api.LAYER_ARGS[layer_class]:
        if name in own:
            continue
        if name in api.KERAS2_ONLY_ARGS:
            continue  # checked against tf_keras below
        base = api.BASE_CLASS_ARGS.get(name)
        if base is None:
            problems.append(f"{name}: not in keras.layers.{layer_class} and not a base-class argument")
        elif base == "RNN" and name not in _params(keras.layers.RNN):
            problems.append(f"{name}: not in keras.layers.RNN either")
        elif base == "Layer" and name not in inspect.signature(keras.layers.Layer.__init__).parameters:
            problems.append(f"{name}: not an argument of keras.layers.Layer")
        elif base == "cell":
            default = api.LAYER_ARGS[layer_class][name][0]
            other = next(v for v in api.IMPLEMENTATIONS if v != default)
            if getattr(getattr(keras.layers, layer_class)(2, **{name: other}).cell, name, None) != other:
                problems.append(f"{name}: keras.layers.{layer_class} does not hand it to its cell")
            if getattr(getattr(keras.layers, layer_class)(2).cell, name, None) != default:
                problems.append(f"{name}: the cell's default is not {default!r}")
    assert problems == []


@pytest.mark.parametrize("layer_class", ["LSTM", "GRU", "SimpleRNN"])
def test_keras2_only_arguments_are_keras2_only(layer_class):
    """time_major is in the table for tf_keras cases: Keras 3 lacks it, tf_keras has it."""
    for name in api.KERAS2_ONLY_ARGS:
        assert name in api.LAYER_ARGS[layer_class]
        assert name not in _params(getattr(keras.layers, layer_class))
        tf_keras = pytest.importorskip("tf_keras", reason="tf_keras not installed (pip install -e '.[tfkeras]')")
        own2 = inspect.signature(getattr(tf_keras.layers, layer_class).__init__).parameters
        assert name in own2 or name in inspect.signature(tf_keras.layers.RNN.__init__).parameters


def test_the_exclusions_are_still_real():
    # An exclusion for an argument Keras dropped would hide nothing; remove it then.
    for layer_class, name in NOT_IN_TABLE:
        assert name in _params(getattr(keras.layers, layer_class))


def test_base_class_args_reach_the_layer():
    # zero_output_for_mask and name go through **kwargs; the built layer must keep them.
    layer = keras.layers.LSTM(2, zero_output_for_mask=True, name="probe")
    assert layer.zero_output_for_mask is True and layer.name == "probe"


@pytest.mark.parametrize("name", api.ACTIVATIONS)
def test_activation_is_accepted_by_keras(name):
    assert callable(keras.activations.get(name))


@pytest.mark.parametrize("cls", sorted(api.INITIALIZERS))
def test_initializer_class_accepts_its_config_keys(cls):
    initializer = getattr(keras.initializers, cls)
    assert set(api.INITIALIZERS[cls]) <= set(inspect.signature(initializer).parameters)
    # and really builds with them (a value every listed key accepts)
    sample = {"value": 0.5, "gain": 2.0, "mean": 0.0, "stddev": 0.1, "minval": -0.1, "maxval": 0.1,
              "seed": 1, "scale": 1.0, "mode": "fan_in", "distribution": "truncated_normal"}
    built = initializer(**{k: sample[k] for k in api.INITIALIZERS[cls]})
    assert tuple(built(shape=(2, 2)).shape) == (2, 2)


def test_identity_gain_is_used():
    # Identity.get_config() is {} in Keras 3.15, so check the gain by its effect: 2 * I.
    values = keras.ops.convert_to_numpy(keras.initializers.Identity(gain=2.0)(shape=(2, 2)))
    assert values.tolist() == [[2.0, 0.0], [0.0, 2.0]]


@pytest.mark.parametrize("name, cls", sorted(api.INITIALIZER_NAMES.items()))
def test_initializer_names_the_schema_accepts_build_in_keras(name, cls, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("cases:\n  - id: c1\n    layer: {class: LSTM, units: 1, kernel_initializer: " + name
                    + "}\n    input: {timesteps: 1, features: 1}\n", encoding="utf-8")
    try:
        schema.load_file(path)
    except CaseSchemaError:
        # Only "constant": keras.initializers.get("constant") raises KeyError 'value' in Keras 3.
        assert cls == "Constant"
        with pytest.raises(KeyError):
            keras.initializers.get(name)
        return
    # keras_layer builds a bare name with keras.initializers.get(class name)
    assert type(keras.initializers.get(cls)).__name__ == cls
    assert type(keras.initializers.get(name)).__name__ == cls
