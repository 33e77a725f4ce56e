"""Case-file validation: one bad input per class, each with its exact message line.

Messages are API (pytest-regressions treats them so): ``path:line: case 'id': field: what is
wrong (expected ..., got ...)``, or ``field: must be X, got ...`` where the problem already says
what is expected.  Every bad file also makes ``keras-equiv validate`` exit 2 without a traceback.
"""
from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import yaml

from harness import case as case_ids
from harness.case import GoldenRef, OutputKey
from harness import cli, schema
from harness.errors import CaseSchemaError, SchemaProblem
from schema_problems import problems

LSTM = "{class: LSTM, units: 4}"
INPUT = "{batch: 2, timesteps: 3, features: 5}"


def case(layer: str = LSTM, input: str = INPUT, extra: str = "") -> str:
    """A one-case file: the case starts on line 2, layer is line 3, input line 4, extra from line 5."""
    return f"cases:\n  - id: c1\n    layer: {layer}\n    input: {input}\n" + extra




CASE_KEYS = ("id, about, layer, model, input, mask, mask_via, initial_state, weights, dtype, devices, modes, seed, "
             "training, calls, sweep, expect, tolerance, requires, limits")
PWNED = "PWNED_MARKER"  # replaced by a path under tmp_path

# name -> (file text, the exact message lines)
BAD = {
    "yaml_syntax": (
        "cases:\n  - id: c1\n    layer: {class: LSTM, units: 4\n    input: {batch: 2}\n",
        ["c.yaml:4: invalid YAML: did not find expected ',' or '}' "
         "(while parsing a flow mapping that starts at line 3)"]),
    "unknown_top_level_key": (
        case() + "extra: 1\n",
        ["c.yaml:5: extra: unknown key (expected one of cases, got 'extra')"]),
    "misspelt_cases_key": (
        "case:\n  - id: c1\n",
        ["c.yaml:1: case: unknown key; did you mean 'cases'? (expected one of cases, got 'case')",
         "c.yaml:1: cases: is required (expected a list of cases, got nothing)"]),
    "unknown_case_key": (
        case(extra="    expcet: {params: 1}\n"),
        [f"c.yaml:5: case 'c1': expcet: unknown key; did you mean 'expect'? "
         f"(expected one of {CASE_KEYS}, got 'expcet')"]),
    "unknown_layer_argument": (
        case(layer="{class: LSTM, units: 4, retrun_sequences: true}"),
        ["c.yaml:3: case 'c1': layer.retrun_sequences: unknown key; did you mean 'return_sequences'? "
         "(expected an argument of keras.layers.LSTM, got 'retrun_sequences')"]),
    "unknown_nested_layer_argument": (
        case(layer="{class: Bidirectional, layer: {class: GRU, units: 2, go_backward: true}}"),
        ["c.yaml:3: case 'c1': layer.layer.go_backward: unknown key; did you mean 'go_backwards'? "
         "(expected an argument of keras.layers.GRU, got 'go_backward')"]),
    "units_is_a_string": (
        case(layer='{class: LSTM, units: "8"}'),
        ["c.yaml:3: case 'c1': layer.units: must be a positive integer, got '8'"]),
    "flag_is_a_string": (
        case(layer='{class: LSTM, units: 8, return_sequences: "yes"}'),
        ["c.yaml:3: case 'c1': layer.return_sequences: must be true or false, got 'yes'"]),
    "units_zero": (
        case(layer="{class: GRU, units: 0}"),
        ["c.yaml:3: case 'c1': layer.units: must be a positive integer, got 0"]),
    "batch_zero": (
        case(input="{batch: 0, timesteps: 3, features: 5}"),
        ["c.yaml:4: case 'c1': input.batch: must be a positive integer, got 0"]),
    "features_negative": (
        case(input="{batch: 1, timesteps: 3, features: -1}"),
        ["c.yaml:4: case 'c1': input.features: must be a positive integer, got -1"]),
    "timesteps_negative": (
        case(input="{batch: 1, timesteps: -1, features: 1}"),
        ["c.yaml:4: case 'c1': input.timesteps: must be an integer >= 0, got -1"]),
    "unknown_layer_class": (
        case(layer="{class: LTSM, units: 2}"),
        ["c.yaml:3: case 'c1': layer.class: unknown layer class; did you mean 'LSTM'? "
         "(expected one of LSTM, GRU, SimpleRNN, Bidirectional, got 'LTSM')"]),
    "unknown_activation": (
        case(layer="{class: LSTM, units: 2, activation: tanhh}"),
        ["c.yaml:3: case 'c1': layer.activation: unknown activation; did you mean 'tanh'? "
         "(expected an activation name such as tanh, sigmoid, hard_sigmoid, relu, linear, got 'tanhh')"]),
    "unknown_initializer": (
        case(layer="{class: LSTM, units: 2, kernel_initializer: glorot_unform}"),
        ["c.yaml:3: case 'c1': layer.kernel_initializer: unknown initializer; did you mean 'glorot_uniform'? "
         "(expected an initializer name such as glorot_uniform, orthogonal, zeros, got 'glorot_unform')"]),
    "unknown_initializer_class": (
        case(layer="{class: LSTM, units: 2, kernel_initializer: {class: Constnt, value: 1}}"),
        ["c.yaml:3: case 'c1': layer.kernel_initializer.class: unknown initializer; did you mean 'Constant'? "
         "(expected an initializer class such as Constant, RandomUniform, got 'Constnt')"]),
    "constant_without_value": (
        case(layer="{class: LSTM, units: 2, bias_initializer: constant}"),
        ["c.yaml:3: case 'c1': layer.bias_initializer: a constant initializer needs its value "
         "(expected {class: Constant, value: 0.5}, got 'constant')"]),
    "unknown_dtype": (
        case(extra="    dtype: float33\n"),
        ["c.yaml:5: case 'c1': dtype: unknown dtype; did you mean 'float32'? "
         "(expected one of float32, float64, float16, bfloat16, mixed_float16, mixed_bfloat16, got 'float33')"]),
    "unknown_device": (
        case(extra="    devices: [cpu, gpuu]\n"),
        ["c.yaml:5: case 'c1': devices: unknown device; did you mean 'gpu'? "
         "(expected a list from cpu, gpu, got 'gpuu')"]),
    "bidirectional_layer_null": (
        case(layer="{class: Bidirectional, layer: null}"),
        ["c.yaml:3: case 'c1': layer.layer: is required "
         "(expected the wrapped LSTM, GRU or SimpleRNN, got nothing)"]),
    "bad_merge_mode": (
        case(layer="{class: Bidirectional, merge_mode: concatt, layer: {class: LSTM, units: 2}}"),
        ["c.yaml:3: case 'c1': layer.merge_mode: unknown merge_mode; did you mean 'concat'? "
         "(expected one of concat, sum, mul, ave, none, got 'concatt')"]),
    "duplicate_id_in_file": (
        case() + f"  - id: c1\n    layer: {LSTM}\n    input: {INPUT}\n",
        ["c.yaml:5: case 'c1': id: duplicate id (first defined at line 2) "
         "(expected an id unique across all case files, got 'c1')"]),
    "sweep_path_missing": (
        case(extra="    sweep: {layer.unitz: [1, 2]}\n"),
        ["c.yaml:5: case 'c1': sweep.layer.unitz: path does not exist in this case "
         "(expected a dotted path to a case field, such as layer.units, got 'layer.unitz')"]),
    "sweep_value_not_a_list": (
        case(extra="    sweep: {layer.units: 3}\n"),
        ["c.yaml:5: case 'c1': sweep.layer.units: must be a non-empty list (expected a list of values, got 3)"]),
    "sweep_point_invalid": (
        case(extra="    sweep: {layer.units: [2, -1]}\n"),
        ["c.yaml:5: case 'c1': layer.units: must be a positive integer, got -1"]),
    "sweep_points_share_an_id": (
        case(extra="    sweep: {layer.units: [4, 4]}\n"),
        ["c.yaml:5: case 'c1': sweep: two sweep points get the same id "
         "(expected values that differ as written, got 'c1[units:4+cpu]')"]),
    "input_values_shape": (
        case(input="{batch: 1, timesteps: 2, features: 1, data: values, values: [[[1], [2], [3]]]}"),
        ["c.yaml:4: case 'c1': input.values: shape does not match input.timesteps "
         "(expected timesteps 2, got shape (1, 3, 1))"]),
    "input_values_ragged": (
        case(input="{data: values, values: [[1, 2], [3]]}"),
        ["c.yaml:4: case 'c1': input.values: must be a (batch, timesteps, features) nested list "
         "(expected a 3-level nested list of numbers, got a list of 2)"]),
    "mask_shape": (
        case(extra="    mask: [[1, 1], [1, 0]]\n"),
        ["c.yaml:5: case 'c1': mask: shape does not match (batch, timesteps) "
         "(expected shape (2, 3), got shape (2, 2))"]),
    "mask_lengths": (
        case(extra="    mask: {kind: right_padded, lengths: [1, 5]}\n"),
        ["c.yaml:5: case 'c1': mask.lengths: must give one length per batch row, each in [0, timesteps] "
         "(expected 2 integers in [0, 3], got [1, 5])"]),
    "initial_state_shape": (
        case(extra="    initial_state: [[[0, 0, 0, 0], [0, 0, 0, 0]], [[0, 0, 0], [0, 0, 0]]]\n"),
        ["c.yaml:5: case 'c1': initial_state[1]: shape does not match (batch, units) "
         "(expected shape (2, 4), got shape (2, 3))"]),
    "initial_state_count": (
        case(extra="    initial_state: [[[0, 0, 0, 0], [0, 0, 0, 0]]]\n"),
        ["c.yaml:5: case 'c1': initial_state: must be zeros, random, or one (batch, units) list per state "
         "(expected zeros, random, or 2 arrays (h, c), got a list of 1)"]),
    "weights_shape": (
        # LSTM kernel is (features, 4 * units) = (5, 16)
        case(extra="    weights: {kernel: [[1, 2]]}\n"),
        ["c.yaml:5: case 'c1': weights.kernel: shape does not match the layer's kernel "
         "(expected shape (5, 16), got shape (1, 2))"]),
    "expect_values_shape": (
        case(extra="    expect: {values: {output: [[1, 2]]}}\n"),
        ["c.yaml:5: case 'c1': expect.values.output: shape does not match output 'output' "
         "(expected shape (2, 4), got shape (1, 2))"]),
    "tolerance_negative": (
        case(extra="    tolerance: {atol: -1e-5}\n"),
        ["c.yaml:5: case 'c1': tolerance.atol: must be a finite non-negative number, got -1e-05"]),
    "tolerance_nan": (
        # err > NaN is always false: a NaN tolerance would pass any error.
        case(extra="    tolerance: {output: {rtol: .nan}}\n"),
        ["c.yaml:5: case 'c1': tolerance.output.rtol: must be a finite non-negative number, got nan"]),
    "scale_infinite": (
        case(input="{batch: 1, timesteps: 1, features: 1, scale: .inf}"),
        ["c.yaml:4: case 'c1': input.scale: must be a finite number, got inf"]),
    "empty_file": ("", ["c.yaml: file is empty (expected a mapping with a 'cases:' list, got nothing)"]),
    "comments_only": ("# nothing yet\n",
                      ["c.yaml: file is empty (expected a mapping with a 'cases:' list, got nothing)"]),
    "top_level_list": ("- 1\n- 2\n",
                       ["c.yaml:1: top level must be a mapping (expected a mapping with a 'cases:' list, got [1, 2])"]),
    "top_level_scalar": ("hello\n", ["c.yaml:1: top level must be a mapping "
                                     "(expected a mapping with a 'cases:' list, got 'hello')"]),
    "cases_missing": ("{}\n", ["c.yaml:1: cases: is required (expected a list of cases, got nothing)"]),
    "cases_empty": ("cases: []\n",
                    ["c.yaml:1: cases: must be a non-empty list (expected a list of cases, got [])"]),
    "case_not_a_mapping": ("cases:\n  - 3\n",
                           ["c.yaml:1: cases[0]: must be a mapping, got 3"]),
    "bad_id": ("cases:\n  - id: Big Id\n",
               ["c.yaml:2: cases[0].id: may hold only a-z, 0-9, '_' and '-' "
                "(expected an id like lstm-basic, got 'Big Id')"]),
    "id_with_a_trailing_newline": ('cases:\n  - id: "abc\\n"\n',
                                   ["c.yaml:2: cases[0].id: may hold only a-z, 0-9, '_' and '-' "
                                    "(expected an id like lstm-basic, got 'abc\\n')"]),
    "sweep_value_an_id_cannot_spell": (
        f'cases:\n  - id: c1\n    layer: {LSTM}\n    input: {INPUT}\n    sweep:\n'
        '      layer.activation: [tanh, "a]b"]\n',
        ["c.yaml:6: case 'c1': sweep.layer.activation[1]: must be a value an id can spell: null, true, false, "
         "a number, or a string of letters, digits, '_', '.' and '-' (a list or mapping of such values is spelled "
         "joined by '-'), got 'a]b'"]),
    "sweep_value_with_a_device_sign": (
        f'cases:\n  - id: c1\n    layer: {LSTM}\n    input: {INPUT}\n    sweep:\n      layer.activation: ["x@cpu"]\n',
        ["c.yaml:6: case 'c1': sweep.layer.activation[0]: must be a value an id can spell: null, true, false, "
         "a number, or a string of letters, digits, '_', '.' and '-' (a list or mapping of such values is spelled "
         "joined by '-'), got 'x@cpu'"]),
    "sweep_value_with_a_trailing_newline": (
        f'cases:\n  - id: c1\n    layer: {LSTM}\n    input: {INPUT}\n    sweep:\n      layer.activation: ["tanh\\n"]\n',
        ["c.yaml:6: case 'c1': sweep.layer.activation[0]: must be a value an id can spell: null, true, false, "
         "a number, or a string of letters, digits, '_', '.' and '-' (a list or mapping of such values is spelled "
         "joined by '-'), got 'tanh\\n'"]),
    "sweep_path_an_id_cannot_spell": (
        f'cases:\n  - id: c1\n    layer: {{class: LSTM, units: 2, kernel_initializer: {{class: RandomNormal, '
        f'"std dev": 1.0}}}}\n    input: {INPUT}\n    sweep:\n      layer.kernel_initializer.std dev: [1.0, 2.0]\n',
        ["c.yaml:6: case 'c1': sweep.layer.kernel_initializer.std dev: must be a path an id can spell (letters, "
         "digits, '_', '.' and '-'; the id shows its last part), got 'layer.kernel_initializer.std dev'"]),
    "initial_state_with_a_null": (
        f"cases:\n  - id: c1\n    layer: {{class: SimpleRNN, units: 2}}\n    input: {INPUT}\n"
        "    initial_state: [[[null, 0.0]]]\n",  # NumPy would have read the null as NaN
        ["c.yaml:5: case 'c1': initial_state[0]: shape does not match (batch, units) "
         "(expected shape (2, 2), got null in it)"]),
    "requires_keras_bad_specifier": (
        f"cases:\n  - id: c1\n    layer: {LSTM}\n    input: {INPUT}\n    requires: {{keras: '>>3'}}\n",
        ["c.yaml:5: case 'c1': requires.keras: unknown Keras major version (expected 2 or 3, or a version "
         "specifier such as '>=3.2', got '>>3')"]),
    "missing_id": (f"cases:\n  - layer: {LSTM}\n    input: {INPUT}\n",
                   ["c.yaml:2: cases[0].id: is required (expected an id like lstm-basic, got nothing)"]),
    "python_tag": (
        f'cases: !!python/object/apply:os.system ["touch {PWNED}"]\n',
        ["c.yaml:1: invalid YAML: tag '!!python/object/apply:os.system' is not allowed "
         "(only plain YAML: mappings, lists, strings, numbers)"]),
    "duplicate_key": (
        f"cases:\n  - id: c1\n    layer: {LSTM}\n    layer: {{class: GRU, units: 4}}\n    input: {INPUT}\n",
        ["c.yaml:4: invalid YAML: duplicate key 'layer' (first at line 3)"]),
    "error_match_not_a_regex": (
        case(extra="    expect: {error: {type: ValueError, match: 'a(b'}}\n"),
        ["c.yaml:5: case 'c1': expect.error.match: is not a valid regular expression: "
         "missing ), unterminated subpattern at position 1 (expected a regular expression, got 'a(b')"]),
    "calls_without_stateful": (
        case(extra="    calls: {count: 2}\n"),
        ["c.yaml:5: case 'c1': calls: needs a stateful layer (expected layer.stateful: true, got stateful: false)"]),
    "use_cudnn_other": (
        case(layer="{class: GRU, units: 2, use_cudnn: maybe}"),
        ["c.yaml:3: case 'c1': layer.use_cudnn: must be auto, true or false, got 'maybe'"]),
    "training_too_many_mask_entries": (
        case(layer="{class: LSTM, units: 4, dropout: 0.5, recurrent_dropout: 0.5}", extra="    training: true\n"),
        ["c.yaml:5: case 'c1': training: too many dropout mask entries per row to try every mask set "
         "(expected at most 14 (features or units times masks per gate), got 36)"]),
    "training_with_a_mask": (
        case(layer="{class: GRU, units: 1, dropout: 0.5}",
             extra="    training: true\n    mask: {kind: right_padded, lengths: [3, 1]}\n"),
        ["c.yaml:5: case 'c1': training: training with dropout is checked on a single unmasked layer call "
         "(expected no Bidirectional, mask or calls, got a mask)"]),
    "calls_batches_change_without_error": (
        case(layer="{class: LSTM, units: 2, stateful: true}", extra="    calls: {count: 2, batches: [2, 3]}\n"),
        ["c.yaml:5: case 'c1': calls.batches: a stateful layer keeps one batch size; changing it is only for "
         "an expect.error case (expected one batch size, or expect.error, got [2, 3])"]),
    "calls_batches_wrong_length": (
        case(layer="{class: LSTM, units: 2, stateful: true}", extra="    calls: {count: 3, batches: [2, 2]}\n"),
        ["c.yaml:5: case 'c1': calls.batches: must give one positive batch size per call "
         "(expected 3 positive integers, got [2, 2])"]),
    "gradients_not_a_bool": (
        case(extra="    expect: {gradients: yes please}\n"),
        ["c.yaml:5: case 'c1': expect.gradients: must be true or false, got 'yes please'"]),
    "gradients_half_precision": (
        case(extra="    dtype: mixed_float16\n    expect: {gradients: true}\n"),
        ["c.yaml:6: case 'c1': expect.gradients: needs a float32 or float64 inference call that Keras runs, "
         "got dtype mixed_float16"]),
    "gradients_training": (
        case(extra="    training: true\n    expect: {gradients: true}\n"),
        ["c.yaml:6: case 'c1': expect.gradients: needs a float32 or float64 inference call that Keras runs, "
         "got training: true"]),
    "gradients_with_error": (
        case(extra="    expect: {gradients: true, error: {type: ValueError}}\n"),
        ["c.yaml:5: case 'c1': expect.gradients: needs a float32 or float64 inference call that Keras runs, "
         "got an expected error"]),
}


