"""Golden files without Keras (h5py only): the layout record writes, and every malformed file
``load`` refuses, each with its exact message.

The results recorded here are made by hand (the arrays from the case seed, outputs a constant),
so nothing runs Keras; a message is ``PATH: malformed golden file: case 'ID': what is wrong``.
"""
from __future__ import annotations

import dataclasses
import json
import shlex
import shutil
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest

from harness import data, golden, layers, schema
from harness import keras_api as api
from harness.case import ErrorSpec
from harness.errors import GoldenError, UsageError
from harness.result import CaseResult, Verdict

CASES = """
cases:
  - id: tiny-gru
    about: masked, with an initial state
    layer: {class: GRU, units: 2, return_sequences: true, return_state: true}
    input: {batch: 2, timesteps: 3, features: 2}
    mask: {kind: right_padded, lengths: [3, 2]}
    initial_state: random
    weights: random
  - id: tiny-bidi
    about: weights nested by direction
    layer: {class: Bidirectional, layer: {class: LSTM, units: 2}}
    input: {batch: 2, timesteps: 3, features: 2}
    weights: random
  - id: tiny-bf16
    about: HDF5 has no bfloat16
    layer: {class: SimpleRNN, units: 2, recurrent_initializer: glorot_uniform}
    input: {batch: 2, timesteps: 3, features: 2}
    dtype: bfloat16
    weights: random
"""
GRU = "tiny-gru[cpu]"
BIDI = "tiny-bidi[cpu]"
BF16 = "tiny-bf16[cpu]"


def fake_result(case, **run_fields) -> CaseResult:
    """What run_case(keep=True) returns, with Keras's part made up: weights in the compute dtype,
    every output 0.25."""
    arrays = data.make_arrays(case)
    cfg = api.with_defaults(dict(case.layer))
    dtype = layers.numpy_dtype(layers.DTYPES[case.dtype].compute)

    def cast(tree):
        return {k: cast(v) if isinstance(v, dict) else np.asarray(v).astype(dtype) for k, v in tree.items()}

    shapes = layers.output_shapes(cfg, case.input.batch, case.input.timesteps)
    fields = dict(outputs={k: np.full(shapes[k.name], 0.25, dtype=dtype) for k in layers.output_keys(cfg)},
                  weights=cast(arrays.weights), params=layers.param_count(cfg, case.input.features), device="cpu",
                  kernel="generic", tf32=False, versions={"keras": "3.15.1", "backend": "tensorflow"}, problem="")
    fields.update(run_fields)
    return CaseResult(case, Verdict.PASS, arrays=arrays, keras_run=SimpleNamespace(**fields))


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cases")
    (folder / "tiny.yaml").write_text(CASES)
    return {c.id: c for c in schema.load_file(folder / "tiny.yaml")}


