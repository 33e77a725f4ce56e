"""The harness is sensitive: every planted bug of harness/mutants.py makes some bundled case fail.

Keras runs once per case for the whole session (one shared cache); each mutant tries the cases
most likely to expose it first and stops at the first failure.  A failure counts as a kill only
when the unmutated reference passes that same case.  tests/conftest.py prints the
"sensitivity: N/M planted bugs killed" line at the end of the run.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness import layers as facts
from harness import mutants, schema
from harness import reference as real_reference
from harness.keras_api import with_defaults
from harness.reference import DropoutMasks
from harness.mutants import BACKWARD_MUTANTS, BY_NAME, MUTANTS
from harness.runner import run_case

CASES_DIR = Path(__file__).resolve().parents[2] / "cases"
NAMES = [m.name for m in MUTANTS]  # planted in the recurrent reference
HUNTED = NAMES + [m.name for m in BACKWARD_MUTANTS]  # and in its backward pass


@pytest.fixture(scope="session")
def bundled_cases():
    return schema.load_files(schema.find_case_files([CASES_DIR]))


@pytest.fixture(scope="session")
def keras_cache() -> dict:
    return {}  # case id -> Keras run (or its exception), shared by every mutant


@pytest.fixture(scope="session")
def control() -> dict:
    return {}  # case id -> CaseResult of the unmutated reference


@pytest.fixture(scope="session")
def hunts(bundled_cases, keras_cache, control):
    found: dict[str, mutants.Hunt] = {}

    def get(name: str) -> mutants.Hunt:
        if name not in found:
            found[name] = mutants.hunt(BY_NAME[name], bundled_cases, keras_cache, control)
        return found[name]

    return get


@pytest.mark.parametrize("name", HUNTED)
def test_planted_bug_is_killed(name, hunts, record_property):
    found = hunts(name)
    record_property("killed_by", found.killer or "")
    unfair = f"; failing for the real reference too (not counted): {found.unfair}" if found.unfair else ""
    assert found.killed, (f"planted bug {name!r} ({found.mutant.about}) survived all {len(found.tried)} "
                          f"bundled cases that judge the reference{unfair}")
    print(f"{name}: killed by {found.killer} ({found.verdict}: {found.message})")


def test_unmutated_reference_passes_the_cases_the_hunts_use(bundled_cases, hunts, keras_cache, control):
    by_id = {c.id: c for c in bundled_cases}
    used = list(dict.fromkeys(cid for name in HUNTED for cid in hunts(name).tried))
    assert used, "the hunts ran no case at all"
    bad = []
    for cid in used:
        if cid not in control:
            control[cid] = run_case(by_id[cid], keras_cache=keras_cache)
        if control[cid].verdict not in ("pass", "skip"):
            bad.append(f"{cid}: {control[cid].verdict}: {control[cid].message.strip()[:200]}")
    assert not bad, "the real reference fails cases the sensitivity hunt uses:\n" + "\n".join(bad)


# ---------------------------------------------------------------- each mutant really is a bug

def _probe(ref) -> list[np.ndarray]:
    """Everything a battery of tiny NumPy-only runs returns (no Keras): every cell, both
    directions, masks with leading/middle gaps, random initial states, Bidirectional, two
    chained stateful calls, a hard_sigmoid cell, dropout masks per gate and shared.
    Units = features = 2."""
    gen = np.random.default_rng(7)
    x = gen.standard_normal((2, 3, 2))
    mask = np.array([[1, 0, 1], [0, 1, 1]], dtype=bool)
    cells = [{"class": "LSTM"}, {"class": "GRU"}, {"class": "GRU", "reset_after": False},
             {"class": "SimpleRNN"}, {"class": "LSTM", "recurrent_activation": "hard_sigmoid"}]
    layers = []
    for cell in cells:
        base = {**cell, "units": 2, "return_sequences": True, "return_state": True}
        layers += [{**base, "go_backwards": back} for back in (False, True)]
        layers.append({"class": "Bidirectional", "layer": base})
    out = []
    for spec in layers:
        cfg = with_defaults(spec)
        shapes = facts.weight_shapes(cfg, 2)
        w = {k: ({n: gen.uniform(-1, 1, s) for n, s in v.items()} if isinstance(v, dict)
                 else gen.uniform(-1, 1, v)) for k, v in shapes.items()}
        n_states = len(facts.state_output_names(cfg))
        init = [gen.standard_normal((2, 2)) for _ in range(n_states)]
        for m in (None, mask):
            first, states = ref.forward(cfg, x, w, m, init)
            second, _ = ref.forward(cfg, x, w, m, states)  # a stateful layer's next call
            out += [v for r in (first, second) for v in r.values()]
    # Training-mode dropout through the same cells: one mask per gate, and one shared mask.
    for cell in cells[:4]:
        cfg = with_defaults({**cell, "units": 2, "return_sequences": True, "return_state": True})
        w = {k: gen.uniform(-1, 1, s) for k, s in facts.weight_shapes(cfg, 2).items()}
        k = facts.gates(cfg["class"])
        for n in (k, 1):
            masks = DropoutMasks(tuple(gen.choice([0.0, 2.0], (2, 2)) for _ in range(n)),
                                 tuple(gen.choice([0.0, 2.0], (2, 2)) for _ in range(n)))
            out += list(ref.forward(cfg, x, w, dropout=masks)[0].values())
    return out


@pytest.fixture(scope="module")
def probe_baseline():
    return _probe(real_reference)


@pytest.mark.parametrize("name", NAMES)
def test_planted_bug_changes_the_reference(name, probe_baseline):
    """No Keras: the mutant loads and computes something different (it is not an equivalent copy)."""
    try:
        got = _probe(BY_NAME[name].load())
    except mutants.MutantError:
        raise
    except Exception:  # noqa: BLE001 - a crash is a difference too, but say so: values are better
        pytest.fail(f"{name} crashes on the probe instead of computing different numbers")
    differs = len(got) != len(probe_baseline) or any(
        a.shape != b.shape or not np.allclose(a, b, rtol=0, atol=1e-12)
        for a, b in zip(got, probe_baseline, strict=True))
    assert differs, f"{name} computes exactly what the reference computes"


def test_mutants_have_unique_names_and_one_line_descriptions():
    assert len(NAMES) == len(set(NAMES)) >= 14
    for m in MUTANTS:
        assert m.about and "\n" not in m.about, m.name


def test_summary_line_counts_survivors(pytester):
    """The conftest hook counts a failing kill test as a surviving bug and names it."""
    pytester.makeconftest((Path(__file__).parents[1] / "conftest.py").read_text(encoding="utf-8"))
    pytester.makepyfile(test_sensitivity="""
        import pytest

        @pytest.mark.parametrize("name", ["caught", "missed"])
        def test_planted_bug_is_killed(name, record_property):
            record_property("killed_by", "some-case" if name == "caught" else "")
            assert name == "caught"
    """)
    result = pytester.runpytest_subprocess("-v", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["killed  caught  by some-case", "ALIVE   missed",
                                 "sensitivity: 1/2 planted bugs killed"])
