"""``keras-equiv check-model`` (harness/check_model/) on small models saved in tmp_path.

Parameter counts in the assertions are worked out by hand from docs/semantics.md §1-§4
(LSTM 4*(F*U + U*U + U), GRU reset_after 3*(F*U + U*U + 2U), Bidirectional twice its layer) and
the Keras formulas for Embedding (input_dim*output_dim) and Dense (F*U + U), never printed from Keras.
"""
from __future__ import annotations

import argparse
import json

import h5py
import numpy as np
import pytest

from harness import check_model, cli, golden, session
from harness.check_model import calls
from harness.reference import recurrent

keras = pytest.importorskip("keras")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """check_model.main through its own argparse, as the CLI wires it; (exit code, stdout, stderr)."""
    parser = argparse.ArgumentParser()
    check_model.add_arguments(parser)
    code = check_model.main(parser.parse_args(list(argv)))
    out, err = capsys.readouterr()
    return code, out, err


def row(out: str, path: str) -> str:
    """The verdict row of one layer path."""
    lines = [line for line in out.splitlines() if line.split()[1:2] == [path]]
    assert len(lines) == 1, f"no single row for {path} in:\n{out}"
    return lines[0]


# ---------------------------------------------------------------- models, saved once per module

@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Three small models, saved as .keras and (where Keras 3 can reload it) legacy .h5."""
    folder = tmp_path_factory.mktemp("models")
    keras.utils.set_random_seed(7)
    paths = {}

    # Embedding(mask_zero) + LSTM + Dense.  Params: Embedding 20*4 = 80; LSTM(3) on F=4:
    # 4*(4*3 + 3*3 + 3) = 96; Dense(2) on 3: 3*2 + 2 = 8; total 184.
    seq = keras.Sequential([keras.Input((6,), dtype="int32"), keras.layers.Embedding(20, 4, mask_zero=True),
                            keras.layers.LSTM(3, name="lstm"), keras.layers.Dense(2)], name="seq")
    for suffix in ("keras", "h5"):
        paths[f"seq.{suffix}"] = folder / f"seq.{suffix}"
        seq.save(paths[f"seq.{suffix}"])

    # Functional, with a nested Sequential holding a GRU, a Bidirectional(LSTM(return_sequences)),
    # an encoder LSTM returning its states and a decoder LSTM started from them, behind a Masking.
    # Params: GRU(4) on F=3: 3*(3*4 + 16 + 2*4) = 108; Bidirectional(LSTM(2)) on F=4:
    # 2*4*(4*2 + 4 + 2) = 112; LSTM(3) on F=4: 4*(12 + 9 + 3) = 96, twice; Dense(1): 3 + 1 = 4;
    # total 108 + 112 + 96 + 96 + 4 = 416.  (Legacy .h5 cannot hold it: Keras 3.15.1 writes the
    # mask ops NotEqual/Any into the h5 config and then cannot read them back.)
    inp = keras.Input((None, 3), name="x")
    masked = keras.layers.Masking(0.0)(inp)
    encoder = keras.Sequential([keras.Input((None, 3)), keras.layers.GRU(4, return_sequences=True, name="gru")],
                               name="encoder")
    h = keras.layers.Bidirectional(keras.layers.LSTM(2, return_sequences=True), name="bi")(encoder(masked))
    _, state_h, state_c = keras.layers.LSTM(3, return_state=True, name="enc_lstm")(h)
    dec = keras.layers.LSTM(3, name="dec_lstm")(h, initial_state=[state_h, state_c])
    model = keras.Model(inp, keras.layers.Dense(1)(dec), name="outer")
    paths["nested.keras"] = folder / "nested.keras"
    model.save(paths["nested.keras"])

    # Masking in front of an LSTM (Sequential: its .h5 reloads).  Params: 4*(2*3 + 9 + 3) = 72.
    masking = keras.Sequential([keras.Input((None, 2)), keras.layers.Masking(0.0),
                                keras.layers.LSTM(3, return_sequences=True, name="lstm")], name="masked")
    paths["masked.h5"] = folder / "masked.h5"
    masking.save(paths["masked.h5"])
    return paths


# ---------------------------------------------------------------- every layer passes

@pytest.mark.parametrize("name", ["seq.keras", "seq.h5"])
def test_embedding_lstm_dense_passes(saved, capsys, name):
    code, out, _ = run(capsys, str(saved[name]))
    assert code == 0, out
    assert row(out, "seq/lstm").startswith("PASS ")
    # Row 2 of the random ids is padded with 0 at its last 2 of 6 steps (mask_zero): the mask
    # reaches the LSTM, so the masked path of the reference is the one compared.
    assert "mask (2 of 12 steps masked)" in row(out, "seq/lstm")
    assert 'count_params() 184, summary "Total params" 184, formulas 184 (recurrent by formula 96 + ' \
           'other layers 88)  OK' in out
    assert out.rstrip().endswith("1 recurrent layer calls: 1 pass; OK")


def test_nested_functional_model_passes(saved, capsys, tmp_path):
    report = tmp_path / "report.json"
    code, out, _ = run(capsys, str(saved["nested.keras"]), "--json", str(report))
    assert code == 0, out
    for path, cls in (("outer/encoder/gru", "GRU"), ("outer/bi", "Bidirectional"),
                      ("outer/enc_lstm", "LSTM"), ("outer/dec_lstm", "LSTM")):
        assert row(out, path).split()[:3] == ["PASS", path, cls]
    # The Masking mask reaches the GRU inside the nested Sequential, and the layers after it.
    assert "mask (" in row(out, "outer/encoder/gru") and "mask (" in row(out, "outer/bi")
    # §6: a layer called with tensor initial_state gets no mask, although its input carries one.
    assert "initial_state from the model (2 tensors)" in row(out, "outer/dec_lstm")
    assert "mask (" not in row(out, "outer/dec_lstm")
    assert "count_params() 416, summary \"Total params\" 416, formulas 416" in out
    # Keras warns that the nested Sequential destroys the mask; the recording says otherwise.
    warning = ("Layer 'encoder' (of type Sequential) was passed an input with a mask attached to it. However, this "
               "layer does not support masking and will therefore destroy the mask information. Downstream layers "
               "will not see the mask.")
    assert (f'  note:  Keras warned "{warning}", but outer/encoder/gru (9 of 10 steps valid), outer/bi (9 of 10 '
            "steps valid) and outer/enc_lstm (9 of 10 steps valid) did receive a mask") in out.splitlines()
    data = json.loads(report.read_text())
    assert data["passed"] is True
    assert [c["layer"] for c in data["contradictions"]] == ["outer/encoder/gru", "outer/bi", "outer/enc_lstm"]
    assert [layer["path"] for layer in data["layers"]] == [
        "outer/encoder/gru", "outer/bi", "outer/enc_lstm", "outer/dec_lstm"]
    # Every output is compared with the reference and with the same layer's numbers in the model.
    bi = data["layers"][1]["outputs"]
    assert [(o["name"], o["against"]) for o in bi] == [("output", "reference"), ("output", "layer run alone")]


def test_masking_lstm_with_input_files(saved, capsys, tmp_path):
    x = np.random.default_rng(3).standard_normal((2, 4, 2)).astype("float32")
    x[1, 2:] = 0.0  # two masked steps in row 2
    np.save(tmp_path / "x.npy", x)
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f.create_dataset("group/inputs", data=x)
    for given in ("x.npy", "x.h5"):
        code, out, _ = run(capsys, str(saved["masked.h5"]), "--input", str(tmp_path / given))
        assert code == 0, out
        assert f"input: {tmp_path / given} (2, 4, 2) float32" in out
        assert row(out, "masked/lstm").startswith("PASS ")
        assert "mask (2 of 8 steps masked)" in row(out, "masked/lstm")
        assert "formulas 72 (recurrent by formula 72 + other layers 0)  OK" in out


# ---------------------------------------------------------------- a planted bug is reported

def test_planted_reference_bug_fails_with_exit_1(saved, capsys, monkeypatch):
    """The reference's LSTM cell reads the input kernel with gates i and f swapped."""
    good = recurrent.CELLS["LSTM"]

    def swapped(cfg, w):
        w = dict(w)
        i, f, c, o = np.split(w["kernel"], 4, axis=-1)
        w["kernel"] = np.concatenate([f, i, c, o], axis=-1)
        return good(cfg, w)

    monkeypatch.setitem(recurrent.CELLS, "LSTM", swapped)
    code, out, _ = run(capsys, str(saved["nested.keras"]))
    assert code == 1, out
    assert row(out, "outer/encoder/gru").startswith("PASS ")  # the GRU reference is untouched
    for path in ("outer/bi", "outer/enc_lstm", "outer/dec_lstm"):
        assert row(out, path).startswith("FAIL ")
    assert "output 'output' vs reference: " in out
    assert out.rstrip().endswith("4 recurrent layer calls: 1 pass, 3 fail; FAILED")


