"""Keras flavours: one per process, chosen by environment before the first Keras import.

These tests touch only dictionaries; the ones that import a flavour run it in a subprocess
(tests/keras/test_flavours.py).
"""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import numpy as np
import pytest

from harness import data, flavours, layers, reference, schema
from harness.cli import main
from harness.errors import UsageError
from harness.keras_api import with_defaults

ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------- selection (no Keras import)

@pytest.mark.parametrize("flavour, env", [
    ("tensorflow", {"KERAS_BACKEND": "tensorflow", "TF_USE_LEGACY_KERAS": "0"}),
    ("jax", {"KERAS_BACKEND": "jax", "TF_USE_LEGACY_KERAS": "0"}),
    ("torch", {"KERAS_BACKEND": "torch", "TF_USE_LEGACY_KERAS": "0"}),
    ("tf_keras", {"KERAS_BACKEND": "tensorflow", "TF_USE_LEGACY_KERAS": "1"}),
])
def test_select_sets_the_variables_keras_reads(flavour, env):
    environ = {"KERAS_BACKEND": "jax", "TF_USE_LEGACY_KERAS": "1"}
    assert flavours.select(flavour, environ, modules={}) == flavour
    assert environ == env
    assert flavours.current(environ) == flavour


def everything(module: str) -> bool:
    return True


def test_current_reads_the_environment_keras_does():
    assert flavours.current({}, everything) == "tensorflow"
    assert flavours.current({"KERAS_BACKEND": "torch"}, everything) == "torch"
    assert flavours.current({"KERAS_BACKEND": "jax", "TF_USE_LEGACY_KERAS": "true"}, everything) == "tf_keras"
    assert flavours.current({"KERAS_BACKEND": "numpy"}, everything) == "tensorflow"  # not a flavour we run


@pytest.mark.parametrize("present, default", [
    ({"tensorflow", "jax", "torch"}, "tensorflow"), ({"jax", "torch"}, "jax"), ({"torch"}, "torch"),
    ({"tf_keras"}, None), (set(), None)])
def test_without_tensorflow_the_installed_backend_is_the_default(present, default):
    assert flavours.default_flavour(present.__contains__) == default
    assert flavours.wanted({}, present.__contains__) == default
    assert flavours.wanted({"KERAS_BACKEND": "jax"}, present.__contains__) == "jax"  # the environment wins


def test_with_no_backend_a_run_says_which_extras_to_install():
    with pytest.raises(UsageError) as info:
        flavours.requested({}, lambda module: False)
    assert str(info.value) == ("no Keras backend is installed: pip install 'keras-equiv[tensorflow]' "
                               "(or keras-equiv[jax], keras-equiv[torch], keras-equiv[tfkeras])")
    # every extra a hint names is one pyproject.toml defines
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    named = set(re.findall(r"keras-equiv\[(\w+)\]", str(info.value)))
    named |= {flavours._PACKAGES[f][1] for f in flavours.FLAVOURS}
    assert named <= set(extras), named - set(extras)


def test_select_none_keeps_the_environment():
    environ = {"KERAS_BACKEND": "torch"}
    assert flavours.select(None, environ, modules={"keras": object()}) == "torch"
    assert environ == {"KERAS_BACKEND": "torch"}


def test_unknown_flavour_is_a_usage_error():
    with pytest.raises(UsageError, match=r"--keras pytorch: unknown Keras flavour \(expected one of "
                                         r"tensorflow, jax, torch, tf_keras\)"):
        flavours.select("pytorch", {}, modules={})


def test_no_switch_once_keras_is_imported():
    environ = {"KERAS_BACKEND": "tensorflow"}
    with pytest.raises(UsageError, match="tensorflow is already imported as tensorflow in this process; "
                                         "one Keras flavour per process"):
        flavours.select("jax", environ, modules={"tensorflow": object()})
    assert environ == {"KERAS_BACKEND": "tensorflow"}  # untouched
    assert flavours.select("tensorflow", environ, modules={"tensorflow": object()}) == "tensorflow"


