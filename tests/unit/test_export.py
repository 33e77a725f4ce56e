"""keras-equiv export (harness/export.py): golden cases written for torch / ONNX / npz and proven, no Keras.

Expected values are Keras's recorded outputs (tests/data/golden-0.1.h5) or, for layer variants the file
does not hold, the float64 reference's.  torch and onnx are optional: their tests skip without them.
"""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import pytest

from harness import export, golden, layers
from harness.case import CallsSpec, OutputKey
from harness.data import Arrays
from harness.errors import UsageError
from harness.export import Target
from harness.keras_api import with_defaults
from harness.reference import recurrent

GOLDEN = Path(__file__).parent.parent / "data" / "golden-0.1.h5"
BIDI = "golden-bidirectional-masked[cpu]"
GRU = "golden-cells[class:GRU+cpu]"
LSTM = "golden-cells[class:LSTM+cpu]"
RNN = "golden-cells[class:SimpleRNN+cpu]"
GRU_BEFORE = "golden-gru-reset-before[cpu]"
SUFFIX = {Target.TORCH: "pt", Target.ONNX: "onnx", Target.NPZ: "npz"}
EXPORTABLE = [(LSTM, t) for t in Target] + [(GRU, t) for t in Target] + [(RNN, t) for t in Target] + [
    (GRU_BEFORE, Target.ONNX), (GRU_BEFORE, Target.NPZ), (BIDI, Target.NPZ)]
# torch.nn.LSTM/GRU and ONNX's gate orders, written here a second time on purpose: the test's own facts.
TORCH_ORDER = {"LSTM": "ifco", "GRU": "rzh", "SimpleRNN": "h"}
ONNX_ORDER = {"LSTM": "iofc", "GRU": "zrh", "SimpleRNN": "h"}
KERAS_ORDER = {"LSTM": "ifco", "GRU": "zrh", "SimpleRNN": "h"}


def needs(module: str):
    return pytest.importorskip(module, reason=f"{module} is not installed (keras-equiv[export])")


def recorded(case_id: str):
    (case, arrays, provenance), = golden.load(GOLDEN, case_id)
    return case, arrays, provenance


def args(tmp_path: Path, target: Target, case_id: str | None, out: Path | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    export.add_arguments(p)
    out = out or tmp_path / f"layer.{SUFFIX[target]}"
    chosen = ["--case", case_id] if case_id else []
    return p.parse_args([str(GOLDEN), "--to", target.value, "--out", str(out), *chosen])


def reordered(a: np.ndarray, units: int, keras: str, order: str) -> np.ndarray:
    """``a``'s gate blocks along its last axis, from Keras's letter order into ``order``."""
    return np.concatenate([a[..., keras.index(g) * units:(keras.index(g) + 1) * units] for g in order], axis=-1)


def variant(case_id: str, layer: dict, dtype: str = "float32", drop_bias: bool = False, initial: bool = True):
    """A golden case with another layer spec, no mask, its expected outputs from the float64 reference."""
    case, arrays, provenance = recorded(case_id)
    case = dataclasses.replace(case, layer=layer, mask=None, dtype=dtype)
    cfg = with_defaults(layer)
    np_dtype = {"float64": np.float64, "float16": np.float16}.get(dtype, np.float32)

    def cast(w):
        return {k: cast(v) for k, v in w.items() if not (drop_bias and k == "bias")} if isinstance(w, dict) \
            else np.asarray(w).astype(np_dtype)

    weights = cast(arrays.weights)
    x = arrays.inputs[0].astype(np_dtype).astype(np.float64)
    rng = np.random.default_rng(7)
    init = [rng.normal(size=(x.shape[0], u)).astype(np_dtype).astype(np.float64) for u in layers.state_units(cfg)] \
        if initial else None
    expected = {OutputKey(k): v.astype(np_dtype) for k, v in recurrent.run(cfg, x, weights, None, init).items()}
    return case, Arrays([x], None, init, weights, expected), provenance


# ---------------------------------------------------------------- round trips

@pytest.mark.parametrize("case_id, target", EXPORTABLE, ids=lambda v: v.value if isinstance(v, Target) else v)
def test_every_exportable_golden_case_round_trips(tmp_path, capsys, case_id, target):
    if target is not Target.NPZ:
        needs(target.value)
    code = export.main(args(tmp_path, target, case_id))
    out = capsys.readouterr().out
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].startswith(f"PROVEN  {case_id} -> {tmp_path / ('layer.' + SUFFIX[target])} ({target.value}): ")
    names = [str(k) for k in recorded(case_id)[1].golden_outputs]
    assert [line.split(":")[0] for line in lines[1:1 + len(names)]] == [f"  ok   {n}" for n in names]


