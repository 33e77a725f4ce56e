"""Execution modes as a case axis (harness/modes.py): ids, the schema, --mode, markers and
known rows, with no Keras."""
from __future__ import annotations

import pytest

from harness import known, modes, schema
from harness.case import case_id
from harness.errors import CaseSchemaError
from harness.markers import markers
from harness.select import select, with_mode

CASES = """\
cases:
  - id: modal
    layer: {class: GRU, units: 2}
    input: {batch: 1, timesteps: 2, features: 1}
    modes: [eager, xla]
    sweep: {layer.units: [1, 2]}
  - id: plain
    layer: {class: LSTM, units: 2}
    input: {batch: 1, timesteps: 2, features: 1}
  - id: a-model
    model: [{class: LSTM, units: 2}, {class: Dense, units: 1}]
    input: {batch: 1, timesteps: 2, features: 1}
"""


@pytest.fixture
def path(tmp_path):
    (tmp_path / "cases.yaml").write_text(CASES)
    return tmp_path / "cases.yaml"


def ids(cases):
    return [c.id for c in cases]


def test_eager_ids_are_unchanged_and_other_modes_follow_the_device():
    assert case_id("b", (("layer.units", 1),), "cpu") == case_id("b", (("layer.units", 1),), "cpu", "eager") \
        == "b[units:1+cpu]"
    assert case_id("b", (("layer.units", 1),), "gpu", "xla") == "b[units:1+gpu+xla]"
    assert case_id("b", (), "cpu", "predict") == "b[cpu+predict]"


def test_modes_make_one_case_per_mode_with_one_seed(path):
    cases = schema.load_file(path)
    assert ids(cases) == ["modal[units:1+cpu]", "modal[units:1+cpu+xla]", "modal[units:2+cpu]",
                          "modal[units:2+cpu+xla]", "plain[cpu]", "a-model[cpu]"]
    # the same data and weights in every mode: the seed is the sweep point's
    assert cases[0].seed == cases[1].seed != cases[2].seed
    assert cases[1].point_id == "modal[units:1]"


@pytest.mark.parametrize("extra, message", [
    ("    modes: [eager, predcit]\n", "c.yaml:6: case 'c1': modes: unknown mode; did you mean 'predict'? (expected a "
                                      "list from eager, function, xla, predict, symbolic, got 'predcit')"),
    ("    modes: []\n", "c.yaml:6: case 'c1': modes: unknown mode (expected a list from eager, function, xla, "
                        "predict, symbolic, got [])"),
])
def test_a_bad_mode_names_file_line_and_field(tmp_path, extra, message):
    (tmp_path / "c.yaml").write_text("cases:\n  - id: c1\n    layer: {class: GRU, units: 2}\n"
                                     "    input: {batch: 1, timesteps: 2, features: 1}\n" + "    about: x\n" + extra)
    with pytest.raises(CaseSchemaError) as info:
        schema.load_file(tmp_path / "c.yaml", display="c.yaml")
    assert str(info.value) == message


def test_a_model_case_takes_no_modes(tmp_path):
    (tmp_path / "c.yaml").write_text(CASES.replace("    input: {batch: 1, timesteps: 2, features: 1}\n"
                                                   "\"\"\"", "") + "    modes: [xla]\n")
    with pytest.raises(CaseSchemaError, match=r"case 'a-model': modes: does not apply to a model case"):
        schema.load_file(tmp_path / "c.yaml")


def test_mode_override_runs_every_layer_case_in_that_mode_and_keeps_model_cases(path):
    cases = select([str(path)])
    assert ids(with_mode(cases, "predict")) == ["modal[units:1+cpu+predict]", "modal[units:2+cpu+predict]",
                                                "plain[cpu+predict]", "a-model[cpu]"]
    every = with_mode(cases, modes.ALL)
    assert len(every) == 3 * len(modes.MODES) + 1 and len(set(ids(every))) == len(every)
    assert ids(select([str(path)], mode="eager")) == ["modal[units:1+cpu]", "modal[units:2+cpu]", "plain[cpu]",
                                                      "a-model[cpu]"]


def test_an_id_from_a_mode_run_selects_its_case_without_mode(path):
    assert ids(select([f"{path}::plain[cpu+symbolic]"])) == ["plain[cpu+symbolic]"]
    assert ids(select([f"{path}::plain"])) == ["plain[cpu]"]


def test_each_mode_is_a_marker_and_a_keyword(path):
    cases = schema.load_file(path)
    assert "xla" in markers(cases[1]) and "eager" in markers(cases[0]) and "xla" not in markers(cases[0])
    assert ids(select([str(path)], marks="xla")) == ["modal[units:1+cpu+xla]", "modal[units:2+cpu+xla]"]
    assert ids(select([str(path)], keyword="modal and not xla")) == ["modal[units:1+cpu]", "modal[units:2+cpu]"]


def test_a_known_row_can_hold_in_some_modes_only(tmp_path, path):
    (tmp_path / "known.yaml").write_text("known:\n  - about: XLA rounds otherwise\n    mode: [xla, function]\n"
                                         "    cases: modal\n    mismatch: all\n")
    cases = {c.id: c for c in schema.load_file(path)}
    assert cases["modal[units:1+cpu+xla]"].here("tensorflow", "3.15.1").expect.mismatch is not None
    eager = cases["modal[units:1+cpu]"]
    assert eager.here("tensorflow", "3.15.1") is eager
    (tmp_path / "known.yaml").write_text("known:\n  - {about: x, mode: jit, skip: y}\n")
    with pytest.raises(CaseSchemaError, match=r"known\[0\]\.mode: unknown 'jit' \(expected one of eager, function, "
                                              r"xla, predict, symbolic\)"):
        known.load_table(tmp_path / "known.yaml")


def test_what_a_backend_cannot_run_is_said_not_guessed():
    assert modes.unavailable("eager", "torch") is None
    assert modes.unavailable("function", "tensorflow") is None and modes.unavailable("xla", "tensorflow") is None
    assert "jax.jit" in modes.unavailable("xla", "jax")
    assert modes.unavailable("function", "torch") and modes.unavailable("xla", "torch")
    assert all(modes.unavailable(m, b) is None for m in ("predict", "symbolic") for b in ("tensorflow", "jax", "torch"))