def test_cli_names_the_missing_package(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(flavours, "missing_package", lambda f: f"Keras flavour {f} needs the jax package: "
                                                               f"pip install 'keras-equiv[jax]'")
    assert main(["run", "--keras", "jax", str(tmp_path)]) == 2
    assert capsys.readouterr().err == ("keras-equiv: error: Keras flavour jax needs the jax package: "
                                       "pip install 'keras-equiv[jax]'\n")


def test_missing_package_names_the_extra():
    assert flavours.missing_package("tensorflow", everything) is None
    assert flavours.missing_package("jax", lambda module: False) == ("Keras flavour jax needs the jax package: "
                                                                     "pip install 'keras-equiv[jax]'")
    assert flavours.missing_package("tf_keras", lambda module: False).endswith("'keras-equiv[tfkeras]'")


# ---------------------------------------------------------------- the reference per flavour

def test_hard_sigmoid_formulas_by_hand():
    x = np.array([-3.0, -1.0, 0.0, 1.0, 2.0, 3.0])
    # Keras 2: clip(0.2x + 0.5): 0 (from -0.1), 0.3, 0.5, 0.7, 0.9, 1 (from 1.1)
    assert np.allclose(reference.activation("hard_sigmoid_keras2")(x), [0.0, 0.3, 0.5, 0.7, 0.9, 1.0])
    # Keras 3: clip(x/6 + 0.5): 0, 1/3, 0.5, 2/3, 5/6, 1
    assert np.allclose(reference.activation("hard_sigmoid")(x), [0.0, 1 / 3, 0.5, 2 / 3, 5 / 6, 1.0])


def test_reference_cfg_maps_hard_sigmoid_under_tf_keras_only():
    cfg = with_defaults({"class": "Bidirectional",
                         "layer": {"class": "LSTM", "units": 2, "recurrent_activation": "hard_sigmoid"},
                         "backward_layer": {"class": "GRU", "units": 2, "activation": "hard_sigmoid",
                                            "go_backwards": True}})
    mapped = flavours.reference_cfg(cfg, "tf_keras")
    assert mapped["layer"]["recurrent_activation"] == "hard_sigmoid_keras2"
    assert mapped["backward_layer"]["activation"] == "hard_sigmoid_keras2"
    assert mapped["backward_layer"]["recurrent_activation"] == "sigmoid"
    assert cfg["layer"]["recurrent_activation"] == "hard_sigmoid"  # the input is not modified
    for flavour in ("tensorflow", "jax", "torch"):
        assert flavours.reference_cfg(cfg, flavour) == cfg


def test_flavour_hard_sigmoid_case_can_tell_the_two_formulas_apart():
    # The case passes on both flavours only because the reference switches formula: with the other
    # formula the outputs move far beyond the float32 tolerance (random weights of the case's shapes).
    case = next(c for c in schema.load_file(ROOT / "cases/flavours/backends.yaml")
                if c.id == "flavour-hard-sigmoid[class:LSTM+cpu]")
    cfg = with_defaults(case.layer)
    rng = np.random.default_rng(0)
    weights = {k: rng.uniform(-0.5, 0.5, s) for k, s in layers.weight_shapes(cfg, case.input.features).items()}
    x = data.make_input(case)
    k3 = reference.run(cfg, x, weights)["output"]
    k2 = reference.run(flavours.reference_cfg(cfg, "tf_keras"), x, weights)["output"]
    assert np.abs(k3 - k2).max() > 1e-2


# ---------------------------------------------------------------- jax's compilation cache

def test_the_jax_cache_defaults_to_the_user_cache_folder():
    settings = flavours.jax_cache_settings({"HOME": "/home/u"})
    assert settings == {"jax_compilation_cache_dir": "/home/u/.cache/keras-equiv/jax",
                        "jax_persistent_cache_min_compile_time_secs": 0.1,
                        "jax_persistent_cache_min_entry_size_bytes": 0}
    assert flavours.jax_cache_settings({"XDG_CACHE_HOME": "/c"})["jax_compilation_cache_dir"] == "/c/keras-equiv/jax"


def test_the_jax_cache_folder_can_be_set_or_turned_off():
    assert flavours.jax_cache_settings({"KERAS_EQUIV_JAX_CACHE": "/x"})["jax_compilation_cache_dir"] == "/x"
    for off in ("off", "0", "OFF", ""):
        assert flavours.jax_cache_settings({"KERAS_EQUIV_JAX_CACHE": off, "HOME": "/h"}) == {}


def test_a_cache_folder_the_user_gave_jax_is_left_to_jax():
    assert flavours.jax_cache_settings({"JAX_COMPILATION_CACHE_DIR": "/mine", "HOME": "/h"}) == {}