VARIANTS = {
    "bidi-lstm-concat": (BIDI, {"class": "Bidirectional", "layer": {"class": "LSTM", "units": 3,
                                                                     "return_sequences": True, "return_state": True}}),
    "bidi-lstm-none-last": (BIDI, {"class": "Bidirectional", "merge_mode": None,
                                   "layer": {"class": "LSTM", "units": 3, "return_state": True}}),
    "lstm-go-backwards": (LSTM, {"class": "LSTM", "units": 4, "go_backwards": True, "return_sequences": True,
                                 "return_state": True}),
    "lstm-last-only": (LSTM, {"class": "LSTM", "units": 4}),
    "gru-sequence-only": (GRU, {"class": "GRU", "units": 4, "return_sequences": True}),
    "rnn-relu": (RNN, {"class": "SimpleRNN", "units": 4, "activation": "relu", "return_sequences": True}),
    "rnn-linear": (RNN, {"class": "SimpleRNN", "units": 4, "activation": None, "return_state": True}),
}


# Which targets take each variant (test_the_variants_cover_what_each_target_refuses checks it).
TAKEN_BY = {"bidi-lstm-concat": "torch onnx npz", "bidi-lstm-none-last": "torch onnx npz",
            "lstm-go-backwards": "onnx npz", "lstm-last-only": "torch onnx npz", "gru-sequence-only": "torch onnx npz",
            "rnn-relu": "torch npz", "rnn-linear": "onnx npz"}


@pytest.mark.parametrize("name, target", [(n, Target(t)) for n, ts in TAKEN_BY.items() for t in ts.split()],
                         ids=lambda v: v.value if isinstance(v, Target) else v)
def test_layer_variants_round_trip_against_the_reference(tmp_path, name, target):
    case, arrays, provenance = variant(*VARIANTS[name])
    if target is not Target.NPZ:
        needs(target.value)
    result = export.export(case, arrays, provenance, target, tmp_path / f"v.{SUFFIX[target]}")
    assert result.proven, export.text(result)
    assert [c.name for c in result.comparisons] == [str(k) for k in arrays.golden_outputs]


@pytest.mark.parametrize("dtype, atol", [("float64", 1e-12), ("float16", 5e-3)])
@pytest.mark.parametrize("target", [Target.TORCH, Target.ONNX, Target.NPZ], ids=lambda t: t.value)
def test_other_dtypes_without_a_bias_round_trip_at_their_tolerance(tmp_path, target, dtype, atol):
    case, arrays, provenance = variant(GRU, {"class": "GRU", "units": 4, "use_bias": False, "return_sequences": True,
                                             "return_state": True}, dtype=dtype, drop_bias=True)
    if target is not Target.NPZ:
        needs(target.value)
    result = export.export(case, arrays, provenance, target, tmp_path / f"v.{SUFFIX[target]}")
    assert result.proven, export.text(result)
    assert {c.tolerance.atol for c in result.comparisons} == {atol}


def test_the_variants_cover_what_each_target_refuses():
    assert {name: " ".join(t.value for t in Target if not export.refusals(variant(*VARIANTS[name])[0], t))
            for name in VARIANTS} == TAKEN_BY


# ---------------------------------------------------------------- a planted layout bug fails the round trip

