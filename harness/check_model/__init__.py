"""``keras-equiv check-model MODEL``: check the recurrent layers of a user's saved model.

Every LSTM/GRU/SimpleRNN/Bidirectional layer, in nested models too, is run on the activations the
model really gives it (the input file, or seeded random inputs) and compared with the NumPy
reference on the layer's own weights; then the model's parameter count is checked three ways.

How a layer's inputs are found: the model runs once, eagerly, with each recurrent layer's
``call`` wrapped to record what Keras hands it (sequences, mask, initial_state, training) and
what it returns.  A sub-model from the model inputs to ``layer.input`` would give the same
activation but not always the same mask: under Keras's call rules (KERAS_RNN_SEMANTICS.md §6) a
layer called with tensor ``initial_state`` gets no mask although its input carries one (a decoder
fed an encoder's states).  Recording the call sees what Keras really passes, at any depth of
nesting, for every call of a shared layer, in one forward pass.  The layer is then run again
alone on exactly that, in Keras and in the reference.

- ``load``: recognising the file, the legacy CuDNN explanation, tf_keras's time_major, configs
  naming classes Keras cannot rebuild;
- ``from_file``: such a legacy .h5 checked layer by layer from its config and weights alone;
- ``inputs``: the ``--input`` file or seeded random inputs;
- ``calls``: walking the model, recording each recurrent layer's call, checking it alone;
- ``warned``: Keras's warnings during load and run, and where they contradict the recording;
- ``report``: the verdicts as text and JSON.

Keras is reached through session.keras(), inside functions only (DESIGN.md: only a run pays for it).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .. import session
from ..errors import CheckModelError
from ..outputs import write_atomic
from . import calls, from_file, inputs, load, record, warned
from .report import FROM_FILE, LayerResult, Report

__all__ = ["CheckModelError", "LayerResult", "Report", "add_arguments", "check", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """MODEL, --input, --device and --json for the ``check-model`` subcommand."""
    parser.add_argument("model", metavar="MODEL", help="a saved Keras model: .keras, or legacy .h5")
    parser.add_argument("--input", metavar="FILE.npy|FILE.h5",
                        help="the model input to check with (.npy, or .h5 holding one dataset); "
                             f"default: seeded random inputs, batch {inputs.RANDOM_BATCH}")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu",
                        help="where Keras runs the model (TF32 off, as for cases)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--record", metavar="FILE.h5",
                        help="also write every recurrent layer call, as the model ran it, to a golden file "
                             "(for keras-equiv diagnose and export)")


def main(args: argparse.Namespace) -> int:
    """Print the report; 0 every layer and the parameter count agree, 1 something failed, 2 bad input."""
    try:
        report = check(args.model, getattr(args, "input", None), getattr(args, "device", "cpu"),
                       getattr(args, "record", None))
    except CheckModelError as exc:
        print(f"keras-equiv check-model: error: {exc}", file=sys.stderr)
        return 2
    print(report.text())
    json_path = getattr(args, "json", None)
    if json_path:  # its path was checked before the model ran (cli.py, check_output_path)
        text = json.dumps(report.to_json(), indent=1, allow_nan=False) + "\n"
        try:
            write_atomic(json_path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
        except OSError as exc:
            print(f"keras-equiv check-model: error: --json {json_path}: not written "
                  f"({exc.strerror or exc}); a file already there is left as it was", file=sys.stderr)
            return 2
    return 0 if report.passed else 1


def check(model_path: str, input_path: str | None = None, device: str = "cpu", record_to: str | None = None) -> Report:
    """Load the model, run it, check every recurrent layer call and the parameter count (``record_to``:
    also write the calls to that golden file)."""
    path = load.model_file(model_path)
    if device == "gpu" and not session.gpu_available():
        raise CheckModelError("--device gpu: no GPU visible to Keras")
    session.set_tf32(False)  # float32 stays float32 (§11) on either device, so the float32 tolerance holds
    caught: list[warned.Warned] = []
    v = session.versions()
    header = (f"check-model {model_path}: Keras {v['keras']} ({v['backend']} {v.get(v['backend'], '')}), "
              f"device {device}")
    with session.device_scope(device):
        with warned.capture("loading the model", caught):
            loaded = load.load(path)
        if loaded.model is None:  # a legacy .h5 Keras cannot rebuild: each layer alone, from the file
            with warned.capture("rebuilding the layers", caught):
                results, notes, input_text = from_file.check(path, loaded.unrebuildable, device)
            if input_path is not None:
                notes.append(f"--input {input_path} not used: there is no model to feed it to")
            if record_to:
                notes.append(f"--record {record_to}: not written: the model cannot be run, so no layer call "
                             "was recorded")
            return Report(str(model_path), header, input_text, results, None, notes,
                          warnings=warned.summarise(caught), checked_from=FROM_FILE)
        model, notes = loaded.model, loaded.notes
        with warned.capture("running the model", caught):
            arrays, input_text = inputs.model_inputs(model, input_path)
            nested = list(calls.walk_nested(model, model.name))
            found = [(path, layer) for path, layer, _ in nested]
            checked = [layer for _, layer in found if type(layer).__name__ in calls.CHECKED]
            recorded = calls.record_calls(model, checked, arrays)
        results = calls.check_layers(found, recorded, device)
        params = calls.param_counts(model, found, recorded)
        if record_to:
            count = record.record(model_path, found, recorded, record_to, device)
            notes.append(f"recorded {count} recurrent layer call(s) to {record_to} (keras-equiv diagnose, export)")
    warnings = warned.summarise(caught)
    contradictions = warned.contradictions(warnings, nested, recorded)
    return Report(str(model_path), header, input_text, results, params, [*notes, *warned.notes(contradictions)],
                  warnings=warnings, contradictions=contradictions)