def test_a_harness_exception_is_that_layers_harness_bug_and_the_others_go_on(saved, capsys, monkeypatch):
    """A crash in the reference's LSTM cell (not in Keras) is an error row that says so."""
    def broken(cfg, w):
        raise ValueError("planted harness bug")

    monkeypatch.setitem(recurrent.CELLS, "LSTM", broken)
    code, out, _ = run(capsys, str(saved["nested.keras"]))
    assert code == 1, out
    assert row(out, "outer/encoder/gru").startswith("PASS ")
    assert row(out, "outer/enc_lstm").startswith("ERROR ")
    assert "harness bug: ValueError: planted harness bug" in out and "Traceback" in out


def test_planted_mask_bug_fails(saved, capsys, monkeypatch, tmp_path):
    """The reference ignores the mask: the masked steps of row 2 must then differ."""
    good = recurrent.run_rnn
    monkeypatch.setattr(recurrent, "run_rnn", lambda cfg, x, w, mask=None, *rest: good(cfg, x, w, None, *rest))
    x = np.random.default_rng(3).standard_normal((2, 4, 2)).astype("float32")
    x[1, 2:] = 0.0
    np.save(tmp_path / "x.npy", x)
    code, out, _ = run(capsys, str(saved["masked.h5"]), "--input", str(tmp_path / "x.npy"))
    assert code == 1, out
    assert row(out, "masked/lstm").startswith("FAIL ")