@pytest.fixture(scope="module")
def recorded(cases, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("golden") / "tiny.h5"
    assert golden.record([fake_result(c) for c in cases.values()], out) == 3
    return out


@pytest.fixture
def copy(recorded, tmp_path) -> Path:
    path = tmp_path / "bad.h5"
    shutil.copy(recorded, path)
    return path


def refused(path: Path) -> str:
    with pytest.raises(GoldenError) as info:
        golden.load(path)
    return str(info.value)


# ---------------------------------------------------------------- what record writes

def test_the_layout_names_the_policy_and_each_stored_dtype(recorded):
    with h5py.File(recorded, "r") as f:
        assert isinstance(f.attrs["format_version"], np.integer) and f.attrs["format_version"] == 1
        g = f["cases"][GRU]
        assert (g.attrs["policy"], g.attrs["compute"], g.attrs["dtype"]) == ("float32", "float32", "float32")
        assert sorted(g) == ["initial_state", "inputs", "mask", "outputs", "weights"]
        for name in ("weights/kernel", "outputs/output", "outputs/h"):
            assert g[name].attrs["dtype"] == "float32" and g[name].dtype == np.float32
        assert sorted(f["cases"][BIDI]["weights"]) == ["backward", "forward"]
        b = f["cases"][BF16]
        assert (b.attrs["policy"], b.attrs["compute"]) == ("bfloat16", "bfloat16")
        # HDF5 has no bfloat16: stored widened to float32 (exactly), the attribute says what it was
        assert b["outputs/output"].dtype == np.float32 and b["outputs/output"].attrs["dtype"] == "bfloat16"
        assert b["weights/kernel"].dtype == np.float32 and b["weights/kernel"].attrs["dtype"] == "bfloat16"


def test_load_gives_back_what_was_recorded(cases, recorded):
    loaded = {case.id: (case, arrays, prov) for case, arrays, prov in golden.load(recorded)}
    assert sorted(loaded) == sorted(cases)
    case, arrays, prov = loaded[GRU]
    want = fake_result(cases[GRU])
    np.testing.assert_array_equal(arrays.inputs[0], want.arrays.inputs[0])
    np.testing.assert_array_equal(arrays.mask, want.arrays.mask)
    np.testing.assert_array_equal(arrays.initial_state[0], want.arrays.initial_state[0])
    for name, value in want.keras_run.weights.items():
        np.testing.assert_array_equal(arrays.weights[name], value)
    assert case.mask.values == [[1, 1, 1], [1, 1, 0]] and case.mask.via == "argument"
    assert (case.path, case.line, case.seed) == (cases[GRU].path, cases[GRU].line, cases[GRU].seed)
    assert (prov["policy"], prov["compute"], prov["output_dtypes"]) == \
        ("float32", "float32", {"output": "float32", "h": "float32"})
    assert sorted(loaded[BIDI][1].weights["backward"]) == ["bias", "kernel", "recurrent_kernel"]


def test_bfloat16_comes_back_as_bfloat16(cases, recorded):
    [(_, arrays, prov)] = golden.load(recorded, BF16)
    bf16 = layers.numpy_dtype("bfloat16")
    assert arrays.weights["kernel"].dtype == bf16
    assert {str(k): v.dtype for k, v in arrays.golden_outputs.items()} == {"output": bf16}
    assert prov["output_dtypes"] == {"output": "bfloat16"}
    np.testing.assert_array_equal(arrays.weights["kernel"], fake_result(cases[BF16]).keras_run.weights["kernel"])


def test_a_file_recorded_before_the_dtype_attributes_still_loads(cases, copy):
    """Format 1 as first written: no policy/compute, no dtype attributes, bfloat16 as opaque 2-byte data."""
    with h5py.File(copy, "r+") as f:
        for g in f["cases"].values():
            del g.attrs["policy"], g.attrs["compute"]
            g.visititems(lambda _, item: item.attrs.pop("dtype", None))
        b = f["cases"][BF16]
        for name in ("outputs/output", "weights/kernel", "weights/recurrent_kernel", "weights/bias"):
            bits = b[name][()].astype(layers.numpy_dtype("bfloat16")).view(np.dtype("V2"))
            del b[name]
            b.create_dataset(name, data=bits)
    [(_, arrays, prov)] = golden.load(copy, BF16)
    assert prov["policy"] == "bfloat16" and prov["output_dtypes"] == {"output": "bfloat16"}
    np.testing.assert_array_equal(arrays.weights["kernel"], fake_result(cases[BF16]).keras_run.weights["kernel"])
    assert len(golden.load(copy)) == 3


def test_record_of_no_recordable_case_writes_nothing(cases, tmp_path):
    out = tmp_path / "none.h5"
    results = [CaseResult(cases[GRU], Verdict.SKIP, message="no GPU"),  # skipped: no Keras run
               fake_result(cases[BIDI], problem="Keras returned 1 tensors, expected 2 (output, h)"),
               fake_result(dataclasses.replace(cases[BF16], expect=dataclasses.replace(
                   cases[BF16].expect, error=ErrorSpec("ValueError"))))]  # the JSON cannot say "must raise"
    with pytest.raises(GoldenError) as info:
        golden.record(results, out)
    assert str(info.value) == ("recorded no case: every case failed, errored or was skipped "
                               "(e.g. --device gpu with no GPU); nothing written")
    assert list(tmp_path.iterdir()) == []


def test_record_never_writes_what_it_cannot_load_back(cases, tmp_path):
    out = tmp_path / "half.h5"
    result = fake_result(cases[GRU])
    result.keras_run.outputs.pop(next(k for k in result.keras_run.outputs if k.name == "h"))
    with pytest.raises(GoldenError) as info:
        golden.record([result], out)
    assert str(info.value) == (f"{out}: not written: what was recorded does not load back (a harness bug): "
                               f"{out}.tmp: malformed golden file: case '{GRU}': no outputs/h")
    assert list(tmp_path.iterdir()) == []


def test_reproduce_is_a_verify_command_for_one_case(recorded):
    line = golden.reproduce(recorded, "golden-cells[class:LSTM+cpu]")
    assert line == f"keras-equiv verify {recorded} --case 'golden-cells[class:LSTM+cpu]'"
    assert shlex.split(golden.reproduce("my files/x.h5", GRU, keras="jax")) == \
        ["keras-equiv", "verify", "my files/x.h5", "--case", GRU, "--keras", "jax"]
    assert golden.reproduce("x.h5", "tiny-gru", device="gpu") == "keras-equiv verify x.h5 --case tiny-gru --device gpu"
    # what --case selects: the full id, or the id without the device
    assert [c.id for c, _, _ in golden.load(recorded, GRU)] == [GRU]
    assert [c.id for c, _, _ in golden.load(recorded, "tiny-gru")] == [GRU]
    with pytest.raises(GoldenError, match=r"no case 'nope' in this golden file"):
        golden.load(recorded, "nope")


def test_load_can_retarget_the_device(recorded):
    assert [c.id for c, _, _ in golden.load(recorded, GRU, device="gpu")] == ["tiny-gru[gpu]"]
    with pytest.raises(UsageError, match=r"^unknown device 'tpu' \(expected one of cpu, gpu\)$"):
        golden.load(recorded, device="tpu")


GRU_LAYER = "{class: GRU, units: 2, return_sequences: true, return_state: true}"
MASK = "{kind: right_padded, lengths: [3, 2]}"
# case using tiny.h5::tiny-gru[cpu] (or ::tiny-bidi[cpu]) -> why the recorded arrays cannot feed it
DO_NOT_FIT = {
    "weights": (f"layer: {{class: GRU, units: 3, return_sequences: true, return_state: true}}\n    mask: {MASK}",
                GRU, 'its weights are {"kernel": [2, 6], "recurrent_kernel": [2, 6], "bias": [2, 6]}, this '
                'case\'s layer has {"kernel": [2, 9], "recurrent_kernel": [3, 9], "bias": [2, 9]}'),
    "input": (f"layer: {GRU_LAYER}\n    input: {{batch: 3, timesteps: 3, features: 2}}", GRU,
              "it was recorded on input (batch, timesteps, features) (2, 3, 2), this case has (3, 3, 2)"),
    "calls": ("layer: {class: GRU, units: 2, return_sequences: true, return_state: true, stateful: true}\n"
              f"    mask: {MASK}\n    calls: {{count: 2}}", GRU,
              "it was recorded over 1 call(s), this case makes 2"),
    "no_mask": (f"layer: {GRU_LAYER}", GRU, "it was recorded with a mask, this case has none"),
    "a_mask": (f"layer: {{class: Bidirectional, layer: {{class: LSTM, units: 2}}}}\n    mask: {MASK}", BIDI,
               "it was recorded without a mask, this case has one"),
}


@pytest.mark.parametrize("kind", sorted(DO_NOT_FIT))
def test_expect_golden_refuses_arrays_that_do_not_fit_the_case(recorded, tmp_path, kind):
    fields, recorded_id, why = DO_NOT_FIT[kind]
    shutil.copy(recorded, tmp_path / "tiny.h5")
    if "input:" not in fields:
        fields += "\n    input: {batch: 2, timesteps: 3, features: 2}"
    (tmp_path / "uses.yaml").write_text(
        f"cases:\n  - id: uses\n    {fields}\n    expect: {{golden: 'tiny.h5::{recorded_id}'}}\n")
    [uses] = schema.load_file(tmp_path / "uses.yaml")
    with pytest.raises(GoldenError) as info:
        golden.case_arrays(uses)
    assert str(info.value) == \
        f"{tmp_path / 'tiny.h5'}: recorded case '{recorded_id}' cannot feed case 'uses[cpu]': {why}"


def test_expect_golden_takes_arrays_that_fit(recorded, tmp_path):
    shutil.copy(recorded, tmp_path / "tiny.h5")
    (tmp_path / "uses.yaml").write_text(
        f"cases:\n  - id: same\n    layer: {GRU_LAYER}\n    input: {{batch: 2, timesteps: 3, features: 2}}\n"
        f"    mask: {MASK}\n    expect: {{golden: 'tiny.h5::{GRU}'}}\n")
    [same] = schema.load_file(tmp_path / "uses.yaml")
    assert golden.case_arrays(same).weights["kernel"].shape == (2, 6)


# ---------------------------------------------------------------- malformed files, one check each

def _replace(f, name: str, value) -> None:
    attrs = dict(f[name].attrs)
    del f[name]
    f.create_dataset(name, data=value).attrs.update(attrs)


def _edit_json(f, case_id: str, edit) -> None:
    g = f["cases"][case_id]
    d = json.loads(g.attrs["case"])
    edit(d)
    g.attrs["case"] = json.dumps(d)


def _corrupt(f, name: str) -> None:
    """``name`` stored gzip-compressed, its one chunk overwritten: h5py cannot read it back."""
    value = f[name][()]
    attrs = dict(f[name].attrs)
    del f[name]
    ds = f.create_dataset(name, data=value, chunks=value.shape, compression="gzip")
    ds.attrs.update(attrs)
    info = ds.id.get_chunk_info(0)
    f.flush()
    with open(f.filename, "r+b") as raw:
        raw.seek(info.byte_offset)
        raw.write(b"\xff" * info.size)


G = f"cases/{GRU}"
B = f"cases/{BIDI}"

# name -> (how the file is spoilt, the message after "PATH: malformed golden file: ")
MALFORMED = {
    "missing_weight": (lambda f: f[G + "/weights"].pop("kernel"), f"case '{GRU}': no weights/kernel"),
    "missing_weight_of_a_direction": (lambda f: f[B + "/weights/backward"].pop("bias"),
                                      f"case '{BIDI}': no weights/backward/bias"),
    "missing_direction": (lambda f: f[B + "/weights"].pop("forward"), f"case '{BIDI}': no weights/forward"),
    "weights_not_a_group": (lambda f: (f[G].pop("weights"), f[G].create_dataset("weights", data=[1.0])),
                            f"case '{GRU}': weights is a dataset, expected a group"),
    "weight_shape": (lambda f: _replace(f, G + "/weights/kernel", np.zeros((2, 5), np.float32)),
                     f"case '{GRU}': weights/kernel has shape (2, 5), expected (2, 6) for "
                     "GRU(units=2, return_sequences=True, return_state=True)"),
    "stray_weight": (lambda f: f[G + "/weights"].create_dataset("kernel_2", data=[1.0]),
                     f"case '{GRU}': stray dataset 'weights/kernel_2' (not part of the golden layout)"),
    "stray_dataset_at_the_root": (lambda f: f.create_dataset("notes", data=[1]),
                                  "stray dataset '/notes' (not part of the golden layout)"),
    "stray_dataset_in_a_case": (lambda f: f[G].create_dataset("extra", data=[1]),
                                f"case '{GRU}': stray dataset 'extra' (not part of the golden layout)"),
    "stray_group_in_a_case": (lambda f: f[G].create_group("debug"),
                              f"case '{GRU}': stray group 'debug' (not part of the golden layout)"),
    "stray_dataset_in_cases": (lambda f: f["cases"].create_dataset("zz", data=[1]),
                               "stray dataset '/cases/zz' (each case is a group)"),
    "stray_call": (lambda f: f[G + "/inputs"].create_dataset("call2", data=np.zeros((2, 3, 2))),
                   f"case '{GRU}': stray dataset 'inputs/call2' (not part of the golden layout)"),
    "stray_state": (lambda f: f[G + "/initial_state"].create_dataset("1", data=np.zeros((2, 2))),
                    f"case '{GRU}': stray dataset 'initial_state/1' (not part of the golden layout)"),
    "missing_state": (lambda f: f[G + "/initial_state"].pop("0"), f"case '{GRU}': no initial_state/0"),
    "format_version_a_string": (lambda f: f.attrs.__setitem__("format_version", "1"),
                                "format_version must be an integer, got '1' (a string)"),
    "format_version_a_number": (lambda f: f.attrs.__setitem__("format_version", 1.0),
                                "format_version must be an integer, got 1.0 (a number)"),
    "no_format_version": (lambda f: f.attrs.__delitem__("format_version"), "no format_version attribute"),
    "mask_on_a_case_without_one": (lambda f: f[B].create_dataset("mask", data=np.ones((2, 3), np.uint8)),
                                   f"case '{BIDI}': mask recorded for a case without one "
                                   "(its case JSON has mask_via null)"),
    "no_mask": (lambda f: f[G].pop("mask"), f"case '{GRU}': no mask"),
    "mask_shape": (lambda f: _replace(f, G + "/mask", np.ones((2, 4), np.uint8)),
                   f"case '{GRU}': mask has shape (2, 4), expected (2, 3) (batch, timesteps)"),
    "mask_values": (lambda f: _replace(f, G + "/mask", np.array([[1, 1, 2], [1, 1, 0]], np.uint8)),
                    f"case '{GRU}': mask holds values other than 0 and 1 (such as 2)"),
    "mask_floats": (lambda f: _replace(f, G + "/mask", np.ones((2, 3))),
                    f"case '{GRU}': mask holds float64 values, expected 0/1 integers (uint8)"),
    "complex_input": (lambda f: _replace(f, G + "/inputs/call1", np.zeros((2, 3, 2), complex)),
                      f"case '{GRU}': inputs/call1 holds complex numbers (complex128), expected real ones"),
    "complex_output": (lambda f: _replace(f, G + "/outputs/h", np.zeros((2, 2), np.complex64)),
                       f"case '{GRU}': outputs/h holds complex numbers (complex64), expected real ones"),
    "integer_output": (lambda f: _replace(f, G + "/outputs/h", np.zeros((2, 2), np.int64)),
                       f"case '{GRU}': outputs/h holds int64 values, expected real floating-point numbers"),
    "string_weight": (lambda f: _replace(f, G + "/weights/bias", "zeros"),
                      f"case '{GRU}': weights/bias holds |S5 values, expected real floating-point numbers"),
    "input_shape": (lambda f: _replace(f, G + "/inputs/call1", np.zeros((2, 3, 3))),
                    f"case '{GRU}': inputs/call1 has shape (2, 3, 3), expected (2, 3, 2) (batch, timesteps, features)"),
    "state_shape": (lambda f: _replace(f, G + "/initial_state/0", np.zeros((2, 3))),
                    f"case '{GRU}': initial_state/0 has shape (2, 3), expected (2, 2) (batch, units)"),
    "no_inputs": (lambda f: f[G].pop("inputs"), f"case '{GRU}': no inputs"),
    "output_not_of_the_case": (lambda f: f[G + "/outputs"].create_dataset("c", data=np.zeros((2, 2), np.float32)),
                               f"case '{GRU}': outputs ['c'] are not outputs of this case (it returns output, h)"),
    "missing_output": (lambda f: f[G + "/outputs"].pop("h"), f"case '{GRU}': no outputs/h"),
    "output_shape": (lambda f: _replace(f, G + "/outputs/h", np.zeros((2, 3), np.float32)),
                     f"case '{GRU}': outputs/h has shape (2, 3), expected (2, 2)"),
    "output_dtype_attribute": (lambda f: f[G + "/outputs/h"].attrs.__setitem__("dtype", "float16"),
                               f"case '{GRU}': outputs/h: attribute dtype is 'float16', but the data is stored "
                               "as float32"),
    "policy_attribute": (lambda f: f[G].attrs.__setitem__("policy", "float16"),
                         f"case '{GRU}': attribute policy is 'float16' (a string), expected 'float32' "
                         "(the case JSON's dtype is 'float32')"),
    "empty": (lambda f: [f["cases"].pop(k) for k in list(f["cases"])],
              "/cases holds no case (keras-equiv record never writes an empty file)"),
    "cases_a_dataset": (lambda f: (f.pop("cases"), f.create_dataset("cases", data=[1])),
                        "/cases is a dataset, expected the group of cases"),
    "group_renamed": (lambda f: f.move(G, "cases/other[cpu]"),
                      "case 'other[cpu]': its case JSON has the id 'tiny-gru[cpu]'"),
    "output_a_group": (lambda f: (f[G + "/outputs"].pop("h"), f[G + "/outputs"].create_group("h")),
                       f"case '{GRU}': outputs/h is a group, expected a dataset"),
    "no_input_call": (lambda f: f[G + "/inputs"].pop("call1"), f"case '{GRU}': no inputs/call1"),
    "dtype_attribute_not_a_name": (lambda f: f[G + "/weights/kernel"].attrs.__setitem__("dtype", 5),
                                   f"case '{GRU}': weights/kernel: attribute dtype must be a dtype name, "
                                   "got 5 (an integer)"),
    "dangling_link": (lambda f: (f[G + "/weights"].pop("kernel"),
                                 f[G + "/weights"].__setitem__("kernel", h5py.SoftLink("/nowhere"))),
                      f"case '{GRU}': weights/kernel is a link to nothing, expected a dataset"),
    "unreadable_data": (lambda f: _corrupt(f, G + "/outputs/h"), None),
    "case_json_not_a_string": (lambda f: f[G].attrs.__setitem__("case", 5),
                               f"case '{GRU}': the 'case' attribute must be a JSON string, got 5 (an integer)"),
    "no_case_json": (lambda f: f[G].attrs.__delitem__("case"),
                     f"case '{GRU}': no 'case' attribute (the recorded case, as JSON)"),
    "case_json_not_json": (lambda f: f[G].attrs.__setitem__("case", "{layer: GRU}"),
                           f"case '{GRU}': the 'case' attribute is not valid JSON (Expecting property name "
                           "enclosed in double quotes: line 1 column 2 (char 1))"),
    "case_json_a_list": (lambda f: f[G].attrs.__setitem__("case", "[1, 2]"),
                         f"case '{GRU}': the 'case' attribute must be a JSON object, got [1, 2] (a list)"),
    "case_json_key_twice": (lambda f: f[G].attrs.__setitem__("case", '{"id": "a", "id": "b"}'),
                            f"case '{GRU}': the 'case' attribute is not valid JSON (duplicate key 'id')"),
    "case_json_unknown_key": (lambda f: _edit_json(f, GRU, lambda d: d.update(weights="random")),
                              f"case '{GRU}': case JSON: unknown key 'weights'"),
    "case_json_missing_key": (lambda f: _edit_json(f, GRU, lambda d: d.pop("seed")),
                              f"case '{GRU}': case JSON: no 'seed'"),
    # the recorded case passes through the checks a case file gets
    "layer_units": (lambda f: _edit_json(f, GRU, lambda d: d["layer"].update(units=0)),
                    f"case '{GRU}': layer.units: must be a positive integer, got 0"),
    "layer_argument": (lambda f: _edit_json(f, GRU, lambda d: d["layer"].update(unit=2)),
                       f"case '{GRU}': layer.unit: unknown key; did you mean 'units'? "
                       "(expected an argument of keras.layers.GRU, got 'unit')"),
    "dtype": (lambda f: _edit_json(f, GRU, lambda d: d.update(dtype="float33")),
              f"case '{GRU}': dtype: unknown dtype; did you mean 'float32'? (expected one of float32, float64, "
              "float16, bfloat16, mixed_float16, mixed_bfloat16, got 'float33')"),
    "device": (lambda f: _edit_json(f, GRU, lambda d: d.update(device="tpu")),
               f"case '{GRU}': devices: unknown device; did you mean 'gpu'? "
               "(expected a list from cpu, gpu, got 'tpu')"),
    "seed": (lambda f: _edit_json(f, GRU, lambda d: d.update(seed=-1)),
             f"case '{GRU}': seed: must be an integer >= 0, got -1"),
    "batch": (lambda f: _edit_json(f, GRU, lambda d: d["input"].update(batch="2")),
              f"case '{GRU}': input.batch: must be a positive integer, got '2'"),
    "training_with_dropout_on_a_mask": (
        lambda f: _edit_json(f, GRU, lambda d: (d.update(training=True), d["layer"].update(dropout=0.5))),
        f"case '{GRU}': training: training with dropout is checked on a single unmasked layer call "
        "(expected no Bidirectional, mask or calls, got a mask)"),
    "calls_without_stateful": (
        lambda f: _edit_json(f, GRU, lambda d: d.update(calls={"count": 2, "reset_before": [], "batches": None})),
        f"case '{GRU}': calls: needs a stateful layer (expected layer.stateful: true, got stateful: false)"),
    "mismatch_output": (
        lambda f: _edit_json(f, GRU, lambda d: d.update(mismatch={"outputs": ["c"], "reason": "x"})),
        f"case '{GRU}': expect.mismatch.outputs: must list the outputs that differ (expected a list from "
        "output, h, got ['c'])"),
    "tolerance": (lambda f: _edit_json(f, GRU, lambda d: d.update(tolerance={"*": {"atol": -1.0}})),
                  f"case '{GRU}': tolerance.atol: must be a finite non-negative number, got -1.0"),
    "base_id": (lambda f: _edit_json(f, GRU, lambda d: d.update(base_id="Tiny GRU")),
                f"case '{GRU}': base_id: must be an id of a-z, 0-9, '_' and '-', got 'Tiny GRU'"),
    "id_not_a_string": (lambda f: _edit_json(f, GRU, lambda d: d.update(id=5)),
                        f"case '{GRU}': id: must be a string, got 5"),
    "path_not_a_string": (lambda f: _edit_json(f, GRU, lambda d: d.update(path=None)),
                          f"case '{GRU}': path: must be a string, got null"),
    "sweep_point": (lambda f: _edit_json(f, GRU, lambda d: d.update(sweep_point=[["layer.units"]])),
                    f"case '{GRU}': sweep_point: must be a list of [path, value] pairs, got a list of 1"),
    "tolerance_twice": (lambda f: _edit_json(f, GRU, lambda d: d.update(tolerance={"*": {}, "h": {}})),
                        f"case '{GRU}': case JSON: tolerance gives '*' and per-output tolerances together"),
    "line": (lambda f: _edit_json(f, GRU, lambda d: d.update(line="3")),
             f"case '{GRU}': line: must be an integer >= 0, got '3'"),
    "id_of_another_sweep_point": (
        lambda f: _edit_json(f, GRU, lambda d: d.update(sweep_point=[["layer.units", 2]])),
        f"case '{GRU}': recorded id 'tiny-gru[cpu]' is not the one its base id and sweep point give "
        "('tiny-gru[units:2+cpu]'); recorded by an older keras-equiv without sweep points? record it again"),
}


@pytest.mark.parametrize("kind", sorted(MALFORMED))
def test_a_malformed_file_is_refused_with_what_is_wrong(copy, kind):
    spoil, message = MALFORMED[kind]
    with h5py.File(copy, "r+") as f:
        spoil(f)
    if message is None:  # h5py's own words follow
        assert refused(copy).startswith(f"{copy}: malformed golden file: case '{GRU}': cannot be read (OSError: ")
    else:
        assert refused(copy) == f"{copy}: malformed golden file: {message}"


def test_the_file_level_messages_keep_their_words(copy, tmp_path):
    with h5py.File(copy, "r+") as f:
        f.attrs["format_version"] = 2
    assert refused(copy) == f"{copy}: golden format version 2, this harness reads 1"
    with h5py.File(copy, "r+") as f:
        f.attrs["format_version"] = 1
        del f["cases"]
    assert refused(copy) == f"{copy}: golden file has no /cases group"
    assert refused(tmp_path / "nowhere.h5") == f"{tmp_path / 'nowhere.h5'}: no such golden file"
