"""What the harness knows of the Keras API, in one place, without importing Keras.

``LAYER_ARGS`` is the table of constructor arguments a case may give each layer class, with
Keras's default and the kind of value accepted.  ``tests/keras/test_keras_api.py`` compares it with
``inspect.signature`` of the installed classes so it cannot drift.
"""
from __future__ import annotations

from collections.abc import Mapping

# Kinds of argument values (checked by harness/schema/layer.py).
UNITS, BOOL, RATE, ACTIVATION, INITIALIZER, OPTIONAL_NAME, SEED, CUDNN, MERGE, LAYER, NAME, IMPLEMENTATION = (
    "positive integer", "boolean", "number in [0, 1]", "activation", "initializer",
    "name or null", "integer or null", "one of auto, true, false", "merge mode",
    "layer mapping", "string", "1 or 2")
IMPLEMENTATIONS = (1, 2)
USE_CUDNN = ("auto", True, False)  # the values of kind CUDNN (true and false as booleans only)

_CELL_COMMON = {
    "units": (None, UNITS),
    "activation": ("tanh", ACTIVATION),
    "use_bias": (True, BOOL),
    "kernel_initializer": ("glorot_uniform", INITIALIZER),
    "recurrent_initializer": ("orthogonal", INITIALIZER),
    "bias_initializer": ("zeros", INITIALIZER),
    # Regularizers and constraints do not change a forward pass; they are passed through.
    "kernel_regularizer": (None, OPTIONAL_NAME),
    "recurrent_regularizer": (None, OPTIONAL_NAME),
    "bias_regularizer": (None, OPTIONAL_NAME),
    "activity_regularizer": (None, OPTIONAL_NAME),
    "kernel_constraint": (None, OPTIONAL_NAME),
    "recurrent_constraint": (None, OPTIONAL_NAME),
    "bias_constraint": (None, OPTIONAL_NAME),
    "dropout": (0.0, RATE),
    "recurrent_dropout": (0.0, RATE),
    "seed": (None, SEED),
    "return_sequences": (False, BOOL),
    "return_state": (False, BOOL),
    "go_backwards": (False, BOOL),
    "stateful": (False, BOOL),
    "unroll": (False, BOOL),
    # Accepted through **kwargs by keras.layers.RNN / Layer.
    "zero_output_for_mask": (False, BOOL),
    "name": (None, NAME),
}

LAYER_ARGS: dict[str, dict[str, tuple[object, str]]] = {
    # implementation: LSTM/GRU take it through **kwargs and hand it to the cell; 1 computes each
    # gate with its own slice of the kernels (and draws one dropout mask per gate).
    "LSTM": {**_CELL_COMMON, "recurrent_activation": ("sigmoid", ACTIVATION),
             "unit_forget_bias": (True, BOOL), "use_cudnn": ("auto", CUDNN), "implementation": (2, IMPLEMENTATION)},
    "GRU": {**_CELL_COMMON, "recurrent_activation": ("sigmoid", ACTIVATION),
            "reset_after": (True, BOOL), "use_cudnn": ("auto", CUDNN), "implementation": (2, IMPLEMENTATION)},
    "SimpleRNN": dict(_CELL_COMMON),
    "Bidirectional": {"layer": (None, LAYER), "merge_mode": ("concat", MERGE),
                      "backward_layer": (None, LAYER), "name": (None, NAME)},
}
# Keras 2 (tf_keras) only: Keras 3 refuses it ("Unrecognized keyword arguments", §10), so a
# case using it needs requires: {keras: 2}, or expects that error.
KERAS2_ONLY_ARGS = ("time_major",)
for _cls in ("LSTM", "GRU", "SimpleRNN"):
    LAYER_ARGS[_cls]["time_major"] = (False, BOOL)
RECURRENT_CLASSES = ("LSTM", "GRU", "SimpleRNN")
# The arguments a case must give each class (Bidirectional: a layer, not null).
REQUIRED_ARGS = {**{cls: ("units",) for cls in RECURRENT_CLASSES}, "Bidirectional": ("layer",)}
# Arguments that exist only as **kwargs of a base class, not in the layer's own signature.
# ("cell": popped from the layer's own **kwargs and given to its cell.)
BASE_CLASS_ARGS = {"zero_output_for_mask": "RNN", "name": "Layer", "implementation": "cell"}
MERGE_MODES = ("concat", "sum", "mul", "ave", None)
MERGE_MODE_WORDS = {"none": None}  # merge_mode: none is read as null