@pytest.mark.parametrize("target, cls, wrong", [(Target.TORCH, "LSTM", ("i", "f", "o", "c")),
                                                (Target.ONNX, "LSTM", ("i", "f", "c", "o")),
                                                (Target.TORCH, "GRU", ("z", "r", "h")),
                                                (Target.ONNX, "GRU", ("r", "z", "h"))], ids=str)
def test_a_wrong_gate_order_fails_the_round_trip(tmp_path, capsys, target, cls, wrong):
    needs(target.value)
    planted = {**export.GATE_ORDERS, target: {**export.GATE_ORDERS[target], cls: wrong}}
    case_id = LSTM if cls == "LSTM" else GRU
    code = export.main(args(tmp_path, target, case_id), gate_orders=planted)
    out = capsys.readouterr().out
    assert code == 1
    assert out.splitlines()[0].startswith(f"NOT PROVEN  {case_id} -> ")
    assert out.splitlines()[0].endswith(
        "differs from Keras's recorded outputs: the layout is wrong, do not use the file")
    assert "  FAIL output: " in out


def test_an_npz_with_two_gates_swapped_fails_its_round_trip(tmp_path):
    case, arrays, provenance = recorded(LSTM)
    out = tmp_path / "l.npz"
    assert export.export(case, arrays, provenance, Target.NPZ, out).proven
    with np.load(out) as f:
        entries = {k: f[k] for k in f.files}
    entries["kernel_i"], entries["kernel_f"] = entries["kernel_f"], entries["kernel_i"]
    with open(out, "wb") as f:
        np.savez(f, **entries)
    failed = [c.name for c in export.prove_npz(export.prepare(case, arrays), out, provenance) if not c.passed]
    assert failed == ["output", "h", "c"]


# ---------------------------------------------------------------- refusals (the text is API)

def test_refusals_of_the_golden_file_are_pinned(tmp_path):
    needs("torch")
    with pytest.raises(UsageError) as torch_mask:
        export.main(args(tmp_path, Target.TORCH, BIDI))
    assert str(torch_mask.value) == (f"{BIDI}: cannot export to torch: a mask (torch.nn.LSTM has no Keras-style mask)")
    with pytest.raises(UsageError) as onnx_mask:
        export.main(args(tmp_path, Target.ONNX, BIDI))
    assert str(onnx_mask.value) == (
        f"{BIDI}: cannot export to onnx: a mask (ONNX has no Keras-style mask; sequence_lens would express a "
        "right-padded one, but onnx.reference ignores sequence_lens, so its round trip cannot be proven)")
    with pytest.raises(UsageError) as reset_before:
        export.main(args(tmp_path, Target.TORCH, GRU_BEFORE))
    assert str(reset_before.value) == (
        f"{GRU_BEFORE}: cannot export to torch: GRU reset_after=False (torch.nn.GRU has only reset-after "
        "semantics: r * (h @ W_hn + b_hn))")
    assert list(tmp_path.iterdir()) == []  # refused before anything is written


def _refused(layer: dict, target: Target, **changes) -> tuple[str, ...]:
    case = dataclasses.replace(recorded(LSTM)[0], layer=layer, **changes)
    return export.refusals(case, target)


LSTM4 = {"class": "LSTM", "units": 4}


