"""keras-equiv diagnose (harness/port.py): a user's port judged against a golden file, no Keras."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness import cli, golden, port
from harness.errors import UsageError
from harness.keras_api import with_defaults
from harness.reference import recurrent

GOLDEN = Path(__file__).parent.parent / "data" / "golden-0.1.h5"
GRU = "golden-cells[class:GRU+cpu]"
BIDI = "golden-bidirectional-masked[cpu]"


def recorded(case_id: str):
    (case, arrays, provenance), = golden.load(GOLDEN, case_id)
    return case, arrays, provenance


def outputs(case_id: str) -> dict[str, np.ndarray]:
    """What a correct port returns: Keras's recorded outputs."""
    return {str(k): v for k, v in recorded(case_id)[1].golden_outputs.items()}


def npz(tmp_path: Path, arrays: dict, name: str = "port.npz") -> str:
    path = tmp_path / name
    np.savez(path, **arrays)
    return str(path)


def test_a_port_that_returns_kerass_outputs_agrees(tmp_path, capsys):
    code = cli.main(["diagnose", str(GOLDEN), npz(tmp_path, outputs(GRU)), "--case", GRU])
    out = capsys.readouterr().out
    assert code == 0
    assert out.splitlines()[0] == f"AGREES  {GRU}: the port against Keras's recorded outputs"


def test_a_gru_port_with_z_and_r_swapped_is_named(tmp_path, capsys):
    case, arrays, _ = recorded(GRU)
    w = arrays.weights
    u = case.layer["units"]

    def swap_zr(a):  # the port's mistake: it reads Keras's blocks [z | r | h] as [r | z | h]
        return np.concatenate([a[..., u:2 * u], a[..., :u], a[..., 2 * u:]], axis=-1)

    wrong = recurrent.run(with_defaults(dict(case.layer)), arrays.inputs[0].astype(np.float32),
                          {k: swap_zr(v) for k, v in w.items()}, initial_state=arrays.initial_state)
    code = cli.main(["diagnose", str(GOLDEN), npz(tmp_path, {"output": wrong["output"]}), "--case", GRU])
    out = capsys.readouterr().out
    assert code == 1
    assert out.splitlines()[0].startswith(f"DIFFERS  {GRU}")
    assert "layout: the outputs are reproduced within tolerance" in out
    assert "by gate order [r, z, h] instead of Keras's [z, r, h]" in out
    assert "first divergence: timestep 0 (processing step 0)" in out


def test_bidirectional_halves_swapped_are_named(tmp_path, capsys):
    y = outputs(BIDI)["output"]  # a port that returns only the sequence, its halves the wrong way round
    half = y.shape[-1] // 2
    swapped = {"output": np.concatenate([y[..., half:], y[..., :half]], axis=-1)}
    code = cli.main(["diagnose", str(GOLDEN), npz(tmp_path, swapped), "--case", BIDI,
                     "--json", str(tmp_path / "d.json")])
    out = capsys.readouterr().out
    assert code == 1
    assert "halves swapped" in out.splitlines()[-1], out
    doc = json.loads((tmp_path / "d.json").read_text())
    assert doc["format"] == "keras-equiv-diagnosis" and doc["agrees"] is False
    assert [o["output"] for o in doc["outputs"] if not o["passed"]] == ["output"]
    assert doc["diagnosis"]["layouts"][0]["family"] == "Bidirectional"
    assert doc["diagnosis"]["timesteps"][0]["first_over"] is not None


def test_a_file_of_several_cases_needs_case(tmp_path):
    with pytest.raises(UsageError, match=r"holds 5 cases: name the one the port ran with --case"):
        port.main(cli._parser().parse_args(["diagnose", str(GOLDEN), npz(tmp_path, outputs(GRU))]),
                  None, None)


@pytest.mark.parametrize("arrays, message", [
    ({"outptu": np.zeros(3)}, r"outptu: not outputs of this case \(it returns output, h\)"),
    ({"output": np.array(["a"])}, r"output: holds <U1 values, expected real numbers"),
])
def test_bad_port_files_name_the_problem(tmp_path, capsys, arrays, message):
    code = cli.main(["diagnose", str(GOLDEN), npz(tmp_path, arrays), "--case", GRU])
    err = capsys.readouterr().err
    assert code == 2
    assert re.search(message, err), err


def test_a_npy_port_is_the_first_output(tmp_path):
    path = tmp_path / "port.npy"
    np.save(path, outputs(GRU)["output"])
    assert list(port.read_port(path, ["output", "h"])) == ["output"]


def test_other_suffixes_are_refused(tmp_path):
    path = tmp_path / "port.csv"
    path.write_text("1,2\n")
    with pytest.raises(UsageError, match=r"port.csv: a port's outputs are .npz, .npy or .h5 \(got .csv\)"):
        port.read_port(path, ["output"])


def test_diagnose_never_imports_keras(tmp_path):
    script = ("import sys; from harness import cli; code = cli.main(sys.argv[1:]); "
              "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf_keras', 'jax', "
              "'torch'))); sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", script, "diagnose", str(GOLDEN), npz(tmp_path, outputs(GRU)),
                           "--case", GRU], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_an_output_of_the_wrong_shape_differs_and_the_rest_is_still_diagnosed(tmp_path, capsys):
    given = outputs(GRU)
    short = {"output": given["output"][:, :-1], "h": given["h"] + 0.5}  # a step short; h off
    code = cli.main(["diagnose", str(GOLDEN), npz(tmp_path, short), "--case", GRU])
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL output: shape" in out and "FAIL h:" in out
    assert "error by timestep" in out and "    h  err/tol" in out and "    output  err/tol" not in out
