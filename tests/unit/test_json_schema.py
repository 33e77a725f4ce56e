"""The JSON Schema of case files (``harness/schema/json_schema.py``): shipped up to date, valid
draft-07, passing every bundled case file, and refusing what the validator refuses for a key, a
type or a value outside a closed set.  No Keras."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from harness import cli, schema
from harness.errors import CaseSchemaError
from harness.schema import json_schema
from harness.yaml_lines import load

ROOT = Path(__file__).resolve().parents[2]
CASE_FILES = schema.find_case_files([ROOT / "cases"])  # the case files (not the known-differences table)
SCHEMA = json_schema.case_file_schema()
VALIDATOR = jsonschema.Draft7Validator(SCHEMA)

LSTM = "{class: LSTM, units: 4}"
INPUT = "{batch: 2, timesteps: 3, features: 5}"


def case(layer: str = LSTM, input: str = INPUT, extra: str = "", id: str = "c1") -> str:
    """A one-case file; ``extra`` lines go after input."""
    return f"cases:\n  - id: {id}\n    layer: {layer}\n    input: {input}\n" + extra


def model_case(model: str, extra: str = "") -> str:
    return f"cases:\n  - id: m1\n    model: {model}\n    input: {INPUT}\n" + extra


def schema_errors(text: str) -> list[jsonschema.ValidationError]:
    """What the JSON Schema says of a case file, read as the harness reads it (YAML 1.2)."""
    return list(VALIDATOR.iter_errors(load(text)))


def validator_refuses(tmp_path: Path, text: str) -> bool:
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        schema.load_file(path)
    except CaseSchemaError:
        return True
    return False


def test_shipped_file_is_up_to_date():
    shipped = json_schema.SHIPPED.read_text(encoding="utf-8")
    assert shipped == json_schema.schema_text(), (
        f"{json_schema.SHIPPED.name} is stale: regenerate it with\n    {json_schema.REGENERATE}")


def test_schema_is_valid_draft_07():
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert jsonschema.validators.validator_for(SCHEMA) is jsonschema.Draft7Validator


def test_main_writes_the_shipped_text(tmp_path, capsys):
    assert json_schema.main([str(tmp_path / "s.json")]) == 0
    assert (tmp_path / "s.json").read_text(encoding="utf-8") == json_schema.schema_text()
    assert json_schema.main([]) == 0
    assert capsys.readouterr().out == json_schema.schema_text()


def test_every_bundled_case_file_is_checked():
    assert len(CASE_FILES) >= 50


@pytest.mark.parametrize("path", CASE_FILES, ids=[str(p.relative_to(ROOT)) for p in CASE_FILES])
def test_bundled_case_file_passes(path):
    errors = schema_errors(path.read_text(encoding="utf-8"))
    assert not errors, "\n".join(f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:5])


# name -> (case file, where the schema's error is: the path into the document)
BAD = {
    "unknown_top_level_key": (case() + "extra: 1\n", ()),
    "cases_empty": ("cases: []\n", ("cases",)),
    "unknown_case_key": (case(extra="    expcet: {params: 1}\n"), ("cases", 0)),
    "unknown_layer_argument": (case(layer="{class: LSTM, units: 4, retrun_sequences: true}"), ("cases", 0, "layer")),
    "unknown_nested_layer_argument": (
        case(layer="{class: Bidirectional, layer: {class: GRU, units: 2, go_backward: true}}"),
        ("cases", 0, "layer", "layer")),
    "gru_argument_on_lstm": (case(layer="{class: LSTM, units: 4, reset_after: true}"), ("cases", 0, "layer")),
    "misspelt_class": (case(layer="{class: LTSM, units: 4}"), ("cases", 0, "layer", "class")),
    "dense_as_the_layer": (case(layer="{class: Dense, units: 4}"), ("cases", 0, "layer", "class")),
    "bidirectional_in_bidirectional": (
        case(layer="{class: Bidirectional, layer: {class: Bidirectional, layer: {class: LSTM, units: 2}}}"),
        ("cases", 0, "layer", "layer", "class")),
    "units_is_a_string": (case(layer='{class: LSTM, units: "8"}'), ("cases", 0, "layer", "units")),
    "units_zero": (case(layer="{class: GRU, units: 0}"), ("cases", 0, "layer", "units")),
    "units_missing": (case(layer="{class: GRU}"), ("cases", 0, "layer")),
    "nested_units_missing": (case(layer="{class: Bidirectional, layer: {class: GRU}}"), ("cases", 0, "layer", "layer")),
    "yaml11_flag": (case(layer="{class: LSTM, units: 4, return_sequences: yes}"),
                    ("cases", 0, "layer", "return_sequences")),
    "dropout_above_one": (case(layer="{class: LSTM, units: 4, dropout: 1.5}"), ("cases", 0, "layer", "dropout")),
    "unknown_activation": (case(layer="{class: LSTM, units: 4, activation: tanhh}"),
                           ("cases", 0, "layer", "activation")),
    "unknown_initializer": (case(layer="{class: LSTM, units: 4, kernel_initializer: glorot}"),
                            ("cases", 0, "layer", "kernel_initializer")),
    "constant_by_name": (case(layer="{class: LSTM, units: 4, bias_initializer: constant}"),
                         ("cases", 0, "layer", "bias_initializer")),
    "initializer_unknown_config_key": (
        case(layer="{class: LSTM, units: 4, bias_initializer: {class: Constant, valu: 1}}"),
        ("cases", 0, "layer", "bias_initializer")),
    "merge_mode_unknown": (case(layer="{class: Bidirectional, layer: " + LSTM + ", merge_mode: avg}"),
                           ("cases", 0, "layer", "merge_mode")),
    "use_cudnn_word": (case(layer="{class: LSTM, units: 4, use_cudnn: maybe}"), ("cases", 0, "layer", "use_cudnn")),
    "implementation_three": (case(layer="{class: LSTM, units: 4, implementation: 3}"),
                             ("cases", 0, "layer", "implementation")),
    "bad_dtype": (case(extra="    dtype: float8\n"), ("cases", 0, "dtype")),
    "float16_model": (model_case("[{class: LSTM, units: 2}]", "    dtype: float16\n"), ("cases", 0, "dtype")),
    "bad_device": (case(extra="    devices: [cpu, tpu]\n"), ("cases", 0, "devices")),
    "unknown_expect_key": (case(extra="    expect: {param: 1}\n"), ("cases", 0, "expect")),
    "unknown_kernel": (case(extra="    expect: {kernel: cudnnn}\n"), ("cases", 0, "expect", "kernel")),
    "error_without_type": (case(extra="    expect: {error: {match: x}}\n"), ("cases", 0, "expect", "error")),
    "id_with_a_capital": (case(id="Lstm"), ("cases", 0, "id")),
    "id_with_a_trailing_newline": (case(id='"c1\\n"'), ("cases", 0, "id")),
    "id_missing": ("cases:\n  - layer: {class: LSTM, units: 4}\n    input: {timesteps: 3, features: 5}\n",
                   ("cases", 0)),
    "empty_sweep_list": (case(extra="    sweep: {layer.units: []}\n"), ("cases", 0, "sweep", "layer.units")),
    "sweep_of_the_id": (case(extra="    sweep: {id: [a, b]}\n"), ("cases", 0, "sweep")),
    "sweep_value_with_a_space": (case(extra="    sweep: {layer.activation: [a b]}\n"),
                                 ("cases", 0, "sweep", "layer.activation", 0)),
    "input_unknown_key": (case(input="{batch: 2, timesteps: 3, feature: 5}"), ("cases", 0, "input")),
    "input_data_unknown": (case(input="{timesteps: 3, features: 5, data: gaussian}"), ("cases", 0, "input", "data")),
    "input_features_missing": (case(input="{timesteps: 3}"), ("cases", 0, "input")),
    "mask_kind_unknown": (case(extra="    mask: {kind: padded, lengths: [1, 2]}\n"), ("cases", 0, "mask")),
    "mask_key_of_another_kind": (case(extra="    mask: {kind: random, lengths: [1, 2]}\n"), ("cases", 0, "mask")),
    "initial_state_word": (case(extra="    initial_state: ones\n"), ("cases", 0, "initial_state")),
    "weights_unknown_name": (case(extra="    weights: {kernal: 0.1}\n"), ("cases", 0, "weights")),
    "mask_via_unknown": (case(extra="    mask: [[1, 1, 0], [1, 0, 0]]\n    mask_via: layer\n"),
                         ("cases", 0, "mask_via")),
    "calls_without_count": (case(layer="{class: LSTM, units: 4, stateful: true}",
                                 extra="    calls: {reset_before: [2]}\n"), ("cases", 0, "calls")),
    "tolerance_unknown_key": (case(extra="    tolerance: {atol: 1e-3, rtl: 1e-3}\n"), ("cases", 0, "tolerance", "rtl")),
    "tolerance_loose_without_reason": (case(extra="    tolerance: {atol: 2}\n"), ("cases", 0, "tolerance")),
    "requires_unknown_backend": (case(extra="    requires: {backend: mxnet}\n"),
                                 ("cases", 0, "requires", "backend")),
    "requires_keras_one": (case(extra="    requires: {keras: 1}\n"), ("cases", 0, "requires", "keras")),
    "limits_unknown_key": (case(extra="    limits: {points: 10}\n"), ("cases", 0, "limits")),
    "limits_zero": (case(extra="    limits: {timesteps: 0}\n"), ("cases", 0, "limits", "timesteps")),
    "model_case_with_a_mask": (model_case("[{class: LSTM, units: 2}]", "    mask: [[1, 1, 1], [1, 1, 1]]\n"),
                               ("cases", 0)),
    "model_unknown_class": (model_case("[{class: LSTM, units: 2}, {class: Dens, units: 1}]"),
                            ("cases", 0, "model", 1, "class")),
    "model_dense_without_units": (model_case("[{class: LSTM, units: 2}, {class: Dense}]"), ("cases", 0, "model", 1)),
    "model_lstm_without_units": (model_case("[{class: LSTM}]"), ("cases", 0, "model", 0)),
    "model_without_a_recurrent_layer": (model_case("[{class: Dense, units: 2}]"), ("cases", 0, "model")),
    "model_time_distributed_lstm": (
        model_case("[{class: LSTM, units: 2, return_sequences: true}, {class: TimeDistributed, "
                   "layer: {class: LSTM, units: 1}}]"), ("cases", 0, "model", 1, "layer", "class")),
}

GOOD = {
    "plain": case(),
    "every_section": case(
        layer="{class: Bidirectional, layer: {class: GRU, units: 2, reset_after: false}, merge_mode: none}",
        extra="    about: all of it\n    mask: {kind: right_padded, lengths: [3, 1]}\n    dtype: float64\n"
              "    devices: gpu\n    seed: 7\n    tolerance: {output_fw: {atol: 2, reason: loose on purpose}}\n"
              "    requires: {keras: 3, backend: [tensorflow, jax], device: gpu}\n    limits: {elements: 1000}\n"
              "    expect: {params: 84, kernel: generic}\n"),
    "units_from_the_sweep": case(layer="{class: LSTM}", extra="    sweep: {layer.units: [1, 2]}\n"),
    "sweep_null_is_no_sweep": case(extra="    sweep: null\n"),
    "input_from_its_values": case(input="{values: [[[1.0], [2.0]]]}"),
    "stateful_calls": case(layer="{class: LSTM, units: 4, stateful: true}",
                           extra="    calls: {count: 3, reset_before: [3]}\n"),
    "model": model_case("[{class: Conv1D, filters: 4, kernel_size: 2}, {class: LSTM, units: 2}, "
                        "{class: Dense, units: 1, activation: sigmoid}]", "    expect: {layer_params: [44, 56, 3]}\n"),
}


@pytest.mark.parametrize("name", BAD)
def test_refused_by_both(name, tmp_path):
    text, where = BAD[name]
    assert validator_refuses(tmp_path, text), "the validator accepts it: not a schema case"
    errors = schema_errors(text)
    assert errors, "the JSON Schema accepts it"
    at = [tuple(e.absolute_path) for e in errors]
    assert where in at, f"the schema's errors are at {at}, none at {where}"


@pytest.mark.parametrize("name", GOOD)
def test_accepted_by_both(name, tmp_path):
    text = GOOD[name]
    assert not validator_refuses(tmp_path, text)
    assert [e.message for e in schema_errors(text)] == []


def test_the_cli_prints_the_shipped_schema_and_its_path(capsys):
    assert cli.main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == json_schema.case_file_schema()
    assert cli.main(["schema", "--path"]) == 0
    assert capsys.readouterr().out == f"{json_schema.SHIPPED}\n"
