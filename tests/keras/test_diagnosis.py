"""A failing case says why (harness/diagnosis/ through runner.py, report.py and the CLI), on a Keras
whose layout is planted: the layer runs on weights with two gate blocks swapped but reports the
weights it was given, as a Keras layout bug would.  And the README's port walkthrough, end to end."""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness import data, keras_layer, report, runner, session
from harness.cli import main
from harness.result import Verdict
from harness.select import select

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "lstm_port.py"
CASE = "seed-rnn-basic-lstm-seq-state[cpu]"


def planted(case_id: str, order: tuple[int, ...]):
    """(case, a KerasRun of the layer computing with its gate blocks in ``order``, reporting Keras's own)."""
    (case,) = select([case_id])
    arrays = data.make_arrays(case)
    honest = keras_layer.run(case, arrays.inputs, arrays.mask, arrays.initial_state, arrays.weights)

    def permute(a):
        blocks = np.split(a, len(order), axis=-1)
        return np.concatenate([blocks[i] for i in order], axis=-1)

    if "forward" in honest.weights:
        moved = {d: {k: permute(v) for k, v in w.items()} for d, w in honest.weights.items()}
    else:
        moved = {k: permute(v) for k, v in honest.weights.items()}
    wrong = keras_layer.run(case, arrays.inputs, arrays.mask, arrays.initial_state, moved)
    return case, dataclasses.replace(wrong, weights=honest.weights)


def test_a_planted_keras_layout_is_named_with_the_cell_that_disagrees():
    case, run = planted(CASE, (0, 1, 3, 2))
    result = runner.run_case(case, keras_cache={case.id: run})
    assert result.verdict == Verdict.FAIL
    found = result.findings
    assert found.layouts[0].describe == "gate order [i, f, o, c] instead of Keras's [i, f, c, o]"
    assert found.layouts[0].reproduces and not found.layouts[1].reproduces
    (d,) = found.divergences
    assert (d.timestep, d.cell_agrees) == (0, False)  # Keras's own cell disagrees on identical inputs
    text = report.failure_text(result)
    assert "error by timestep (worst |err| / allowed; over 1 fails):" in text
    assert "Keras's cell disagrees with the reference on identical inputs" in text
    assert "layout: the outputs are reproduced within tolerance" in text
    doc = json.loads(report.to_json([result]))
    assert doc["cases"][0]["diagnosis"]["divergences"][0]["finding"] == "cell"


def test_a_bidirectional_planted_layout_is_found_in_both_directions():
    case, run = planted("seed-rnn-basic-bidi-seq-state[cpu]", (1, 0, 2, 3))
    result = runner.run_case(case, keras_cache={case.id: run})
    assert result.findings.layouts[0].describe == "gate order [f, i, c, o] instead of Keras's [i, f, c, o]"
    assert [d.cell_agrees for d in result.findings.divergences] == [False, False]


def test_a_passing_case_is_not_diagnosed():
    (case,) = select([CASE])
    result = runner.run_case(case)
    assert result.verdict == Verdict.PASS and result.findings is None


def test_the_readme_port_walkthrough(tmp_path, capsys):
    golden = tmp_path / "lstm.h5"
    assert main(["record", CASE, "--out", str(golden)]) == 0
    port = tmp_path / "port.npz"
    subprocess.run([sys.executable, str(EXAMPLE), str(golden), CASE, str(port)], check=True)
    capsys.readouterr()
    plotting = importlib.util.find_spec("matplotlib") is not None  # keras-equiv[plot]
    plot = ["--plot", str(tmp_path / "plots")] if plotting else []
    assert main(["diagnose", str(golden), str(port), *plot]) == 1
    out = capsys.readouterr().out
    assert "by gate order [i, f, o, c] instead of Keras's [i, f, c, o]" in out
    if plotting:
        assert (tmp_path / "plots" / "seed-rnn-basic-lstm-seq-state_cpu_.png").is_file()
    fixed = tmp_path / "fixed.py"
    fixed.write_text(EXAMPLE.read_text().replace('GATE_ORDER = "ifoc"', 'GATE_ORDER = "ifco"'))
    subprocess.run([sys.executable, str(fixed), str(golden), CASE, str(port)], check=True)
    assert main(["diagnose", str(golden), str(port)]) == 0


@pytest.mark.parametrize("flag", ["--plot"])
def test_plot_refuses_a_file_as_its_folder(tmp_path, capsys, flag):
    pytest.importorskip("matplotlib")
    target = tmp_path / "file"
    target.write_text("")
    assert main(["run", "-n", "0", CASE, flag, str(target)]) == 2
    assert f"--plot {target}: not a folder" in capsys.readouterr().err


# A case Keras fails by its summation order alone: float64 with a tolerance of zero (float64, so the
# ill-conditioning refusal does not apply), diagnosed like any failing case.
EXACT = """
cases:
  - id: exact-gru
    layer: {class: GRU, units: 4, return_sequences: true}
    input: {batch: 3, timesteps: 6, features: 5}
    dtype: float64
    tolerance: {atol: 0.0, rtol: 0.0}
"""


@pytest.fixture
def keras_loaded():
    """Keras imported before pytester snapshots sys.modules (importing TensorFlow twice aborts)."""
    pytest.importorskip("keras")


def test_pytest_plots_a_diagnosed_failure(keras_loaded, pytester):
    pytest.importorskip("matplotlib")
    if session.flavour() == "jax":
        pytest.skip("Keras on jax computes float64 in float32 (cases/flavours/backends.yaml "
                    "flavour-float64-jax-torch): the case then fails on its dtype, which is not diagnosed")
    (pytester.path / "cases").mkdir()
    (pytester.path / "cases" / "exact.yaml").write_text(EXACT)
    result = pytester.runpytest_inprocess("cases", "-p", "no:cacheprovider", "--keras-equiv-plot", "plots")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*error by timestep (worst |err| / allowed; over 1 fails):*",
                                 "*layout: *"])
    assert (pytester.path / "plots" / "exact-gru_cpu_.png").is_file()


def test_diagnose_and_export_take_a_case_id(tmp_path, capsys):
    port = tmp_path / "port.npz"
    golden = tmp_path / "lstm.h5"
    assert main(["record", CASE, "--out", str(golden)]) == 0
    subprocess.run([sys.executable, str(EXAMPLE), str(golden), CASE, str(port)], check=True)
    capsys.readouterr()
    assert main(["diagnose", CASE, str(port)]) == 1  # recorded here first: the same seeded case
    assert "by gate order [i, f, o, c] instead of Keras's [i, f, c, o]" in capsys.readouterr().out
    assert main(["export", CASE, "--to", "npz", "--out", str(tmp_path / "w.npz")]) == 0
    assert capsys.readouterr().out.startswith(f"PROVEN  {CASE}")
    assert main(["export", "seed-rnn-basic-lstm", "--to", "npz", "--out", str(tmp_path / "x.npz")]) == 2
    assert "seed-rnn-basic-lstm: selects 2 cases; give one case id (or a golden file)" in capsys.readouterr().err