def test_layer_alone_differing_from_the_model_fails(saved, capsys, monkeypatch):
    """If the layer run alone did not reproduce its numbers inside the model, that is reported."""
    record = calls.record_calls

    def nudged(*args):
        recorded = record(*args)
        for made in recorded.values():
            for call in made:
                call.outputs = [o + np.float32(1e-3) for o in call.outputs]
        return recorded

    monkeypatch.setattr(calls, "record_calls", nudged)
    code, out, _ = run(capsys, str(saved["masked.h5"]))
    assert code == 1, out
    assert row(out, "masked/lstm").startswith("FAIL ")
    assert "output 'output' vs layer run alone: " in out
    assert "output 'output' vs reference: " not in out  # the reference still agrees with Keras


# ---------------------------------------------------------------- bad input: exit 2, one line

def test_input_with_wrong_shape_exits_2(saved, capsys, tmp_path):
    np.save(tmp_path / "bad.npy", np.zeros((2, 4, 5), dtype="float32"))
    code, out, err = run(capsys, str(saved["masked.h5"]), "--input", str(tmp_path / "bad.npy"))
    assert code == 2 and out == ""
    assert err == (f"keras-equiv check-model: error: --input {tmp_path / 'bad.npy'}: shape (2, 4, 5) does not "
                   "match the model's input shape (None, None, 2)\n")


def test_not_a_model_exits_2(capsys, tmp_path):
    text = tmp_path / "model.keras"
    text.write_text("not a model")
    weights_only = tmp_path / "weights.h5"
    with h5py.File(weights_only, "w") as f:
        f.create_dataset("kernel", data=np.zeros((2, 2)))
    for path, says in ((tmp_path / "missing.keras", "no such file"),
                       (text, "not a saved Keras model"),
                       (weights_only, "HDF5 file without a model_config attribute")):
        code, out, err = run(capsys, str(path))
        assert code == 2 and out == ""
        assert err.startswith(f"keras-equiv check-model: error: {path}: {says}")
        assert err.count("\n") == 1 and "Traceback" not in err


def _cudnn_h5(path) -> None:
    """What tf_keras 2.x writes for Sequential([Input((5, 3)), CuDNNLSTM(4)]), made with h5py alone:
    the model_config JSON and the weights in cuDNN's shapes (bias (8U,) = (32,), §11)."""
    config = {"class_name": "Sequential", "config": {"name": "sequential", "layers": [
        {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 5, 3], "dtype": "float32",
                                                "name": "input_1"}},
        {"class_name": "CuDNNLSTM", "config": {"name": "cu_dnnlstm", "units": 4, "return_sequences": False,
                                               "return_state": False, "go_backwards": False,
                                               "stateful": False, "time_major": False}}]}}
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(config)
        f.attrs["keras_version"] = "2.15.0"
        f.attrs["backend"] = "tensorflow"
        group = f.create_group("model_weights/cu_dnnlstm/cu_dnnlstm")
        for name, shape in (("kernel:0", (3, 16)), ("recurrent_kernel:0", (4, 16)), ("bias:0", (32,))):
            group.create_dataset(name, data=np.zeros(shape, dtype="float32"))


def test_legacy_cudnn_h5_is_explained_with_exit_2(capsys, tmp_path):
    path = tmp_path / "cudnn.h5"
    _cudnn_h5(path)
    code, out, err = run(capsys, str(path))
    assert code == 2 and out == ""
    assert err.startswith(f"keras-equiv check-model: error: {path}: legacy cuDNN layer(s) 'cu_dnnlstm' "
                          "(CuDNNLSTM, units=4); Keras 3 cannot load")
    for fact in ("bias is (8U,) = [input i,f,c,o | recurrent i,f,c,o]", "sum b[:4U] + b[4U:]",
                 "CuDNNGRU bias is (6U,)", "GRU(reset_after=True)", "k.T.reshape(k.shape, order='F')",
                 "load_weights", "KERAS_RNN_SEMANTICS.md §11"):
        assert fact in err
    assert "Traceback" not in err