def _text(name: str, tmp_path: Path) -> str:
    return BAD[name][0].replace(PWNED, str(tmp_path / "pwned"))


@pytest.mark.parametrize("name", BAD)
def test_bad_input_message(name, tmp_path):
    assert problems(tmp_path, _text(name, tmp_path)) == BAD[name][1]


@pytest.mark.parametrize("name", BAD)
def test_cli_validate_exits_2_without_traceback(name, tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(_text(name, tmp_path), encoding="utf-8")
    assert cli.main(["validate", str(path)]) == 2
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    # The first message line, with the real path in place of the display name.
    assert BAD[name][1][0].replace("c.yaml", str(path), 1) in err.splitlines()


def test_python_tags_are_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    for tag in ('!!python/object/apply:os.system ["touch {m}"]', "!!python/object/new:os.system [\"touch {m}\"]",
                '!!python/object/apply:subprocess.call [["touch", "{m}"]]'):
        problems(tmp_path, "cases: " + tag.format(m=marker) + "\n")
        problems(tmp_path, case(extra="    about: " + tag.format(m=marker) + "\n"))
    assert not marker.exists()


def test_duplicate_ids_across_files(tmp_path):
    (tmp_path / "a.yaml").write_text(case(), encoding="utf-8")
    (tmp_path / "b.yaml").write_text("# the same id again\n" + case(), encoding="utf-8")
    files = schema.find_case_files([tmp_path])
    with pytest.raises(CaseSchemaError) as info:
        schema.load_files(files)
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    assert str(info.value).splitlines() == [
        f"{b}:3: case 'c1': id: duplicate id (first defined at {a}:2) "
        f"(expected an id unique across all case files, got 'c1')"]
    assert cli.main(["validate", str(tmp_path)]) == 2


def test_id_registry_reports_ids_another_file_defined_first(tmp_path):
    """The check load_files makes, for callers that load one file at a time (the pytest plugin)."""
    (tmp_path / "a.yaml").write_text(case(extra="    sweep: {layer.units: [1, 2]}\n"), encoding="utf-8")
    (tmp_path / "b.yaml").write_text("# the same id again\n" + case(extra="    devices: [cpu, gpu]\n"),
                                     encoding="utf-8")
    registry = schema.IdRegistry()
    a = schema.load_file(tmp_path / "a.yaml", display="a.yaml")
    b = schema.load_file(tmp_path / "b.yaml", display="b.yaml")
    assert registry.add(a) == []  # two sweep points of one file share their base id
    assert registry.add(a) == []  # the same file again is no duplicate
    # One problem for the id, not one per expanded case.
    assert registry.add(b) == [SchemaProblem("b.yaml", 3, "c1", "id", "duplicate id (first defined at a.yaml:2)",
                                             "an id unique across all case files", "'c1'")]


def test_the_same_file_twice_is_loaded_once(tmp_path, monkeypatch):
    (tmp_path / "a.yaml").write_text(case(), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert [c.id for c in schema.load_files(["a.yaml", "./a.yaml", tmp_path / "a.yaml"])] == ["c1[cpu]"]


def test_every_problem_in_a_file_is_reported(tmp_path):
    text = case(layer="{class: LSTM, units: 0}") + "  - id: c2\n    layer: {class: GRU, units: 2}\n" \
        "    input: {batch: 1, timesteps: 1, features: 1}\n    dtype: float99\n"
    assert problems(tmp_path, text) == [
        "c.yaml:3: case 'c1': layer.units: must be a positive integer, got 0",
        "c.yaml:8: case 'c2': dtype: unknown dtype; did you mean 'float64'? "
        "(expected one of float32, float64, float16, bfloat16, mixed_float16, mixed_bfloat16, got 'float99')"]


VALID = """\
# A case file written by a user outside the project, in the documented format.
cases:
  - id: user-lstm
    about: every return flag, on both devices
    layer:
      class: LSTM
      units: 3
    input: {batch: 2, timesteps: 4, features: 2, data: one_hot}
    devices: [cpu, gpu]
    sweep:
      layer.return_sequences: [false, true]
      input.timesteps: [1, 4]
    tolerance: {atol: 1e-5, rtol: 2E-5}
  - id: user-gru
    layer: {class: GRU, units: 2, reset_after: false, use_cudnn: false}
    input: {timesteps: 2, features: 1}
"""


def test_valid_file_expands_to_documented_ids(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(VALID, encoding="utf-8")
    cases = schema.load_file(path)
    # Cartesian product in the order written (first key slowest), booleans as true/false,
    # one case per device, @device last; no sweep means no brackets.
    assert [c.id for c in cases] == [
        "user-lstm[return_sequences:false+timesteps:1+cpu]",
        "user-lstm[return_sequences:false+timesteps:1+gpu]",
        "user-lstm[return_sequences:false+timesteps:4+cpu]",
        "user-lstm[return_sequences:false+timesteps:4+gpu]",
        "user-lstm[return_sequences:true+timesteps:1+cpu]",
        "user-lstm[return_sequences:true+timesteps:1+gpu]",
        "user-lstm[return_sequences:true+timesteps:4+cpu]",
        "user-lstm[return_sequences:true+timesteps:4+gpu]",
        "user-gru[cpu]",
    ]
    first, gru = cases[0], cases[-1]
    assert (first.path, first.line, first.base_id, first.device) == (str(path), 3, "user-lstm", "cpu")
    assert first.layer["return_sequences"] is False and first.input.timesteps == 1
    assert cases[-2].layer["return_sequences"] is True and cases[-2].input.timesteps == 4
    # 1e-5 without a dot is a number (YAML 1.2), not the string PyYAML's 1.1 rules make of it.
    assert first.tolerance == {"*": {"atol": 1e-5, "rtol": 2e-5}}
    assert (gru.input.batch, gru.dtype, gru.weights, gru.layer["use_cudnn"]) == (2, "float32", "keras", False)
    # The seed comes from the id, so it is the same whatever else is in the file.
    path.write_text(VALID.split("  - id: user-gru")[0], encoding="utf-8")
    assert schema.load_file(path)[0].seed == first.seed
    assert cli.main(["list", str(path)]) == 0


def test_expanded_id_formatting():
    point = (("layer.units", 8), ("layer.go_backwards", True), ("layer.activation", None),
             ("layer.layer.units", 2), ("input.scale", 0.5))
    # Labels are the last path part unless two parts would read the same.
    assert case_ids.point_id("x", point) == \
        "x[layer.units:8+go_backwards:true+activation:null+layer.layer.units:2+scale:0.5]"
    assert case_ids.point_id("x", ()) == "x"


def test_yaml_merge_keys_may_override(tmp_path):
    text = "cases:\n  - id: c1\n    layer: &lstm {class: LSTM, units: 4, return_sequences: true}\n" \
        f"    input: {INPUT}\n  - id: c2\n    layer: {{<<: *lstm, units: 8}}\n    input: {INPUT}\n"
    path = tmp_path / "m.yaml"
    path.write_text(text, encoding="utf-8")
    c1, c2 = schema.load_file(path)
    assert (c1.layer["units"], c2.layer["units"], c2.layer["return_sequences"]) == (4, 8, True)


def test_same_problem_at_every_sweep_point_is_reported_once(tmp_path):
    text = case(layer="{class: LSTM, units: 4, activation: nope}", extra="    sweep: {layer.units: [1, 2, 3]}\n")
    assert problems(tmp_path, text) == [
        "c.yaml:3: case 'c1': layer.activation: unknown activation (expected an activation name such as "
        "tanh, sigmoid, hard_sigmoid, relu, linear, got 'nope')"]


# A valid case touching every section; each leaf replaced by each odd value must give a
# CaseSchemaError or a valid case, never another exception (that would be a traceback).
_FULL = {"cases": [{
    "id": "c1", "about": "x",
    "layer": {"class": "Bidirectional", "merge_mode": "concat",
              "layer": {"class": "LSTM", "units": 2, "stateful": True, "return_state": True,
                        "kernel_initializer": {"class": "Constant", "value": 0.1}}},
    "input": {"batch": 2, "timesteps": 3, "features": 1, "data": "normal", "scale": 1.0},
    "mask": {"kind": "right_padded", "lengths": [1, 3]}, "mask_via": "argument",
    "initial_state": [[[0, 0], [0, 0]] for _ in range(4)], "weights": {"forward": {"bias": 0.5}},
    "dtype": "float32", "devices": ["cpu"], "seed": 3, "training": False,
    "calls": {"count": 2, "reset_before": [2]}, "sweep": {"layer.layer.units": [2]},
    "expect": {"params": 10, "values": {"call1.h_fw": [[0, 0], [0, 0]]},
               "mismatch": {"outputs": ["call2.c_bw"], "reason": "r"}},
    "tolerance": {"call1.output": {"atol": 1.0}}, "requires": {"keras": 3, "backend": "tensorflow"},
}]}
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_ODD = [None, True, -1, 2.5, math.nan, "zz", [], [1], [[1]], {}, {"a": 1}, {"class": [1]}, ["x", ["y"]]]


def _leaves(node, path=()):
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        yield path + (key,)
        yield from _leaves(value, path + (key,))


def test_odd_values_anywhere_never_crash(tmp_path):
    path = tmp_path / "f.yaml"
    path.write_text(yaml.safe_dump(_FULL), encoding="utf-8")
    assert len(schema.load_file(path)) == 1  # the base case itself is valid
    crashes = []
    for where in _leaves(_FULL):
        for odd in _ODD:
            doc = copy.deepcopy(_FULL)
            node = doc
            for key in where[:-1]:
                node = node[key]
            node[where[-1]] = odd
            path.write_text(yaml.dump(doc, Dumper=_DUMPER), encoding="utf-8")
            try:
                schema.load_file(path)
            except CaseSchemaError:
                pass
            except Exception as exc:  # noqa: BLE001 - collected and shown below
                crashes.append(f"{where} = {odd!r}: {type(exc).__name__}: {exc}")
    assert crashes == []


def test_output_names_become_output_keys(tmp_path):
    """Case files write ``call1.h_fw``; the Case holds OutputKey("h_fw", 1), shaped as one call's h_fw."""
    path = tmp_path / "f.yaml"
    path.write_text(yaml.safe_dump(_FULL), encoding="utf-8")
    (c,) = schema.load_file(path)
    assert c.expect.values == {OutputKey("h_fw", 1): [[0, 0], [0, 0]]}
    assert c.expect.mismatch.outputs == (OutputKey("c_bw", 2),)
    assert c.tolerance == {OutputKey("output", 1): {"atol": 1.0}}
    assert c.id == case_ids.case_id("c1", (("layer.layer.units", 2),), "cpu") == "c1[units:2+cpu]"
    assert c.point_id == "c1[units:2]"
    text = case(extra="    expect: {values: {call1.output: [[0, 0, 0, 0], [0, 0, 0, 0]]}}\n")
    assert problems(tmp_path, text) == [
        "c.yaml:5: case 'c1': expect.values.call1.output: unknown key; did you mean 'output'? "
        "(expected one of output, got 'call1.output')"]


def test_golden_reference(tmp_path):
    (tmp_path / "g.h5").write_bytes(b"")
    for written, recorded in (("g.h5", None), ("g.h5::other-case[cpu]", "other-case[cpu]")):
        path = tmp_path / "c.yaml"
        path.write_text(case(extra=f"    expect: {{golden: '{written}'}}\n"), encoding="utf-8")
        (c,) = schema.load_file(path)
        assert c.expect.golden == GoldenRef(str(tmp_path / "g.h5"), recorded)


def test_bidirectional_initial_state_counts_each_direction(tmp_path):
    """LSTM(2) forward + LSTM(3) backward: four states of widths 2, 2, 3, 3, not twice the forward."""
    path = tmp_path / "c.yaml"
    path.write_text(
        "cases:\n  - id: c1\n    layer:\n      class: Bidirectional\n"
        "      layer: {class: LSTM, units: 2}\n"
        "      backward_layer: {class: LSTM, units: 3, go_backwards: true}\n"
        "    input: {batch: 1, timesteps: 2, features: 1}\n"
        "    initial_state: [[[0, 0]], [[0, 0]], [[0, 0, 0]], [[0, 0, 0]]]\n", encoding="utf-8")
    (case,) = schema.load_file(path, display="c.yaml")
    assert [len(s[0]) for s in case.initial_state] == [2, 2, 3, 3]


def test_bidirectional_with_unequal_state_counts_takes_no_initial_state(tmp_path):
    """Keras splits initial_state in half: LSTM forward [h, c] + GRU backward [h] cannot be split."""
    path = tmp_path / "c.yaml"
    body = ("cases:\n  - id: c1\n    layer:\n      class: Bidirectional\n"
            "      layer: {class: LSTM, units: 2}\n"
            "      backward_layer: {class: GRU, units: 3, go_backwards: true}\n"
            "    input: {batch: 1, timesteps: 2, features: 1}\n"
            "    initial_state: random\n")
    path.write_text(body, encoding="utf-8")
    with pytest.raises(CaseSchemaError) as info:
        schema.load_file(path, display="c.yaml")
    assert str(info.value) == (
        "c.yaml:8: case 'c1': initial_state: cannot be given to this Bidirectional: Keras splits "
        "initial_state in half between the directions, and the forward layer has 2 states, the backward "
        "layer 1 (expected no initial_state, or an expect.error case (cases/errors/bidirectional.yaml), "
        "got 'random')")
    path.write_text(body + "    expect: {error: {type: IndexError}}\n", encoding="utf-8")
    assert len(schema.load_file(path)) == 1