# Activation names Keras 3 accepts in a recurrent layer (keras/src/activations/__init__.py
# ALL_OBJECTS_DICT, less those that need extra arguments or change the width: glu, threshold).
ACTIVATIONS = (
    "celu", "elu", "exponential", "gelu", "hard_shrink", "hard_sigmoid", "hard_silu",
    "hard_swish", "hard_tanh", "leaky_relu", "linear", "log_sigmoid", "log_softmax", "mish",
    "relu", "relu6", "selu", "sigmoid", "silu", "soft_shrink", "softmax", "softplus",
    "softsign", "sparse_plus", "sparse_sigmoid", "sparsemax", "squareplus", "swish", "tanh",
    "tanh_shrink",
)

# Initializer class -> the config keys a case may give it (keras/src/initializers).
INITIALIZERS: dict[str, tuple[str, ...]] = {
    "Constant": ("value",),
    "Zeros": (),
    "Ones": (),
    "Identity": ("gain",),
    "RandomNormal": ("mean", "stddev", "seed"),
    "RandomUniform": ("minval", "maxval", "seed"),
    "TruncatedNormal": ("mean", "stddev", "seed"),
    "VarianceScaling": ("scale", "mode", "distribution", "seed"),
    "GlorotNormal": ("seed",),
    "GlorotUniform": ("seed",),
    "HeNormal": ("seed",),
    "HeUniform": ("seed",),
    "LecunNormal": ("seed",),
    "LecunUniform": ("seed",),
    "Orthogonal": ("gain", "seed"),
}
# Config keys that take a word, passed to Keras as written; every other one takes a number or null.
INITIALIZER_WORDS = ("mode", "distribution")
# Classes a bare name cannot build: Keras 3's initializers.get("constant") fails
# (Constant.from_config needs 'value'), so a case writes {class: Constant, value: 0.5}.
CONFIG_ONLY_INITIALIZERS = ("Constant",)
# snake_case names accepted as strings, mapped to their class.
INITIALIZER_NAMES = {
    "constant": "Constant", "zeros": "Zeros", "ones": "Ones", "identity": "Identity",
    "random_normal": "RandomNormal", "random_uniform": "RandomUniform",
    "truncated_normal": "TruncatedNormal", "variance_scaling": "VarianceScaling",
    "glorot_normal": "GlorotNormal", "glorot_uniform": "GlorotUniform",
    "he_normal": "HeNormal", "he_uniform": "HeUniform", "lecun_normal": "LecunNormal",
    "lecun_uniform": "LecunUniform", "orthogonal": "Orthogonal",
    # Short aliases Keras 3 also accepts (keras/src/initializers/__init__.py).
    "uniform": "RandomUniform", "normal": "RandomNormal", "one": "Ones", "zero": "Zeros",
}

DEVICES = ("cpu", "gpu")


def with_defaults(layer: dict) -> dict:
    """The layer mapping with every Keras default filled in (nested layers too)."""
    cls = layer["class"]
    full = {"class": cls}
    for arg, (default, _) in LAYER_ARGS[cls].items():
        full[arg] = layer.get(arg, default)
    if cls == "Bidirectional":
        full["layer"] = with_defaults(layer["layer"])
        if layer.get("backward_layer") is not None:
            full["backward_layer"] = with_defaults(layer["backward_layer"])
    return full


def describe(spec: dict) -> str:
    """``LSTM(units=16, return_sequences=True)``: the layer as a Keras call."""
    def val(v):
        if isinstance(v, dict):
            return describe(v) if v.get("class") in LAYER_ARGS else repr(v)
        return repr(v)

    args = ", ".join(f"{k}={val(v)}" for k, v in spec.items() if k != "class")
    return f"{spec['class']}({args})"


def describe_model(model) -> str:
    """``Sequential([LSTM(units=3), Dense(units=10, activation='softmax')])``: the model as Keras code."""
    def one(spec: Mapping) -> str:
        args = (f"{k}={one(v) if isinstance(v, Mapping) else repr(v)}" for k, v in spec.items() if k != "class")
        return f"{spec['class']}({', '.join(args)})"

    return "Sequential([" + ", ".join(one(spec) for spec in model) + "])"
