"""``keras-equiv check-model`` on files Keras 3 cannot reload, on Keras's own warnings, and its --json.

Keras 3.15.1 saving a functional model with a mask to legacy .h5 writes the mask operations
(NotEqual, Any) into the config and cannot load the file again; check-model then checks each
recurrent layer alone from the file's config and weights.  Every model is built and saved here
with real Keras, and the command runs through ``harness.cli.main``, as a user runs it.  The
message sentences are API: they are pinned whole.
"""
from __future__ import annotations

import dataclasses
import errno
import json
import math
import pathlib
import shutil

import h5py
import numpy as np
import pytest

from harness import check_model
from harness.check_model import calls
from harness.cli import main

from test_check_model import row

keras = pytest.importorskip("keras")

FROM_FILE = "from the file's weights and config"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """``keras-equiv check-model ARGV``: (exit code, stdout, stderr)."""
    code = main(["check-model", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def unrebuildable_notes(path, classes: str = "NotEqual, Any") -> list[str]:
    """The note lines of a masking .h5 Keras cannot reload (the sentences users read)."""
    v = keras.__version__
    return [
        f"  note:  {path}: Keras {v} cannot rebuild this model from its legacy .h5 config: it holds layer classes "
        f"{classes}, which Keras cannot deserialize (ValueError: Unknown layer: 'NotEqual')",
        f"  note:  {classes}: operations that Keras 3 itself writes into the legacy .h5 config of a model that "
        "computes a mask (Masking, Embedding(mask_zero=True)) and cannot read back: a Keras 3 limitation of the "
        "legacy .h5 format for masking models",
        '  note:  to check the whole model, re-save it as .keras from the code that built it: '
        'model.save("model.keras")',
        "  note:  checked from the file instead: each recurrent layer rebuilt alone from its config and given the "
        "weights of the file's model_weights, on seeded random inputs (no model run: no recorded inputs, mask or "
        "initial state, and no parameter count)",
    ]


@pytest.fixture(scope="module")
def masking_h5(tmp_path_factory):
    """A functional model behind a Masking: a nested Sequential with a GRU, a Bidirectional(LSTM),
    an LSTM and a Dense, saved as legacy .h5 (which Keras 3 then cannot load)."""
    folder = tmp_path_factory.mktemp("h5")
    keras.utils.set_random_seed(11)
    inp = keras.Input((None, 3), name="x")
    masked = keras.layers.Masking(0.0, name="masking")(inp)
    encoder = keras.Sequential([keras.Input((None, 3)), keras.layers.GRU(4, return_sequences=True, name="gru")],
                               name="encoder")
    h = keras.layers.Bidirectional(keras.layers.LSTM(2, return_sequences=True, name="lstm2"),
                                   name="bi")(encoder(masked))  # named: forward_lstm2, backward_lstm2 in any process
    out = keras.layers.LSTM(3, name="lstm")(h)
    model = keras.Model(inp, keras.layers.Dense(1, name="dense")(out), name="masked_h5")
    path = folder / "masked.h5"
    model.save(path)
    return path


def planted(tmp_path, source, edit) -> pathlib.Path:
    """A copy of ``source`` with ``edit(h5py.File)`` applied."""
    path = tmp_path / "planted.h5"
    shutil.copy(source, path)
    with h5py.File(path, "r+") as f:
        edit(f)
    return path


# ---------------------------------------------------------------- a masking .h5 Keras cannot reload

def test_keras_itself_cannot_reload_the_masking_h5(masking_h5):
    """The Keras behaviour the rest of this file is about (Keras 3.15.1)."""
    with h5py.File(masking_h5, "r") as f:
        classes = [layer["class_name"] for layer in json.loads(f.attrs["model_config"])["config"]["layers"]]
    assert "NotEqual" in classes and "Any" in classes
    with pytest.raises(ValueError, match=r"^Unknown layer: 'NotEqual'\. Please ensure you are using a "):
        keras.saving.load_model(masking_h5, compile=False)


def test_masking_h5_is_explained_and_its_layers_checked_from_the_file(masking_h5, capsys, tmp_path):
    report = tmp_path / "report.json"
    code, out, _ = run(capsys, str(masking_h5), "--json", str(report))
    assert code == 0, out
    lines = out.splitlines()
    assert lines[1] == ("  input: random normal (2, 5, features) for each layer alone (seed 0); a mask with row 2's "
                        "last 1 step masked (the model computes a mask)")
    assert lines[2:6] == unrebuildable_notes(masking_h5)
    for path, cls in (("masked_h5/encoder/gru", "GRU"), ("masked_h5/bi", "Bidirectional"),
                      ("masked_h5/lstm", "LSTM")):
        assert row(out, path).split()[:3] == ["PASS", path, cls]
        assert row(out, path).endswith(f"mask (1 of 10 steps masked)  {FROM_FILE}")
    assert "params: not checked (no model: Keras cannot rebuild it)" in lines
    assert lines[-1] == "3 recurrent layers checked from the file: 3 pass; OK"
    data = json.loads(report.read_text())
    assert (data["checked_from"], data["params"], data["passed"]) == ("file", None, True)
    assert [(layer["path"], layer["verdict"]) for layer in data["layers"]] == [
        ("masked_h5/encoder/gru", "pass"), ("masked_h5/bi", "pass"), ("masked_h5/lstm", "pass")]
    assert data["layers"][1]["notes"] == ["mask (1 of 10 steps masked)", FROM_FILE]


def test_the_checked_layer_holds_the_files_weights(masking_h5, capsys, tmp_path, monkeypatch):
    """A value planted in the file is the value in the layer that is checked (and in the reference)."""
    def edit(f):
        f["model_weights/bi/bi/backward_lstm2/lstm_cell/kernel"][0, 0] = 7.25

    path = planted(tmp_path, masking_h5, edit)
    seen = {}
    check_layer = calls.check_layer

    def spy(label, layer, call, device):
        seen[label] = {v.path: np.asarray(v.numpy()) for v in layer.weights}
        return check_layer(label, layer, call, device)

    monkeypatch.setattr(calls, "check_layer", spy)
    code, out, _ = run(capsys, str(path))
    assert code == 0, out
    assert seen["masked_h5/bi"]["backward_lstm2/lstm_cell/kernel"][0, 0] == np.float32(7.25)
    with h5py.File(masking_h5, "r") as f:  # the untouched weights are the file's too
        gru = f["model_weights/encoder/encoder/gru/gru_cell/recurrent_kernel"][()]
    np.testing.assert_array_equal(seen["masked_h5/encoder/gru"]["gru/gru_cell/recurrent_kernel"], gru)


def test_a_planted_wrong_weight_fails_that_layer(masking_h5, capsys, tmp_path):
    """The LSTM's bias replaced by one of the wrong size: that layer is an error, the others pass."""
    def edit(f):
        group = f["model_weights/lstm/lstm/lstm_cell"]
        del group["bias"]
        group.create_dataset("bias", data=np.zeros(11, dtype="float32"))

    path = planted(tmp_path, masking_h5, edit)
    code, out, _ = run(capsys, str(path))
    assert code == 1, out
    assert row(out, "masked_h5/encoder/gru").startswith("PASS ")
    assert row(out, "masked_h5/bi").startswith("PASS ")
    message = ("the file's weights do not match the layer rebuilt from its config: 'lstm/lstm_cell/bias' in "
               "model_weights/lstm is (11,), the layer rebuilt from its config has (12,)")
    assert row(out, "masked_h5/lstm").split()[:3] == ["ERROR", "masked_h5/lstm", "LSTM"]
    assert f"\nmasked_h5/lstm (LSTM): error\n  {message}\n" in out
    assert out.rstrip().endswith("3 recurrent layers checked from the file: 2 pass, 1 error; FAILED")


def test_a_missing_weight_is_an_error_row_not_a_skip(masking_h5, capsys, tmp_path):
    def edit(f):
        del f["model_weights/bi/bi/backward_lstm2/lstm_cell/bias"]

    path = planted(tmp_path, masking_h5, edit)
    code, out, _ = run(capsys, str(path))
    assert code == 1, out
    assert ("  the file's weights do not match the layer rebuilt from its config: no "
            "'bi/backward_lstm2/lstm_cell/bias' in model_weights/bi (it holds bi/forward_lstm2/lstm_cell/kernel, "
            "bi/forward_lstm2/lstm_cell/recurrent_kernel, bi/forward_lstm2/lstm_cell/bias, "
            "bi/backward_lstm2/lstm_cell/kernel, bi/backward_lstm2/lstm_cell/recurrent_kernel)") in out.splitlines()
    assert row(out, "masked_h5/bi").startswith("ERROR ")


def test_a_missing_weights_group_is_an_error_row(masking_h5, capsys, tmp_path):
    def edit(f):
        del f["model_weights/encoder"]

    code, out, _ = run(capsys, str(planted(tmp_path, masking_h5, edit)))
    assert code == 1, out
    assert row(out, "masked_h5/encoder/gru").split()[:3] == ["ERROR", "masked_h5/encoder/gru", "GRU"]
    assert "  no weights for it in the file: no model_weights/encoder group" in out.splitlines()


def test_an_unknown_layer_and_no_recurrent_layer_exits_2(capsys, tmp_path):
    path = tmp_path / "unknown.h5"
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="dense")], name="plain").save(path)
    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        config["config"]["layers"][1]["class_name"] = "NoSuchLayer"
        f.attrs["model_config"] = json.dumps(config)
    code, out, err = run(capsys, str(path))
    v = keras.__version__
    assert (code, out) == (2, "")
    assert err == (
        f"keras-equiv check-model: error: {path}: Keras {v} cannot rebuild this model from its legacy .h5 config: "
        "it holds layer class NoSuchLayer, which Keras cannot deserialize (ValueError: Unknown layer: "
        "'NoSuchLayer')\n"
        f"  NoSuchLayer: not a class of Keras {v} (a custom layer, or one of another Keras version: check-model "
        "does not have its code)\n"
        "  and its config has no LSTM, GRU, SimpleRNN or Bidirectional layer that could be checked alone from the "
        "file's weights\n")