# ---------------------------------------------------------------- what cannot be checked, and tf_keras files

def test_time_distributed_rnn_is_reported_unsupported(capsys, tmp_path):
    # Params: TimeDistributed(LSTM(2)) on F=4: 4*(4*2 + 4 + 2) = 56; LSTM(2) on F=2: 4*(2*2 + 4 + 2) = 40.
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((2, 3, 4)), keras.layers.TimeDistributed(keras.layers.LSTM(2), name="td"),
                              keras.layers.LSTM(2, name="lstm")], name="tdm")
    model.save(tmp_path / "td.keras")
    code, out, _ = run(capsys, str(tmp_path / "td.keras"))
    assert code == 0, out
    assert row(out, "tdm/td").split()[:3] == ["UNSUPPORTED", "tdm/td", "TimeDistributed(LSTM)"]
    assert "not supported: TimeDistributed around a recurrent layer" in row(out, "tdm/td")
    assert row(out, "tdm/lstm").startswith("PASS ")
    assert "count_params() 96, summary \"Total params\" 96, formulas 96 (recurrent by formula 40 + " \
           "other layers 56)  OK" in out


def test_tf_keras_time_major_false_is_dropped(saved, capsys, tmp_path):
    """tf_keras writes time_major: false into every RNN config; Keras 3 refuses the key (§10)."""
    path = tmp_path / "tf_keras_style.h5"
    path.write_bytes(saved["masked.h5"].read_bytes())
    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        for layer in config["config"]["layers"]:
            if layer["class_name"] == "LSTM":
                layer["config"]["time_major"] = False
        f.attrs["model_config"] = json.dumps(config)
    with pytest.raises(ValueError, match="time_major"):  # what plain Keras 3 loading does with it
        keras.saving.load_model(path, compile=False)
    code, out, _ = run(capsys, str(path))
    assert code == 0, out
    assert "note:  tf_keras config key time_major=false dropped from lstm" in out
    assert row(out, "masked/lstm").startswith("PASS ")


def test_gpu_without_a_gpu_exits_2(saved, capsys):
    if session.gpu_available():
        pytest.skip("a GPU is visible here")
    code, out, err = run(capsys, str(saved["masked.h5"]), "--device", "gpu")
    assert (code, out, err) == (2, "", "keras-equiv check-model: error: --device gpu: no GPU visible to Keras\n")


# ---------------------------------------------------------------- --record: the model's layers as a golden file

def test_record_writes_every_layer_call_as_the_model_ran_it(saved, capsys, tmp_path):
    out = tmp_path / "layers.h5"
    code, text, _ = run(capsys, str(saved["nested.keras"]), "--record", str(out))
    assert code == 0, text
    assert f"recorded 4 recurrent layer call(s) to {out}" in text
    recorded = {case.id: (case, arrays) for case, arrays, _ in golden.load(out)}
    assert sorted(recorded) == ["outer-bi[cpu]", "outer-dec_lstm[cpu]", "outer-enc_lstm[cpu]",
                                "outer-encoder-gru[cpu]"]
    dec, arrays = recorded["outer-dec_lstm[cpu]"]
    assert dec.layer == {"class": "LSTM", "units": 3, **{k: v for k, v in dec.layer.items()
                                                          if k not in ("class", "units")}}
    assert arrays.initial_state is not None  # the encoder's states, as the model handed them over
    assert arrays.mask is None  # the nested Sequential drops the Masking mask (Keras warns so)
    # The recorded cases are golden files like any other: verify reruns them, diagnose takes them.
    assert cli.main(["verify", str(out)]) == 0
    assert cli.main(["export", str(out), "--case", "outer-enc_lstm[cpu]", "--to", "npz",
                     "--out", str(tmp_path / "enc.npz")]) == 0


def test_record_keeps_the_mask_a_layer_got(saved, capsys, tmp_path):
    out = tmp_path / "masked.h5"
    code, _, _ = run(capsys, str(saved["masked.h5"]), "--record", str(out))
    assert code == 0
    ((case, arrays, _),) = golden.load(out)
    assert case.id == "masked-lstm[cpu]" and case.mask.kind == "explicit"
    assert arrays.mask is not None and (~arrays.mask).any()  # the padded steps the Masking layer found
    assert cli.main(["verify", str(out)]) == 0
