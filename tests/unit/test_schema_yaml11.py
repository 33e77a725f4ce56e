"""YAML 1.1 surprises are refused, not silently read: the loader reads plain scalars as YAML 1.2
does, so ``yes``, ``010``, ``0x1_0``, ``1:30`` stay the strings written, and the type checks
refuse them with what to write instead.  Quoted, they are just strings (no note)."""
from __future__ import annotations

import copy
import math
import pickle

import pytest
import yaml

from harness import cli, schema, yaml_lines
from harness.errors import CaseSchemaError
from schema_problems import problems

LSTM = "{class: LSTM, units: 4}"
INPUT = "{batch: 2, timesteps: 3, features: 5}"


def case(layer: str = LSTM, input: str = INPUT, extra: str = "") -> str:
    """A one-case file: the case starts on line 2, layer is line 3, input line 4, extra from line 5."""
    return f"cases:\n  - id: c1\n    layer: {layer}\n    input: {input}\n" + extra




def flag(value: str, arg: str = "return_sequences") -> str:
    return case(layer=f"{{class: LSTM, units: 4, {arg}: {value}}}")


# name -> (file text, the exact message lines)
BAD = {
    "yes": (flag("yes"), ["c.yaml:3: case 'c1': layer.return_sequences: must be true or false, got 'yes' "
                          "(YAML 1.1 reads yes as true; write true)"]),
    "no": (flag("no"), ["c.yaml:3: case 'c1': layer.return_sequences: must be true or false, got 'no' "
                        "(YAML 1.1 reads no as false; write false)"]),
    "on": (flag("On", "go_backwards"), ["c.yaml:3: case 'c1': layer.go_backwards: must be true or false, got 'On' "
                                        "(YAML 1.1 reads On as true; write true)"]),
    "off": (flag("OFF", "unroll"), ["c.yaml:3: case 'c1': layer.unroll: must be true or false, got 'OFF' "
                                    "(YAML 1.1 reads OFF as false; write false)"]),
    "y": (flag("y", "stateful"), ["c.yaml:3: case 'c1': layer.stateful: must be true or false, got 'y' "
                                  "(YAML 1.1 reads y as true; write true)"]),
    "n": (flag("n", "return_state"), ["c.yaml:3: case 'c1': layer.return_state: must be true or false, got 'n' "
                                      "(YAML 1.1 reads n as false; write false)"]),
    "training_yes": (case(extra="    training: yes\n"),
                     ["c.yaml:5: case 'c1': training: must be true or false, got 'yes' "
                      "(YAML 1.1 reads yes as true; write true)"]),
    "use_cudnn_no": (flag("no", "use_cudnn"),
                     ["c.yaml:3: case 'c1': layer.use_cudnn: must be auto, true or false, got 'no' "
                      "(YAML 1.1 reads no as false; write false)"]),
    "octal": (case(layer="{class: LSTM, units: 010}"),
              ["c.yaml:3: case 'c1': layer.units: must be a positive integer, got '010' "
               "(write 10, or 8 if you meant octal)"]),
    "leading_zero": (case(layer="{class: LSTM, units: 08}"),
                     ["c.yaml:3: case 'c1': layer.units: must be a positive integer, got '08' (write 8)"]),
    "hex": (case(layer="{class: LSTM, units: 0x1_0}"),
            ["c.yaml:3: case 'c1': layer.units: must be a positive integer, got '0x1_0' "
             "(YAML 1.1 reads 0x1_0 as 16; write 16)"]),
    "sexagesimal": (case(input="{batch: 2, timesteps: 1:30, features: 5}"),
                    ["c.yaml:4: case 'c1': input.timesteps: must be an integer >= 0, got '1:30' "
                     "(YAML 1.1 reads 1:30 as 90, in base 60; write 90)"]),
    "underscores": (case(input="{batch: 1_0, timesteps: 3, features: 5}"),
                    ["c.yaml:4: case 'c1': input.batch: must be a positive integer, got '1_0' "
                     "(YAML 1.1 reads 1_0 as 10; write 10)"]),
    "binary": (case(input="{batch: 0b11, timesteps: 3, features: 5}"),
               ["c.yaml:4: case 'c1': input.batch: must be a positive integer, got '0b11' "
                "(YAML 1.1 reads 0b11 as 3; write 3)"]),
    "float_underscores": (case(extra="    tolerance: {atol: 0.000_1}\n"),
                          ["c.yaml:5: case 'c1': tolerance.atol: must be a finite non-negative number, "
                           "got '0.000_1' (YAML 1.1 reads 0.000_1 as 0.0001; write 0.0001)"]),
    "seed_octal": (case(extra="    seed: 017\n"),
                   ["c.yaml:5: case 'c1': seed: must be an integer >= 0, got '017' "
                    "(write 17, or 15 if you meant octal)"]),
    "layer_seed_hex": (flag("0xff", "seed"),
                       ["c.yaml:3: case 'c1': layer.seed: must be a non-negative integer or null, got '0xff' "
                        "(YAML 1.1 reads 0xff as 255; write 255)"]),
    "negative_octal": (case(input="{batch: 2, timesteps: 3, features: 5, scale: -010}"),
                       ["c.yaml:4: case 'c1': input.scale: must be a finite number, got '-010' "
                        "(write -10, or -8 if you meant octal)"]),
    # A note only where it helps: yes is no integer in any YAML.
    "yes_for_an_integer": (case(layer="{class: LSTM, units: yes}"),
                           ["c.yaml:3: case 'c1': layer.units: must be a positive integer, got 'yes'"]),
    "octal_for_a_flag": (flag("010"),
                         ["c.yaml:3: case 'c1': layer.return_sequences: must be true or false, got '010'"]),
    # Quoted, the author wrote a string: no word about YAML 1.1.
    "quoted_yes": (flag("'yes'"), ["c.yaml:3: case 'c1': layer.return_sequences: must be true or false, got 'yes'"]),
    "quoted_octal": (case(layer='{class: LSTM, units: "010"}'),
                     ["c.yaml:3: case 'c1': layer.units: must be a positive integer, got '010'"]),
    "bad_explicit_bool": (case(extra="    about: !!bool maybe\n"),
                          ["c.yaml:5: invalid YAML: cannot read 'maybe' as !!bool"]),
    "bad_explicit_float": (case(extra="    about: !!float abc\n"),
                           ["c.yaml:5: invalid YAML: cannot read 'abc' as !!float"]),
    "bad_explicit_timestamp": (case(extra="    about: !!timestamp 2020-13-45\n"),
                               ["c.yaml:5: invalid YAML: cannot read '2020-13-45' as !!timestamp"]),
}


