"""One selection grammar (harness/select.py, harness/markers.py): on the bundled library, every way
the README gives to pick cases selects the same cases in ``keras-equiv`` as in ``pytest``, and
``--lf`` reruns exactly the cases that failed.  pytest runs in a subprocess (collection only: no
TensorFlow is imported), one ``pytest.main`` per way, all the ways in one process."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.select import select

ROOT = Path(__file__).resolve().parents[2]
FULL = "lstm-return-flags[return_sequences:true+return_state:false+cpu]"
FULL_PATH = "cases/lstm/return_flags.yaml"  # where FULL is

# (pytest arguments, keras-equiv list arguments): the README's ways to pick cases.
WAYS = [
    (["-k", "lstm-return-flags[return_sequences:true+return_state:false+cpu]"],
     ["-k", "lstm-return-flags[return_sequences:true+return_state:false+cpu]"]),
    (["-k", "reset_after:false and not float64"], ["-k", "reset_after:false and not float64"]),
    (["-k", "lstm-return-flags"], ["-k", "lstm-return-flags"]),
    (["-k", "masking.yaml and not gpu"], ["-k", "masking.yaml and not gpu"]),
    (["-m", "gru and float64"], ["-m", "gru and float64"]),
    (["-m", "mismatch or (error and bidirectional)"], ["-m", "mismatch or (error and bidirectional)"]),
    (["-m", "stateful and not lstm", "-k", "reset"], ["-m", "stateful and not lstm", "-k", "reset"]),
]


# Collects once per argument list, each with its own pytest.main in one process, and prints
# {arguments joined by NUL: the collected node ids}.
COLLECT_SCRIPT = textwrap.dedent("""
    import json, sys
    import pytest

    class Ids:
        def pytest_collection_finish(self, session):
            self.ids = [item.nodeid for item in session.items]

    out = {}
    for args in json.loads(sys.argv[1]):
        ids = Ids()
        code = pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", *args],
                           plugins=[ids])
        out["\\0".join(args)] = {"code": int(code), "ids": getattr(ids, "ids", None)}
    print(json.dumps(out))
""")
FOLDER = ("cases/gru",)


def _arguments(args: tuple[str, ...]) -> list[str]:
    """pytest's arguments for one way: the bundled cases/ unless a path is among them."""
    return [*([] if any(a.startswith("cases/") for a in args) else ["cases"]), *args]


_COLLECTED: dict[str, dict] = {}


def pytest_ids(*args: str) -> list[str]:
    """The ids pytest collects with these arguments, run from the project.  Every argument list
    this file asks about is collected at the first call, in one subprocess."""
    if not _COLLECTED:
        full = f"{FULL_PATH}::{FULL}"
        every = [_arguments(tuple(w[0])) for w in WAYS] + [_arguments(FOLDER), _arguments((full,))]
        proc = subprocess.run([sys.executable, "-c", COLLECT_SCRIPT, json.dumps(every)], cwd=ROOT,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        _COLLECTED.update(json.loads(proc.stdout.strip().splitlines()[-1]))
    got = _COLLECTED["\0".join(_arguments(args))]
    assert got["code"] in (0, 5) and got["ids"] is not None, got  # 5: nothing selected
    return [nodeid.split("::", 1)[1] for nodeid in got["ids"]]


@pytest.mark.parametrize("theirs, ours", WAYS, ids=[" ".join(w[0]) for w in WAYS])
def test_both_tools_select_the_same_cases(theirs, ours, monkeypatch):
    monkeypatch.chdir(ROOT)
    keyword = ours[ours.index("-k") + 1] if "-k" in ours else None
    marks = ours[ours.index("-m") + 1] if "-m" in ours else None
    mine = [c.id for c in select(["cases"], keyword=keyword, marks=marks)]
    assert mine, "a way that picks nothing proves nothing"
    assert sorted(pytest_ids(*theirs)) == sorted(mine)


def test_a_folder_selects_the_same_cases(monkeypatch):
    monkeypatch.chdir(ROOT)
    assert sorted(pytest_ids(*FOLDER)) == sorted(c.id for c in select(list(FOLDER)))


def test_a_full_id_is_a_pytest_node_and_a_cli_target(monkeypatch):
    monkeypatch.chdir(ROOT)
    [case] = select([FULL])
    assert str(case.path) == FULL_PATH
    assert pytest_ids(f"{case.path}::{FULL}") == [FULL]
    assert [c.id for c in select([f"{case.path}::{FULL}"])] == [FULL]


def test_last_failed_reruns_exactly_the_failed_sweep_points(pytester):
    """pytest 9 parses the nodeids --lf reads back (NodeId: names and [params]); an id with text
    after its bracket never compared equal, so --lf ran every case again."""
    pytester.makeini("[pytest]\nkeras_equiv_paths = *.yaml\n")
    pytester.makefile(".yaml", sweep=(
        "cases:\n  - id: tiny\n    layer: {class: SimpleRNN, units: 2}\n"
        "    input: {batch: 1, timesteps: 2, features: 1}\n    sweep: {layer.units: [2, 3, 4]}\n"
        "    expect: {params: 8}\n"))  # right for units 2 only (2*1 + 2*2 + 2): no Keras needed to see it
    pytester.makeconftest(
        "import harness.runner as runner\nfrom harness import layers, keras_api\n"
        "from harness.result import CaseResult, Verdict\n"
        "def fake(case, *a, **k):\n"
        "    n, _ = layers.param_formula(keras_api.with_defaults(case.layer), case.input.features)\n"
        "    return CaseResult(case, Verdict.PASS if n == case.expect.params else Verdict.FAIL, message=str(n))\n"
        "runner.run_case = fake\n")
    first = pytester.runpytest_subprocess()
    first.assert_outcomes(passed=1, failed=2)
    again = pytester.runpytest_subprocess("--lf", "-v")
    again.assert_outcomes(failed=2)  # and nothing else ran
    again.stdout.fnmatch_lines(["*sweep.yaml::tiny[[]units:3+cpu[]] FAILED*",
                                "*sweep.yaml::tiny[[]units:4+cpu[]] FAILED*"])