@pytest.mark.parametrize("layer, target, expected", [
    ({**LSTM4, "activation": "relu"}, Target.TORCH, ("activation='relu' (torch.nn.LSTM has only 'tanh')",)),
    ({**LSTM4, "recurrent_activation": "hard_sigmoid"}, Target.TORCH,
     ("recurrent_activation='hard_sigmoid' (torch.nn.LSTM has only 'sigmoid')",)),
    ({**LSTM4, "recurrent_activation": "hard_sigmoid"}, Target.ONNX,
     ("recurrent_activation='hard_sigmoid' (onnx.reference's LSTM runs only 'sigmoid', so its round trip cannot be "
      "proven)",)),
    ({"class": "SimpleRNN", "units": 4, "activation": "relu"}, Target.ONNX,
     ("activation='relu' (onnx.reference's RNN runs only 'tanh' or None or 'linear', so its round trip cannot be "
      "proven)",)),
    ({"class": "SimpleRNN", "units": 4, "activation": "elu"}, Target.TORCH,
     ("activation='elu' (torch.nn.RNN has only 'tanh' or 'relu')",)),
    ({**LSTM4, "go_backwards": True}, Target.TORCH,
     ("go_backwards=True on its own (torch runs a reverse direction only as half of bidirectional=True)",)),
    ({"class": "Bidirectional", "layer": LSTM4, "merge_mode": "sum"}, Target.TORCH,
     ("merge_mode='sum' (torch's bidirectional=True returns both directions side by side: export takes merge_mode "
      "'concat' or None)",)),
    ({"class": "Bidirectional", "layer": {**LSTM4, "go_backwards": True}}, Target.ONNX,
     ("a forward layer with go_backwards=True (ONNX's direction 'bidirectional' reads the forward direction "
      "forwards)",)),
    ({"class": "Bidirectional", "layer": LSTM4, "backward_layer": {"class": "GRU", "units": 3, "go_backwards": True}},
     Target.TORCH, ("backward_layer class='GRU', the forward layer's 'LSTM' (torch's bidirectional=True runs one "
                    "configuration both ways)",)),
    ({"class": "Bidirectional", "layer": LSTM4, "backward_layer": {**LSTM4, "units": 3, "go_backwards": True}},
     Target.ONNX, ("backward_layer units=3, the forward layer's 4 (ONNX's direction 'bidirectional' runs one "
                   "configuration both ways)",)),
])
def test_what_a_target_cannot_express_is_named(layer, target, expected):
    assert _refused(layer, target) == expected


def test_stateful_calls_and_training_dropout_are_refused_by_every_target():
    calls = "3 calls of a stateful layer (export writes one call: its input, initial states and outputs)"
    dropout = "training-mode dropout (the masks Keras drew are not in the golden file)"
    layer = {**LSTM4, "stateful": True, "dropout": 0.5}
    for target in Target:
        assert _refused(layer, target, calls=CallsSpec(3), training=True) == (calls, dropout)
        assert _refused(layer, target) == ()  # dropout outside training, one call: plain inference
    assert export.refusals(recorded(BIDI)[0], Target.NPZ) == ()  # npz keeps masks (the reference runs them)


def test_several_reasons_are_given_together(tmp_path):
    case = dataclasses.replace(recorded(LSTM)[0], layer={**LSTM4, "go_backwards": True, "activation": "relu"})
    with pytest.raises(UsageError) as refused:
        export.export(case, recorded(LSTM)[1], {}, Target.TORCH, tmp_path / "x.pt")
    assert str(refused.value) == (f"{LSTM}: cannot export to torch: go_backwards=True on its own (torch runs a "
                                  "reverse direction only as half of bidirectional=True); activation='relu' "
                                  "(torch.nn.LSTM has only 'tanh')")


# ---------------------------------------------------------------- usage errors

def test_a_file_of_several_cases_needs_case(tmp_path):
    with pytest.raises(UsageError, match=r"golden-0.1.h5 holds 5 cases: name the one to export with --case \(one of "):
        export.main(args(tmp_path, Target.NPZ, None))


def test_an_unwritable_out_is_refused_first(tmp_path):
    with pytest.raises(UsageError, match=r"^--out .*/nowhere/x.npz: folder .*/nowhere does not exist$"):
        export.main(args(tmp_path, Target.NPZ, LSTM, tmp_path / "nowhere" / "x.npz"))


def test_onnx_keeps_one_model_per_folder(tmp_path):
    needs("onnx")
    (tmp_path / "other.onnx").write_bytes(b"")
    with pytest.raises(UsageError) as refused:
        export.main(args(tmp_path, Target.ONNX, LSTM))
    assert str(refused.value) == (f"--out {tmp_path / 'layer.onnx'}: {tmp_path} already holds other.onnx: ONNX's "
                                  "test-data layout keeps one model per folder (its data in test_data_set_0/); "
                                  "export into a folder of its own")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.onnx"]


