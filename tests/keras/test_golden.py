"""Golden HDF5 files: record/verify round trip, tampering caught, bad files refused (exit 2)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from harness import golden
from harness.cli import main
from harness.runner import run_case
from harness.session import gpu_available

ROOT = Path(__file__).resolve().parents[2]
PINNED_YAML = ROOT / "cases" / "golden" / "pinned.yaml"
PINNED_H5 = ROOT / "cases" / "golden" / "pinned.h5"
# pinned.h5 as keras-equiv 0.1 recorded it, its cases named as ids were then: base[class=LSTM]@cpu.
LEGACY_H5 = ROOT / "tests" / "data" / "golden-0.1.h5"

CASE = """
cases:
  - id: tiny-gru
    about: a small GRU with states
    layer: {class: GRU, units: 2, return_sequences: true, return_state: true}
    input: {batch: 2, timesteps: 3, features: 2}
    mask: {kind: right_padded, lengths: [3, 2]}
    initial_state: random
"""


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("golden")
    (folder / "cases.yaml").write_text(CASE)
    out = folder / "tiny.h5"
    assert main(["record", str(folder / "cases.yaml"), "--out", str(out)]) == 0
    return out


def test_layout_is_plain_hdf5(recorded):
    with h5py.File(recorded, "r") as f:
        assert f.attrs["format"] == "keras-equiv-golden"
        assert int(f.attrs["format_version"]) == golden.FORMAT_VERSION
        g = f["cases"]["tiny-gru[cpu]"]
        assert g["inputs/call1"].shape == (2, 3, 2)
        assert g["mask"][()].tolist() == [[1, 1, 1], [1, 1, 0]]
        assert g["initial_state/0"].shape == (2, 2)
        assert sorted(g["weights"]) == ["bias", "kernel", "recurrent_kernel"]
        assert g["weights/bias"].shape == (2, 6)  # reset_after=True: (2, 3U)
        assert sorted(g["outputs"]) == ["h", "output"]
        # GRU params 3*(F*U + U*U + 2U) with F=2, U=2: 3*(4+4+4) = 36
        assert int(g.attrs["params"]) == 36
        for key in ("keras", "backend", "device", "dtype", "kernel", "tf32", "recorded"):
            assert key in g.attrs
        # the case's policy and its compute dtype, and per array the dtype Keras returned it in
        assert (g.attrs["policy"], g.attrs["compute"], g.attrs["dtype"]) == ("float32", "float32", "float32")
        for name in ("outputs/output", "outputs/h", "weights/kernel", "weights/bias"):
            assert g[name].attrs["dtype"] == "float32" and g[name].dtype == np.float32


def test_verify_passes_on_the_same_machine(recorded, capsys):
    assert main(["verify", str(recorded)]) == 0
    assert "PASS  tiny-gru[cpu]" in capsys.readouterr().out


def test_verify_catches_a_moved_number(recorded, tmp_path, capsys):
    tampered = tmp_path / "tampered.h5"
    shutil.copy(recorded, tampered)
    with h5py.File(tampered, "r+") as f:
        f["cases/tiny-gru[cpu]/outputs/output"][0, 1, 0] += 1e-3  # far above float32's 1e-5
    assert main(["verify", str(tampered)]) == 1
    out = capsys.readouterr().out
    assert "output vs golden" in out
    assert "golden file" in out
    # the reproduce line reruns exactly that recorded case, and does reproduce the failure
    line = next(x for x in out.splitlines() if x.startswith("  reproduce:"))
    assert line == f"  reproduce:  keras-equiv verify {tampered} --case 'tiny-gru[cpu]'"
    assert main(["verify", str(tampered), "--case", "tiny-gru[cpu]"]) == 1


def test_verify_one_case_or_on_another_device(recorded, capsys):
    assert main(["verify", str(recorded), "--case", "tiny-gru"]) == 0
    assert "PASS  tiny-gru[cpu]" in capsys.readouterr().out
    if gpu_available():
        pytest.skip("a GPU is visible: the no-GPU skip cannot be checked here")
    assert main(["verify", str(recorded), "--device", "gpu"]) == 0
    assert "SKIP  tiny-gru[gpu]" in capsys.readouterr().out
    assert main(["verify", str(recorded), "--case", "no-such-case"]) == 2


def test_record_never_overwrites_without_force(recorded, tmp_path, capsys):
    before = recorded.read_bytes()
    case_file = recorded.parent / "cases.yaml"
    assert main(["record", str(case_file), "--out", str(recorded)]) == 2
    assert "already exists (use --force to overwrite)" in capsys.readouterr().err
    assert recorded.read_bytes() == before
    copy = tmp_path / "copy.h5"
    shutil.copy(recorded, copy)
    assert main(["record", str(case_file), "--out", str(copy), "--force"]) == 0


@pytest.mark.parametrize("kind", ["missing", "truncated", "foreign", "not-hdf5"])
def test_bad_golden_files_exit_2_without_traceback(recorded, tmp_path, capsys, kind):
    path = tmp_path / f"{kind}.h5"
    if kind == "truncated":
        path.write_bytes(recorded.read_bytes()[:2000])
    elif kind == "foreign":
        with h5py.File(path, "w") as f:
            f.create_dataset("x", data=np.arange(3))
    elif kind == "not-hdf5":
        path.write_text("cases: []\n")
    assert main(["verify", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"keras-equiv: error: {path}: ")
    assert "Traceback" not in err
    expected = {"missing": "no such golden file", "truncated": "not a readable HDF5 file",
                "foreign": "not a keras-equiv golden file", "not-hdf5": "not a readable HDF5 file"}[kind]
    assert expected in err


def test_pinned_golden_file_verifies_here(capsys):
    """The committed numbers (TF 2.21 / Keras 3.15.1, CPU) still hold on this Keras."""
    assert main(["verify", str(PINNED_H5)]) == 0


def test_a_golden_file_recorded_by_0_1_verifies_under_todays_ids(capsys):
    assert main(["verify", str(LEGACY_H5)]) == 0
    out = capsys.readouterr().out
    assert "PASS  golden-cells[class:LSTM+cpu]" in out and "5 cases: 5 pass" in out
    # Its cases still answer to the names it gave them.
    assert main(["verify", str(LEGACY_H5), "--case", "golden-cells[class=LSTM]@cpu"]) == 0
    assert "[1/1] PASS  golden-cells[class:LSTM+cpu]" in capsys.readouterr().out


def test_a_cases_own_limits_are_recorded_and_read_back(tmp_path):
    """The caps a case's limits: section sets go into the file: the recorded case is re-validated
    on load under them, not under the defaults (a case that needed a raised cap must still load)."""
    (tmp_path / "cases.yaml").write_text(
        "cases:\n  - id: capped\n    layer: {class: SimpleRNN, units: 2}\n"
        "    input: {batch: 1, timesteps: 3, features: 1}\n    limits: {timesteps: 20000, calls: 5}\n")
    out = tmp_path / "capped.h5"
    assert main(["record", str(tmp_path / "cases.yaml"), "--out", str(out)]) == 0
    [(case, _, _)] = golden.load(out)
    assert dict(case.limits) == {"timesteps": 20000, "calls": 5}


def test_ctrl_c_in_verify_reports_what_ran(tmp_path, capsys):
    """verify runs its cases as run does: Ctrl-C after the first prints the summary of that one,
    writes the JSON report marked incomplete, and exits 130."""
    calls = []

    def interrupted_second(case, options, arrays=None):
        calls.append(case.id)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return run_case(case, options, arrays=arrays)

    report_path = tmp_path / "report.json"
    assert main(["verify", str(PINNED_H5), "--json", str(report_path)], runner=interrupted_second) == 130
    out = capsys.readouterr().out
    assert "interrupted: 1 of 5 cases ran" in out and "1 cases: 1 pass" in out
    doc = json.loads(report_path.read_text())
    assert doc["complete"] is False and [c["id"] for c in doc["cases"]] == calls[:1]
    assert doc["cases"][0]["reproduce"].startswith(f"keras-equiv verify {PINNED_H5} --case ")


def golden_user(folder: Path, recorded: Path, case_id: str, cls: str, ref: str) -> Path:
    """A case file beside a copy of ``recorded`` whose one case runs a ``cls`` on ``file::ref``."""
    shutil.copy(recorded, folder / recorded.name)
    (folder / "cases.yaml").write_text(
        f"cases:\n  - id: {case_id}\n    layer: {{class: {cls}, units: 4, return_sequences: true,"
        " return_state: true}\n    input: {batch: 3, timesteps: 5, features: 3}\n"
        f"    expect: {{golden: \"{recorded.name}::{ref}\"}}\n")
    return folder / "cases.yaml"


def test_expect_golden_may_name_a_recorded_case_as_0_1_named_it(tmp_path, capsys):
    cases = golden_user(tmp_path, LEGACY_H5, "uses-old-golden", "LSTM", "golden-cells[class=LSTM]@cpu")
    assert main(["run", "-n", "0", str(cases)]) == 0
    assert "PASS  uses-old-golden[cpu]" in capsys.readouterr().out


def test_pinned_golden_file_regenerates(tmp_path):
    """Recording the pinned cases again gives the same inputs and weights exactly (they come from
    NumPy under the case seed) and outputs within the float32 tolerance."""
    fresh = tmp_path / "pinned.h5"
    assert main(["record", str(PINNED_YAML), "--out", str(fresh)]) == 0
    old = {c.id: (a, c) for c, a, _ in golden.load(PINNED_H5)}
    new = {c.id: (a, c) for c, a, _ in golden.load(fresh)}
    assert set(old) <= set(new)  # the file may hold more cases than were pinned
    for case_id, (a_old, _) in old.items():
        a_new = new[case_id][0]
        np.testing.assert_array_equal(a_old.inputs[0], a_new.inputs[0])
        for direction in a_old.weights:
            if isinstance(a_old.weights[direction], dict):
                for name in a_old.weights[direction]:
                    np.testing.assert_array_equal(a_old.weights[direction][name], a_new.weights[direction][name])
            else:
                np.testing.assert_array_equal(a_old.weights[direction], a_new.weights[direction])
        assert sorted(a_old.golden_outputs) == sorted(a_new.golden_outputs)
        for name, value in a_old.golden_outputs.items():
            np.testing.assert_allclose(a_new.golden_outputs[name], value, atol=1e-5, rtol=1e-5)


def test_expect_golden_fails_when_the_recorded_output_moved(tmp_path, capsys):
    """A case with expect.golden compares Keras with the recorded outputs, not only the reference."""
    moved = tmp_path / "moved.h5"
    shutil.copy(PINNED_H5, moved)
    with h5py.File(moved, "r+") as f:
        f["cases/golden-cells[class:LSTM+cpu]/outputs/h"][1, 2] -= 2e-4  # 20x float32's atol
    (tmp_path / "cases.yaml").write_text(
        "cases:\n  - id: uses-golden\n    about: x\n    layer: {class: LSTM, units: 4, return_sequences: true,"
        " return_state: true}\n    input: {batch: 3, timesteps: 5, features: 3}\n"
        "    expect: {golden: \"moved.h5::golden-cells[class:LSTM+cpu]\"}\n")
    assert main(["run", "-n", "0", str(tmp_path / "cases.yaml")]) == 1
    out = capsys.readouterr().out
    assert "h vs golden: 1 / 12 elements differ" in out


def test_expect_golden_names_a_missing_file(tmp_path, capsys):
    (tmp_path / "cases.yaml").write_text(
        "cases:\n  - id: uses-golden\n    about: x\n    layer: {class: LSTM, units: 4}\n"
        "    input: {batch: 3, timesteps: 5, features: 3}\n    expect: {golden: nowhere.h5}\n")
    assert main(["validate", str(tmp_path / "cases.yaml")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"{tmp_path / 'cases.yaml'}:6: case 'uses-golden': expect.golden: no such golden file (paths are "
        "relative to the case file) (expected an HDF5 file written by keras-equiv record, got 'nowhere.h5')")


def test_expect_golden_with_a_foreign_file_is_an_error_verdict(tmp_path, capsys):
    with h5py.File(tmp_path / "foreign.h5", "w") as f:
        f.create_dataset("x", data=np.arange(3))
    (tmp_path / "cases.yaml").write_text(
        "cases:\n  - id: uses-foreign\n    about: x\n    layer: {class: LSTM, units: 4}\n"
        "    input: {batch: 3, timesteps: 5, features: 3}\n    expect: {golden: foreign.h5}\n")
    assert main(["run", "-n", "0", str(tmp_path / "cases.yaml")]) == 1
    out = capsys.readouterr().out
    assert "ERROR uses-foreign[cpu]" in out and "not a keras-equiv golden file" in out
    assert "Traceback" not in out


def _replace(f, name: str, value) -> None:
    del f[name]
    f.create_dataset(name, data=value)


LSTM = "cases/golden-cells[class:LSTM+cpu]"
# How a copy of the pinned file is spoilt -> what verify says after "PATH: malformed golden file: ".
SPOILT = {
    "missing_weight": (lambda f: f[LSTM + "/weights"].pop("kernel"),
                       "case 'golden-cells[class:LSTM+cpu]': no weights/kernel"),
    "format_version_a_string": (lambda f: f.attrs.__setitem__("format_version", "1"),
                                "format_version must be an integer, got '1' (a string)"),
    "stray_dataset": (lambda f: f[LSTM].create_dataset("notes", data=[1]),
                      "case 'golden-cells[class:LSTM+cpu]': stray dataset 'notes' (not part of the golden layout)"),
    "mask_on_a_case_without_one": (lambda f: f[LSTM].create_dataset("mask", data=np.ones((3, 5), np.uint8)),
                                   "case 'golden-cells[class:LSTM+cpu]': mask recorded for a case without one "
                                   "(its case JSON has mask_via null)"),
    "complex_output": (lambda f: _replace(f, LSTM + "/outputs/h", np.zeros((3, 4), complex)),
                       "case 'golden-cells[class:LSTM+cpu]': outputs/h holds complex numbers (complex128), "
                       "expected real ones"),
    "input_shape": (lambda f: _replace(f, LSTM + "/inputs/call1", np.zeros((3, 5, 2))),
                    "case 'golden-cells[class:LSTM+cpu]': inputs/call1 has shape (3, 5, 2), expected (3, 5, 3) "
                    "(batch, timesteps, features)"),
    "output_not_of_the_case": (lambda f: f[LSTM + "/outputs"].create_dataset("h_bw", data=np.zeros((3, 4))),
                               "case 'golden-cells[class:LSTM+cpu]': outputs ['h_bw'] are not outputs of this case "
                               "(it returns output, h, c)"),
    "no_case": (lambda f: [f["cases"].pop(k) for k in list(f["cases"])],
                "/cases holds no case (keras-equiv record never writes an empty file)"),
}


@pytest.mark.parametrize("kind", sorted(SPOILT))
def test_a_malformed_golden_file_exits_2_with_what_is_wrong(tmp_path, capsys, kind):
    """Never a traceback, never "Keras raised": a missing weight used to leave Keras's initializers in place."""
    spoilt = tmp_path / "spoilt.h5"
    shutil.copy(PINNED_H5, spoilt)
    spoil, message = SPOILT[kind]
    with h5py.File(spoilt, "r+") as f:
        spoil(f)
    assert main(["verify", str(spoilt)]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"keras-equiv: error: {spoilt}: malformed golden file: {message}\n"
    assert "Keras raised" not in captured.out + captured.err


def test_record_of_no_case_writes_nothing(tmp_path, capsys):
    (tmp_path / "cases.yaml").write_text(
        "cases:\n  - id: never-here\n    about: skipped under every flavour\n    layer: {class: GRU, units: 2}\n"
        "    input: {batch: 2, timesteps: 3, features: 2}\n    requires: {keras: 2, backend: jax}\n")
    out = tmp_path / "none.h5"
    assert main(["record", str(tmp_path / "cases.yaml"), "--out", str(out)]) == 2
    assert capsys.readouterr().err == ("keras-equiv: error: recorded no case: every case failed, errored or was "
                                       "skipped (e.g. --device gpu with no GPU); nothing written\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cases.yaml"]


def test_bfloat16_records_and_verifies(tmp_path, capsys):
    """HDF5 has no bfloat16: it used to be stored as opaque bytes that verify could not read."""
    (tmp_path / "cases.yaml").write_text(
        "cases:\n  - id: tiny-bf16\n    about: x\n    layer: {class: GRU, units: 2, return_state: true,"
        " recurrent_initializer: glorot_uniform}\n    input: {batch: 2, timesteps: 3, features: 2}\n"
        "    dtype: bfloat16\n")
    out = tmp_path / "bf16.h5"
    assert main(["record", str(tmp_path / "cases.yaml"), "--out", str(out)]) == 0
    with h5py.File(out, "r") as f:
        g = f["cases/tiny-bf16[cpu]"]
        assert (g.attrs["policy"], g.attrs["compute"]) == ("bfloat16", "bfloat16")
        for name in ("outputs/output", "outputs/h", "weights/kernel"):
            assert g[name].dtype == np.float32 and g[name].attrs["dtype"] == "bfloat16"
    [(_, _, provenance)] = golden.load(out)
    assert provenance["output_dtypes"] == {"output": "bfloat16", "h": "bfloat16"}
    assert main(["verify", str(out)]) == 0
    assert "PASS  tiny-bf16[cpu]" in capsys.readouterr().out


def test_expect_golden_with_arrays_of_another_layer_is_an_error_verdict(tmp_path, capsys):
    """Recorded LSTM weights cannot feed a GRU: said as a golden-file problem, not as what Keras raised."""
    cases = golden_user(tmp_path, PINNED_H5, "uses-golden", "GRU", "golden-cells[class:LSTM+cpu]")
    assert main(["run", "-n", "0", str(cases)]) == 1
    out = capsys.readouterr().out
    assert (f"{tmp_path / 'pinned.h5'}: recorded case 'golden-cells[class:LSTM+cpu]' cannot feed case "
            "'uses-golden[cpu]': its weights are") in out
    assert "ERROR" in out and "Keras raised" not in out and "harness bug" not in out