# ---------------------------------------------------------------- Keras's warnings against what was recorded

MASK_WARNING = ("Layer 'conv' (of type Conv1D) was passed an input with a mask attached to it. However, this layer "
                "does not support masking and will therefore destroy the mask information. Downstream layers will "
                "not see the mask.")


def test_a_warning_the_recording_contradicts_is_called_out(capsys, tmp_path):
    """Embedding(mask_zero) -> Conv1D -> LSTM given the Embedding's mask explicitly: Keras warns that
    the Conv1D destroys the mask and no layer downstream sees it; the LSTM does get it."""
    ids = keras.Input((6,), dtype="int32", name="ids")
    embedding = keras.layers.Embedding(20, 4, mask_zero=True, name="emb")
    conv = keras.layers.Conv1D(4, 3, padding="same", name="conv")(embedding(ids))
    out = keras.layers.LSTM(3, name="lstm")(conv, mask=embedding.compute_mask(ids))
    path = tmp_path / "textcnn.keras"
    keras.Model(ids, out, name="textcnn").save(path)
    report = tmp_path / "report.json"
    code, out, _ = run(capsys, str(path), "--json", str(report))
    assert code == 0, out
    lines = out.splitlines()
    assert lines[2] == (f'  note:  Keras warned "{MASK_WARNING}", but textcnn/lstm did receive a mask '
                        "(10 of 12 steps valid)")
    assert lines[3] == (f"  keras warned: {MASK_WARNING} (keras/src/layers/layer.py:1039; loading the model, "
                        "running the model; 2 times)")
    assert row(out, "textcnn/lstm").startswith("PASS ")
    data = json.loads(report.read_text())
    assert data["keras_warnings"] == [{"message": MASK_WARNING, "category": "UserWarning",
                                       "source": "keras/src/layers/layer.py:1039",
                                       "during": "loading the model, running the model", "count": 2}]
    assert data["contradictions"] == [{"warning": MASK_WARNING, "layer": "textcnn/lstm", "valid_steps": 10,
                                       "steps": 12}]