# ---------------------------------------------------------------- the files, read as their own tools read them

@pytest.mark.parametrize("case_id, module", [(LSTM, "LSTM"), (GRU, "GRU"), (RNN, "RNN")])
def test_the_torch_file_loads_into_a_fresh_module(tmp_path, case_id, module):
    torch = needs("torch")
    case, arrays, _ = recorded(case_id)
    out = tmp_path / "layer.pt"
    assert export.main(args(tmp_path, Target.TORCH, case_id, out)) == 0
    saved = torch.load(out)  # weights_only (torch's default): the file holds tensors and plain values only
    fresh = getattr(torch.nn, module)(input_size=3, hidden_size=4, batch_first=True)
    fresh.load_state_dict(saved["state_dict"])  # strict: every name and shape torch expects, no other
    cls = case.layer["class"]
    kernel = arrays.weights["kernel"]
    assert np.array_equal(saved["state_dict"]["weight_ih_l0"].numpy(),
                          reordered(kernel, 4, KERAS_ORDER[cls], TORCH_ORDER[cls]).T)
    bias = arrays.weights["bias"]
    if cls == "GRU":  # reset_after: the input row to bias_ih, the recurrent row to bias_hh
        assert np.array_equal(saved["state_dict"]["bias_hh_l0"].numpy(), reordered(bias[1], 4, "zrh", "rzh"))
    else:  # Keras's one bias is input-side
        assert not saved["state_dict"]["bias_hh_l0"].numpy().any()
    inputs = saved["inputs"]
    state = (inputs["h0"], inputs["c0"]) if module == "LSTM" else inputs["h0"]
    with torch.no_grad():
        y, _ = fresh(inputs["input"], state)
    assert np.allclose(y.numpy(), arrays.golden_outputs[OutputKey("output")], atol=1e-5, rtol=1e-5)
    assert {k: v.numpy().tolist() for k, v in saved["expected"].items()} == \
        {str(k): v.tolist() for k, v in arrays.golden_outputs.items()}
    assert saved["config"]["kwargs"]["input_size"] == 3 and saved["config"]["case"] == case_id


@pytest.mark.parametrize("case_id", [LSTM, GRU, GRU_BEFORE, RNN])
def test_the_onnx_file_loads_and_runs_in_onnx_alone(tmp_path, case_id):
    onnx = needs("onnx")
    evaluator = needs("onnx.reference").ReferenceEvaluator
    case, arrays, _ = recorded(case_id)
    out = tmp_path / "layer.onnx"
    assert export.main(args(tmp_path, Target.ONNX, case_id, out)) == 0
    model = onnx.load(out)
    onnx.checker.check_model(model, full_check=True)
    (node,) = model.graph.node
    cls = case.layer["class"]
    assert node.op_type == {"LSTM": "LSTM", "GRU": "GRU", "SimpleRNN": "RNN"}[cls]
    assert model.opset_import[0].version >= 14
    weights = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    kernel = arrays.weights["kernel"]
    assert np.array_equal(weights["W"][0], reordered(kernel, 4, KERAS_ORDER[cls], ONNX_ORDER[cls]).T)
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    if cls == "GRU":
        assert attrs["linear_before_reset"] == int(case.layer.get("reset_after", True))
    data = tmp_path / "test_data_set_0"
    feeds = {}
    for i in range(len(model.graph.input)):
        t = onnx.load_tensor(data / f"input_{i}.pb")
        feeds[t.name] = onnx.numpy_helper.to_array(t)
    assert np.array_equal(feeds["X"], arrays.inputs[0].astype(np.float32).transpose(1, 0, 2))
    results = evaluator(model).run(None, feeds)
    for i, got in enumerate(results):  # ONNX's own test-data check: every output_i.pb
        want = onnx.numpy_helper.to_array(onnx.load_tensor(data / f"output_{i}.pb"))
        assert np.allclose(got, want, atol=1e-5, rtol=1e-5)
    y = results[0]  # (T, 1, B, U); Keras's output is (B, T, U)
    assert np.allclose(y[:, 0].transpose(1, 0, 2), arrays.golden_outputs[OutputKey("output")], atol=1e-5, rtol=1e-5)


