"""Bounded input: every cap refuses its hostile case file at once, with the exact message, and
``limits:`` raises it for one case; loose tolerances need a reason; values echoed in messages
are cut short; paths in a case resolve against the case file, whatever it is called.

Each hostile file is also timed: validation must refuse it in well under a second (the cap is
checked from the shapes, before anything is built or expanded).
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from harness import cli, schema, yaml_lines
from harness.case import GoldenRef
from harness.errors import CaseSchemaError
from harness.schema import limits, messages
from harness.schema.keys import LIMIT_DEFAULTS
from schema_problems import problems

LSTM = "{class: LSTM, units: 4}"
INPUT = "{batch: 2, timesteps: 3, features: 5}"
STATEFUL = "{class: LSTM, units: 2, stateful: true}"


def case(layer: str = LSTM, input: str = INPUT, extra: str = "") -> str:
    """A one-case file: the case starts on line 2, layer is line 3, input line 4, extra from line 5."""
    return f"cases:\n  - id: c1\n    layer: {layer}\n    input: {input}\n" + extra


def model_case(*layers: str, input: str = "{batch: 2, timesteps: 3, features: 1}", extra: str = "") -> str:
    """A model case: model on line 3 (one flow list), input on line 4."""
    return f"cases:\n  - id: c1\n    model: [{', '.join(layers)}]\n    input: {input}\n" + extra




def load(tmp_path: Path, text: str) -> list:
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    return schema.load_file(path, display="c.yaml")


def _sweep(keys: list[str], n: int) -> str:
    return "    sweep:\n" + "".join(f"      {k}: [{', '.join(str(i + 1) for i in range(n))}]\n" for k in keys)


# 7 paths x 10 values: 10**7 points, which must be refused without expanding one.
SEVEN = ["layer.units", "input.batch", "input.timesteps", "input.features", "input.scale", "layer.dropout", "seed"]


def _bomb() -> str:
    """The "billion laughs": nine levels of nine aliases, 9**9 strings from well under 1 KB."""
    text = "cases:\n  - id: c1\n    about: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    for level in "bcdefghi":
        text += f"    x{level}: &{level} [" + ", ".join(f"*{chr(ord(level) - 1)}" for _ in range(9)) + "]\n"
    return text + "    layer: *i\n"


EXPECTED = "expected at most {} unless limits.{} allows more"

# name -> (file text, the exact message lines)
HOSTILE = {
    "sweep_points": (
        case(extra=_sweep(SEVEN, 10)),
        [f"c.yaml:5: case 'c1': sweep: too many sweep points ({EXPECTED.format(1000, 'sweep_points')}, got 10000000)"]),
    "timesteps": (
        case(input="{batch: 2, timesteps: 1000000, features: 1}"),
        [f"c.yaml:4: case 'c1': input.timesteps: is over the limit ({EXPECTED.format(10000, 'timesteps')}, "
         "got 1000000)"]),
    "input_elements": (
        case(input="{batch: 1000, timesteps: 10000, features: 2}"),
        [f"c.yaml:4: case 'c1': input: too many elements in one call's input "
         f"({EXPECTED.format(10000000, 'elements')}, got batch 1000 x timesteps 10000 x features 2 = 20000000)"]),
    "calls_count": (
        case(layer=STATEFUL, extra="    calls: {count: 1000000}\n"),
        [f"c.yaml:5: case 'c1': calls.count: is over the limit ({EXPECTED.format(100, 'calls')}, got 1000000)"]),
    "calls_batches_elements": (
        case(layer=STATEFUL, input="{batch: 2, timesteps: 10000, features: 500}",
             extra="    calls: {count: 2, batches: [4000, 4000]}\n    expect: {error: {type: ValueError}}\n"),
        [f"c.yaml:5: case 'c1': calls.batches: too many elements in one call's input "
         f"({EXPECTED.format(10000000, 'elements')}, got batch 4000 x timesteps 10000 x features 500 = 20000000000)"]),
    "layer_weights": (
        case(layer="{class: LSTM, units: 100000}", input="{batch: 1, timesteps: 1, features: 1}"),
        [f"c.yaml:3: case 'c1': layer: has too many weights ({EXPECTED.format(10000000, 'elements')}, "
         "got 40000800000 parameters)"]),
    "layer_output": (
        case(layer="{class: GRU, units: 1000, return_sequences: true}",
             input="{batch: 1000, timesteps: 1000, features: 1}"),
        [f"c.yaml:3: case 'c1': layer: output 'output' has too many elements "
         f"({EXPECTED.format(10000000, 'elements')}, got shape (1000, 1000, 1000) = 1000000000)"]),
    "model_weights": (
        model_case("{class: LSTM, units: 4}", "{class: Dense, units: 100000000}"),
        [f"c.yaml:3: case 'c1': model[1]: has too many weights ({EXPECTED.format(10000000, 'elements')}, "
         "got 500000000 parameters)"]),
    "model_output": (
        model_case("{class: LSTM, units: 8}", "{class: RepeatVector, n: 10000000}"),
        [f"c.yaml:3: case 'c1': model[1]: its output has too many elements "
         f"({EXPECTED.format(10000000, 'elements')}, got shape (2, 10000000, 8) = 160000000)"]),
    "embedding_timesteps": (
        model_case("{class: Embedding, input_dim: 10, output_dim: 2}", "{class: LSTM, units: 2}",
                   input="{batch: 2, timesteps: 1000000}"),
        [f"c.yaml:4: case 'c1': input.timesteps: is over the limit ({EXPECTED.format(10000, 'timesteps')}, "
         "got 1000000)"]),
    "embedding_elements": (
        model_case("{class: Embedding, input_dim: 10, output_dim: 2}", "{class: LSTM, units: 2}",
                   input="{batch: 100000, timesteps: 1000}"),
        [f"c.yaml:4: case 'c1': input: too many elements in one call's input "
         f"({EXPECTED.format(10000000, 'elements')}, got batch 100000 x timesteps 1000 = 100000000)"]),
    "swept_timesteps": (  # one bad point of a sweep: said once
        case(extra="    sweep: {input.timesteps: [3, 100000], layer.units: [1, 2]}\n"),
        [f"c.yaml:5: case 'c1': input.timesteps: is over the limit ({EXPECTED.format(10000, 'timesteps')}, "
         "got 100000)"]),
    "alias_bomb": (
        _bomb(),
        ["c.yaml:11: invalid YAML: aliases expand the file too far "
         "(expected at most 100000 values added by *aliases, got 926177086)"]),
    "alias_inside_its_anchor": (
        "cases:\n  - &c {id: c1, about: *c}\n",
        ["c.yaml:2: invalid YAML: an alias names a list or mapping that holds the alias itself "
         "(expected an alias outside the anchor it names, got an alias inside it)"]),
    "integer_too_long": (
        case(layer="{class: LSTM, units: " + "9" * 5000 + "}"),
        ["c.yaml:3: invalid YAML: integer is too long (expected at most 100 digits, got 5000 digits)"]),
    "long_octal": (  # a YAML 1.1 number too long for a note, or for Python to read as a decimal
        case(layer="{class: LSTM, units: 0" + "7" * 5000 + "}"),
        ["c.yaml:3: case 'c1': layer.units: must be a positive integer, got '" + "0" + "7" * 54 + "...' "
         "(5001 characters)"]),
    "long_hex": (
        case(layer="{class: LSTM, units: 0x" + "f" * 5000 + "}"),
        ["c.yaml:3: case 'c1': layer.units: must be a positive integer, got '0x" + "f" * 53 + "...' "
         "(5002 characters)"]),
    "long_string_echoed": (
        case(layer="{class: " + "L" * 1_000_000 + ", units: 2}"),
        ["c.yaml:3: case 'c1': layer.class: unknown layer class (expected one of LSTM, GRU, SimpleRNN, "
         "Bidirectional, got '" + "L" * 55 + "...' (1000000 characters))"]),
    "long_key_echoed": (
        case(extra="    " + "k" * 500 + ": 1\n"),
        ["c.yaml:5: case 'c1': " + "k" * 57 + "...: unknown key (expected one of id, about, layer, model, input, "
         "mask, mask_via, initial_state, weights, dtype, devices, modes, seed, training, calls, sweep, expect, "
         "tolerance, requires, limits, got '" + "k" * 55 + "...' (500 characters))"]),
    "long_duplicate_key": (
        case(extra="    ? " + "k" * 500 + "\n    : 1\n    ? " + "k" * 500 + "\n    : 2\n"),
        ["c.yaml:7: invalid YAML: duplicate key '" + "k" * 57 + "...' (first at line 5)"]),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_input_is_refused_at_once(name, tmp_path):
    text, expected = HOSTILE[name]
    start = time.perf_counter()
    got = problems(tmp_path, text)
    elapsed = time.perf_counter() - start
    assert got == expected
    assert elapsed < 1.0, f"{name}: {elapsed:.2f} s"


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_input_exits_2_without_traceback(name, tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(HOSTILE[name][0], encoding="utf-8")
    assert cli.main(["validate", str(path)]) == 2
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert HOSTILE[name][1][0].replace("c.yaml", str(path), 1) in err.splitlines()


def test_the_defaults_are_stated_and_bundled_cases_fit():
    assert LIMIT_DEFAULTS == {"sweep_points": 1000, "timesteps": 10000, "elements": 10000000, "calls": 100}
    assert (yaml_lines.ALIAS_VALUES, yaml_lines.INT_DIGITS, messages.SHOW_CHARS) == (100000, 100, 60)
    for cap, default in LIMIT_DEFAULTS.items():  # each documented, with its default, where the caps are
        assert f"{cap:<13}  {default:<10}" in limits.__doc__
    root = Path(__file__).resolve().parents[2]
    assert len(schema.load_files(schema.find_case_files([root / "cases"]))) > 900


# A case over a default cap, and the limits: line that lets it through.
OVERRIDES = {
    "sweep_points": (case(extra=_sweep(["layer.units", "input.batch"], 40)), "{sweep_points: 1600}", 1600),
    "timesteps": (case(input="{batch: 1, timesteps: 1000000, features: 1}"), "{timesteps: 1000000}", 1),
    "elements": (case(input="{batch: 1000, timesteps: 10000, features: 2}"), "{elements: 20000000}", 1),
    "calls": (case(layer=STATEFUL, extra="    calls: {count: 150}\n"), "{calls: 150}", 1),
    "weights": (case(layer="{class: LSTM, units: 2000}"), "{elements: 40000000}", 1),
}


@pytest.mark.parametrize("name", OVERRIDES)
def test_limits_raise_a_cap_for_one_case(name, tmp_path):
    text, limit, count = OVERRIDES[name]
    with pytest.raises(CaseSchemaError):
        load(tmp_path, text)
    assert len(load(tmp_path, text + f"    limits: {limit}\n")) == count
    # Only that case: the next one in the file has the defaults again.
    other = text.replace("c1", "c2") + f"    limits: {limit}\n"
    with pytest.raises(CaseSchemaError) as info:
        load(tmp_path, text + other.split("cases:\n", 1)[1])
    assert [line.split(": ")[1] for line in str(info.value).splitlines()] == ["case 'c1'"]


def test_limits_may_lower_a_cap(tmp_path):
    assert problems(tmp_path, case(extra="    sweep: {layer.units: [1, 2, 3]}\n    limits: {sweep_points: 2}\n")) == [
        f"c.yaml:5: case 'c1': sweep: too many sweep points ({EXPECTED.format(2, 'sweep_points')}, got 3)"]


BAD_LIMITS = {
    "unknown_key": ("{sweep_point: 5}",
                    "c.yaml:5: case 'c1': limits.sweep_point: unknown key; did you mean 'sweep_points'? "
                    "(expected one of sweep_points, timesteps, elements, calls, got 'sweep_point')"),
    "zero": ("{calls: 0}", "c.yaml:5: case 'c1': limits.calls: must be a positive integer, got 0"),
    "negative": ("{elements: -1}", "c.yaml:5: case 'c1': limits.elements: must be a positive integer, got -1"),
    "a_string": ("{elements: lots}", "c.yaml:5: case 'c1': limits.elements: must be a positive integer, got 'lots'"),
    "octal": ("{timesteps: 010}",
              "c.yaml:5: case 'c1': limits.timesteps: must be a positive integer, got '010' "
              "(write 10, or 8 if you meant octal)"),
    "not_a_mapping": ("5", "c.yaml:5: case 'c1': limits: must be a mapping, got 5"),
}


@pytest.mark.parametrize("name", BAD_LIMITS)
def test_bad_limits_section(name, tmp_path):
    text, message = BAD_LIMITS[name]
    assert problems(tmp_path, case(extra=f"    limits: {text}\n")) == [message]


def test_limits_cannot_be_swept(tmp_path):
    assert problems(tmp_path, case(extra="    sweep: {limits.timesteps: [1, 2]}\n")) == [
        "c.yaml:5: case 'c1': sweep.limits.timesteps: path does not exist in this case "
        "(expected a dotted path to a case field, such as layer.units, got 'limits.timesteps')"]


def test_model_cases_take_limits_too(tmp_path):
    got = problems(tmp_path, model_case("{class: LSTM, units: 2}", extra="    limits: {timesteps: 2}\n"))
    assert got[0].startswith("c.yaml:4: case 'c1': input.timesteps: is over the limit (expected at most 2 unless")


def test_aliases_under_the_cap_load():
    def text(aliases: int) -> str:  # each alias of the 1001-value list adds 1001 values
        return "a: &a [" + ", ".join(["1"] * 1000) + "]\nb: [" + ", ".join(["*a"] * aliases) + "]\n"

    doc = yaml_lines.load(text(99))  # 99099 values added
    assert len(doc["b"]) == 99 and doc["b"][0] is doc["a"]
    with pytest.raises(yaml_lines.Refused) as info:
        yaml_lines.load(text(100))  # 100100
    assert (info.value.expected, info.value.got) == ("at most 100000 values added by *aliases", "100100")


# ---------------------------------------------------------------- loose tolerances need a reason

LOOSE = {
    "atol_above_1": ("{atol: 2, rtol: 0}",
                     "c.yaml:5: case 'c1': tolerance.atol: is above 1, which needs a reason "
                     "(expected tolerance.reason saying why, got 2)"),
    "rtol_above_1_per_output": ("{output: {rtol: 1.5}}",
                                "c.yaml:5: case 'c1': tolerance.output.rtol: is above 1, which needs a reason "
                                "(expected tolerance.output.reason saying why, got 1.5)"),
    "empty_reason": ("{atol: 2, reason: ''}",
                     "c.yaml:5: case 'c1': tolerance.reason: must say why the tolerance is loose "
                     "(expected a non-empty string, got '')"),
    "reason_not_a_string": ("{atol: 2, reason: 5}",
                            "c.yaml:5: case 'c1': tolerance.reason: must say why the tolerance is loose "
                            "(expected a non-empty string, got 5)"),
}


@pytest.mark.parametrize("name", LOOSE)
def test_loose_tolerance_needs_a_reason(name, tmp_path):
    text, message = LOOSE[name]
    assert problems(tmp_path, case(extra=f"    tolerance: {text}\n")) == [message]


def test_loose_tolerance_with_a_reason(tmp_path):
    (c,) = load(tmp_path, case(extra='    tolerance: {atol: 2, rtol: 0, reason: "outputs are sums of 1e6 terms"}\n'))
    assert c.tolerance == {"*": {"atol": 2.0, "rtol": 0.0, "reason": "outputs are sums of 1e6 terms"}}
    (c,) = load(tmp_path, case(layer="{class: LSTM, units: 4, return_state: true}",
                               extra="    tolerance: {output: {atol: 3, reason: why}, h: {rtol: 1}}\n"))
    assert list(c.tolerance.values()) == [{"atol": 3.0, "reason": "why"}, {"rtol": 1.0}]
    (c,) = load(tmp_path, case(extra="    tolerance: {atol: 1.0, rtol: 1}\n"))  # 1 itself needs none
    assert c.tolerance == {"*": {"atol": 1.0, "rtol": 1.0}}


# ---------------------------------------------------------------- values echoed in messages

ECHOED = {"long_string": "x" * 10_000, "escapes": "a\x00" * 500, "long_int": 10**200, "negative_int": -(10**99),
          "int_python_cannot_write": 10**5000, "long_list": list(range(10_000)), "nested": [["x" * 100]] * 3,
          "bytes": b"y" * 1000, "float": 1.5e300}


@pytest.mark.parametrize("name", ECHOED)
def test_show_caps_what_it_echoes(name):
    assert len(messages.show(ECHOED[name])) <= 80


def test_show_says_how_long_a_cut_value_was():
    assert messages.show("x" * 1000) == "'" + "x" * 55 + "...' (1000 characters)"
    assert messages.show(10**100) == "1" + "0" * 55 + "... (101 digits)"
    assert messages.show("x" * 58) == "'" + "x" * 58 + "'"  # 60 characters: whole


# ---------------------------------------------------------------- paths inside a case

GOLDEN_CASE = "cases:\n  - id: c1\n    layer: {class: LSTM, units: 4}\n    input: {batch: 2, timesteps: 3, " \
              "features: 5}\n    expect: {golden: 'g.h5::c0[cpu]'}\n"


def test_golden_resolves_against_the_case_file_not_its_display_name(tmp_path, monkeypatch):
    folder = tmp_path / "project" / "cases"
    folder.mkdir(parents=True)
    (folder / "g.h5").write_bytes(b"")
    (folder / "c.yaml").write_text(GOLDEN_CASE, encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    (c,) = schema.load_file(folder / "c.yaml", display="elsewhere/x.yaml")
    assert c.expect.golden == GoldenRef(str(folder / "g.h5"), "c0[cpu]")
    assert c.path == "elsewhere/x.yaml"
    # A missing golden file is still named as written, in a message naming the display name.
    (folder / "g.h5").unlink()
    with pytest.raises(CaseSchemaError) as info:
        schema.load_file(folder / "c.yaml", display="elsewhere/x.yaml")
    assert str(info.value) == (
        "elsewhere/x.yaml:5: case 'c1': expect.golden: no such golden file (paths are relative to the case file) "
        "(expected an HDF5 file written by keras-equiv record, got 'g.h5')")


def test_golden_resolves_from_a_relative_path_too(tmp_path, monkeypatch):
    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "g.h5").write_bytes(b"")
    (tmp_path / "cases" / "c.yaml").write_text(GOLDEN_CASE, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    (c,) = schema.load_file("cases/c.yaml", display="nowhere/c.yaml")
    assert Path(c.expect.golden.path).resolve() == (tmp_path / "cases" / "g.h5").resolve()
