"""keras-equiv export against layers Keras really ran: configurations the bundled golden file does not hold
(Bidirectional without a mask, halves side by side; go_backwards with no bias; SimpleRNN relu)."""
from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from harness import export
from harness.cli import main

pytest.importorskip("keras")

CASES = """
cases:
  - id: export-bidi-gru
    about: a Bidirectional GRU, its halves side by side, from initial states
    layer:
      class: Bidirectional
      merge_mode: null
      layer: {class: GRU, units: 3, return_sequences: true, return_state: true}
    input: {batch: 2, timesteps: 4, features: 3}
    initial_state: random
  - id: export-lstm-backwards
    about: an LSTM run backwards without a bias, its last output and states
    layer: {class: LSTM, units: 3, go_backwards: true, use_bias: false, return_state: true}
    input: {batch: 2, timesteps: 4, features: 2}
  - id: export-rnn-relu
    about: a SimpleRNN with relu, every output
    layer: {class: SimpleRNN, units: 3, activation: relu, return_sequences: true}
    input: {batch: 2, timesteps: 4, features: 2}
"""
SUFFIX = {"torch": "pt", "onnx": "onnx", "npz": "npz"}
TAKEN = [("export-bidi-gru", "torch"), ("export-bidi-gru", "onnx"), ("export-bidi-gru", "npz"),
         ("export-lstm-backwards", "onnx"), ("export-lstm-backwards", "npz"),
         ("export-rnn-relu", "torch"), ("export-rnn-relu", "npz")]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("export")
    (folder / "cases.yaml").write_text(CASES)
    out = folder / "recorded.h5"
    assert main(["record", str(folder / "cases.yaml"), "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("case_id, target", TAKEN)
def test_exports_of_what_keras_ran_are_proven(recorded, tmp_path, capsys, case_id, target):
    if target != "npz":
        pytest.importorskip(target, reason=f"{target} is not installed (keras-equiv[export])")
    p = argparse.ArgumentParser()
    export.add_arguments(p)
    out = tmp_path / f"layer.{SUFFIX[target]}"
    code = export.main(p.parse_args([str(recorded), "--to", target, "--out", str(out), "--case", f"{case_id}[cpu]"]))
    text = capsys.readouterr().out
    assert code == 0, text
    assert text.startswith(f"PROVEN  {case_id}[cpu] -> {out} ({target}): ")
    assert "FAIL" not in text