def test_the_onnx_layout_maps_back_onto_kerass_outputs_exactly():
    for case_id, layer in [(BIDI, VARIANTS["bidi-lstm-concat"][1]), (BIDI, VARIANTS["bidi-lstm-none-last"][1]),
                           (LSTM, VARIANTS["lstm-go-backwards"][1]), (LSTM, VARIANTS["lstm-last-only"][1])]:
        case, arrays, _ = variant(case_id, layer)
        cfg = with_defaults(layer)
        onnx_side = export.onnx_expected(cfg, arrays.golden_outputs)
        assert list(onnx_side) == [n for n in export.onnx_outputs(cfg) if n]
        back = export.keras_outputs(cfg, *export.onnx_from_outputs(onnx_side, ("h", "c")))
        assert {str(k): v.tolist() for k, v in back.items()} == \
            {str(k): v.tolist() for k, v in arrays.golden_outputs.items()}, case_id


def test_an_lstm_go_backwards_in_onnx_runs_reverse():
    cfg = with_defaults(VARIANTS["lstm-go-backwards"][1])
    y = np.arange(2 * 3 * 4.0).reshape(2, 3, 4)  # Keras: (B, T, U) in processing order
    onnx_y = export.onnx_expected(cfg, {OutputKey("output"): y, OutputKey("h"): y[:, -1], OutputKey("c"): y[:, 0]})
    assert np.array_equal(onnx_y["Y"][:, 0], y[:, ::-1].transpose(1, 0, 2))  # ONNX: (T, 1, B, U) in input time


# ---------------------------------------------------------------- npz

def test_the_npz_holds_each_gate_by_name(tmp_path):
    case, arrays, provenance = recorded(GRU)
    out = tmp_path / "gru.npz"
    assert export.export(case, arrays, provenance, Target.NPZ, out).proven
    with np.load(out, allow_pickle=False) as f:
        npz = {k: f[k] for k in f.files}
    w = arrays.weights
    for g, gate in enumerate("zrh"):
        block = slice(4 * g, 4 * g + 4)
        assert np.array_equal(npz[f"kernel_{gate}"], w["kernel"][:, block])
        assert np.array_equal(npz[f"recurrent_kernel_{gate}"], w["recurrent_kernel"][:, block])
        assert np.array_equal(npz[f"bias_input_{gate}"], w["bias"][0, block])
        assert np.array_equal(npz[f"bias_recurrent_{gate}"], w["bias"][1, block])
    assert np.array_equal(npz["initial_state_h"], arrays.initial_state[0].astype(np.float32))
    assert np.array_equal(npz["expected_output"], arrays.golden_outputs[OutputKey("output")])
    layout = str(npz["layout"]).splitlines()
    assert "  bias_input_z        (4,)       bias[0, 0:4]: z (update gate)" in layout
    assert "    h_t = z * h + (1 - z) * h_hat" in layout
    assert {k: v.tolist() for k, v in export.npz_weights(npz).items()} == {k: v.tolist() for k, v in w.items()}


def test_a_bidirectional_npz_keeps_its_mask_and_directions(tmp_path):
    case, arrays, provenance = recorded(BIDI)
    out = tmp_path / "bidi.npz"
    assert export.export(case, arrays, provenance, Target.NPZ, out).proven
    with np.load(out, allow_pickle=False) as f:
        npz = {k: f[k] for k in f.files}
    assert npz["mask"].tolist() == arrays.mask.astype(int).tolist()
    assert np.array_equal(npz["backward_kernel_o"], arrays.weights["backward"]["kernel"][:, 9:12])
    assert {d: {k: v.tolist() for k, v in w.items()} for d, w in export.npz_weights(npz).items()} == \
        {d: {k: v.tolist() for k, v in w.items()} for d, w in arrays.weights.items()}