@pytest.mark.parametrize("name", BAD)
def test_yaml11_spelling_is_refused(name, tmp_path):
    assert problems(tmp_path, BAD[name][0]) == BAD[name][1]


@pytest.mark.parametrize("name", BAD)
def test_cli_validate_exits_2_without_traceback(name, tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(BAD[name][0], encoding="utf-8")
    assert cli.main(["validate", str(path)]) == 2
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert BAD[name][1][0].replace("c.yaml", str(path), 1) in err.splitlines()


def test_plain_scalars_read_as_yaml_1_2():
    doc = yaml_lines.load(
        "t: true\nf: False\nyes: yes\non: 1\nzero: 0\nneg: -3\nplus: +7\noct: 010\nhex: 0x10\nbase60: 1:30\n"
        "u: 1_000\ne: 1e-5\nE: 2E+3\nd: 1.5e3\ndot: 1.\nlead: .5\ninf: -.inf\nnan: .nan\nnul: ~\n"
        "date: 2024-01-01\neq: =\no: 0o10\nq: 'yes'\n")
    assert doc == {"t": True, "f": False, "yes": "yes", "on": 1, "zero": 0, "neg": -3, "plus": 7, "oct": "010",
                   "hex": "0x10", "base60": "1:30", "u": "1_000", "e": 1e-5, "E": 2000.0, "d": 1500.0, "dot": 1.0,
                   "lead": 0.5, "inf": -math.inf, "nan": doc["nan"], "nul": None, "date": "2024-01-01", "eq": "=",
                   "o": "0o10", "q": "yes"}
    assert math.isnan(doc["nan"])
    assert [type(doc[k]) for k in ("t", "zero", "e", "dot")] == [bool, int, float, float]
    # What YAML 1.1 would have read is kept for the message; a quoted string is a plain str.
    assert [(doc[k].kind, doc[k].yaml11) for k in ("yes", "oct", "hex", "base60", "u")] == [
        ("bool", True), ("number", 8), ("number", 16), ("number", 90), ("number", 1000)]
    assert type(doc["q"]) is str and type(doc["o"]) is str  # 0o10 is a string in YAML 1.1 too
    # Explicit tags still mean what they say.
    assert yaml_lines.load("a: !!int 0x10\nb: !!bool yes\nc: !!str 010\n") == {"a": 16, "b": True, "c": "010"}


def test_a_yaml11_string_is_a_string_everywhere_else(tmp_path):
    """``about: yes`` and an id of digits are fine: only a field wanting a flag or a number refuses them."""
    path = tmp_path / "c.yaml"
    path.write_text(f"cases:\n  - id: 010\n    about: yes\n    layer: {LSTM}\n    input: {INPUT}\n", encoding="utf-8")
    (c,) = schema.load_file(path)
    assert (c.id, c.about) == ("010[cpu]", "yes")
    assert pickle.loads(pickle.dumps(c)).about == "yes"
    assert pickle.loads(pickle.dumps(yaml_lines.load("a: 010")["a"])).yaml11 == 8


def test_yaml11_keys_stay_strings(tmp_path):
    """YAML 1.1 makes the key ``on:`` a True; here it is the word, so the message names it."""
    assert problems(tmp_path, case(extra="    on: 1\n")) == [
        "c.yaml:5: case 'c1': on: unknown key (expected one of id, about, layer, model, input, mask, mask_via, "
        "initial_state, weights, dtype, devices, modes, seed, training, calls, sweep, expect, tolerance, requires, "
        "limits, got 'on')"]


def test_true_false_and_decimals_still_load(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(case(layer="{class: GRU, units: 10, return_sequences: True, go_backwards: FALSE}",
                         extra="    seed: 0\n    tolerance: {atol: 1e-5, rtol: 2.5E-4}\n"), encoding="utf-8")
    (c,) = schema.load_file(path)
    assert (c.layer["units"], c.layer["return_sequences"], c.layer["go_backwards"], c.seed) == (10, True, False, 0)
    assert c.tolerance == {"*": {"atol": 1e-5, "rtol": 2.5e-4}}


# A valid case touching every section; each leaf replaced by each hostile plain scalar must give
# a CaseSchemaError or a valid case, never another exception (that would be a traceback).
_FULL = {"cases": [{
    "id": "c1", "about": "x",
    "layer": {"class": "Bidirectional", "merge_mode": "concat",
              "layer": {"class": "LSTM", "units": 2, "stateful": True, "return_state": True, "seed": 1,
                        "use_cudnn": "auto", "kernel_initializer": {"class": "Constant", "value": 0.1}}},
    "input": {"batch": 2, "timesteps": 3, "features": 1, "data": "normal", "scale": 1.0},
    "mask": {"kind": "right_padded", "lengths": [1, 3]}, "mask_via": "argument",
    "initial_state": [[[0, 0], [0, 0]] for _ in range(4)], "weights": {"forward": {"bias": 0.5}},
    "dtype": "float32", "devices": ["cpu"], "seed": 3, "training": False,
    "calls": {"count": 2, "reset_before": [2], "batches": [2, 2]}, "sweep": {"layer.layer.units": [2]},
    "expect": {"params": 10, "values": {"call1.h_fw": [[0, 0], [0, 0]]},
               "mismatch": {"outputs": ["call2.c_bw"], "reason": "r"}},
    "tolerance": {"call1.output": {"atol": 1.0}}, "requires": {"keras": 3, "backend": "tensorflow"},
    "limits": {"sweep_points": 10, "timesteps": 10, "elements": 1000, "calls": 5},
}]}
# Written plain (unquoted) into the file, in place of a leaf.
_HOSTILE = ["yes", "010", "-0_7", "0x1_0", "1:30.5", "._", "=", "2024-13-45", "9" * 95, "0" + "7" * 5000,
            "0x" + "f" * 5000]


def _scalar_leaves(node, path=()):
    """Where a scalar sits (containers swapped for odd values: test_schema.py's odd-values test)."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        if isinstance(value, (dict, list)):
            yield from _scalar_leaves(value, path + (key,))
        else:
            yield path + (key,)


_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml's: the pure-Python emitter took most of the time


def test_hostile_scalars_anywhere_never_crash(tmp_path):
    path = tmp_path / "f.yaml"
    path.write_text(yaml.safe_dump(_FULL), encoding="utf-8")
    assert len(schema.load_file(path)) == 1  # the base case itself is valid
    crashes = []
    for where in _scalar_leaves(_FULL):
        for odd in _HOSTILE:
            doc = copy.deepcopy(_FULL)
            node = doc
            for key in where[:-1]:
                node = node[key]
            node[where[-1]] = "PLAIN_MARKER"
            path.write_text(yaml.dump(doc, Dumper=_DUMPER, width=10**6).replace("PLAIN_MARKER", odd),
                            encoding="utf-8")
            try:
                schema.load_file(path)
            except CaseSchemaError:
                pass
            except Exception as exc:  # noqa: BLE001 - collected and shown below
                crashes.append(f"{where} = {odd[:20]!r}: {type(exc).__name__}: {str(exc)[:200]}")
    assert crashes == []


def test_copy_tree_copies_mappings_and_lists_with_their_lines():
    """A sweep point's copy of its case (schema/expand.py): changing it leaves the case as loaded."""
    raw = yaml_lines.load("a:\n  b: [1, {c: 2}]\n  d: x\n")
    copied = yaml_lines.copy_tree(raw)
    assert copied == raw and copied["a"].line_of("d") == 3 and copied["a"]["b"][1].line == 2
    copied["a"]["b"][1]["c"] = 5
    copied["a"]["b"].append(6)
    copied["a"].key_lines["d"] = 9
    assert raw["a"]["b"] == [1, {"c": 2}] and raw["a"].line_of("d") == 3