def test_a_warning_the_recording_agrees_with_is_kept_without_a_note(capsys, tmp_path):
    """Masking -> Conv1D -> LSTM: the LSTM gets no mask, as Keras said."""
    x = keras.Input((None, 3), name="x")
    conv = keras.layers.Conv1D(3, 3, padding="same", name="conv")(keras.layers.Masking(0.0)(x))
    path = tmp_path / "conv.keras"
    keras.Model(x, keras.layers.LSTM(2, name="lstm")(conv), name="convm").save(path)
    code, out, _ = run(capsys, str(path))
    assert code == 0, out
    assert "note:" not in out and "did receive a mask" not in out
    assert f"  keras warned: {MASK_WARNING} (keras/src/layers/layer.py:1039; " in out
    assert "mask (" not in row(out, "convm/lstm")


# ---------------------------------------------------------------- --json: checked first, strict, atomic

def test_a_bad_json_path_stops_before_the_model_loads(masking_h5, capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(check_model, "check", lambda *a: pytest.fail("the model was checked"))
    bad = tmp_path / "missing" / "r.json"
    code, out, err = run(capsys, str(masking_h5), "--json", str(bad))
    assert (code, out) == (2, "")
    assert err == f"keras-equiv: error: --json {bad}: folder {tmp_path / 'missing'} does not exist\n"


def test_json_is_strict(masking_h5, capsys, tmp_path, monkeypatch):
    """A NaN or infinite error is the string "nan" / "inf" in the JSON, never NaN or Infinity."""
    compare = calls.compare
    monkeypatch.setattr(calls, "compare", lambda *a, **k: dataclasses.replace(
        compare(*a, **k), max_abs=math.nan, max_rel=math.inf))
    report = tmp_path / "r.json"
    code, out, _ = run(capsys, str(masking_h5), "--json", str(report))
    assert code == 0, out
    text = report.read_text()
    data = json.loads(text, parse_constant=lambda name: pytest.fail(f"non-strict JSON constant {name}"))
    assert {o["max_abs"] for layer in data["layers"] for o in layer["outputs"]} == {"nan"}


def test_a_failed_json_write_leaves_the_old_file(masking_h5, capsys, tmp_path, monkeypatch):
    """The disk fills up halfway through the report: the report that was there stays whole."""
    report = tmp_path / "r.json"
    report.write_text('{"old": true}\n')
    write_text = pathlib.Path.write_text

    def half_then_full(self, data, *args, **kwargs):
        write_text(self, data[: len(data) // 2], *args, **kwargs)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pathlib.Path, "write_text", half_then_full)
    code, out, err = run(capsys, str(masking_h5), "--json", str(report))
    monkeypatch.undo()
    assert code == 2
    assert out.rstrip().endswith("; OK")  # the report itself was printed
    assert err == (f"keras-equiv check-model: error: --json {report}: not written (No space left on device); "
                   "a file already there is left as it was\n")
    assert report.read_text() == '{"old": true}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]  # no temporary file left behind
