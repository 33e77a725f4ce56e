"""The benchmark's own parts that need no Keras: its 10,000-case sweep, its clocks, its arguments."""
from __future__ import annotations

import contextlib

import pytest

from harness import benchmark, schema


def test_the_collection_sweep_is_a_case_file_of_10000_cases(tmp_path):
    path = tmp_path / "bench.yaml"
    path.write_text(benchmark.SWEEP_10K, encoding="utf-8")
    assert len(schema.load_file(path)) == 10_000


def test_a_clock_counts_nested_calls_once():
    clock, seen = benchmark._Clock(), []

    @clock
    def outer():
        seen.append("outer")
        inner()

    @clock
    def inner():
        seen.append("inner")

    outer()
    inner()
    assert seen == ["outer", "inner", "inner"] and clock.depth == 0 and clock.seconds > 0


def test_a_clocked_region_wraps_its_block_and_lets_exceptions_through():
    clock, entered = benchmark._Clock(), []

    @contextlib.contextmanager
    def region(name):
        entered.append(name)
        yield

    timed = clock.region(region)
    with timed("a"), timed("b"):
        pass
    with pytest.raises(ValueError), timed("c"):
        raise ValueError("through")
    assert entered == ["a", "b", "c"] and clock.depth == 0


def test_the_harness_share_is_what_keras_and_the_reference_leave():
    got = benchmark.Split(cases=4, total=1.0, forward=0.6, keras=0.8, reference=0.1)
    assert got.harness == pytest.approx(0.1)
    assert got.ms(got.total) == 250.0


def test_the_xdist_ratios_are_the_speed_up_and_the_tests_against_the_cases():
    assert benchmark.xdist_ratios(tests=150.0, cases_n0=200.0, cases_n2=100.0) == [
        "  pytest -n 2 speed-up over -n 0 on the cases: 2.00x",
        "  the harness's own tests take 1.50x the time of the case library (both pytest -n 2; under 1 is faster)"]


def test_an_unknown_part_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exited:
        benchmark.main(["--only", "overhead,bogus"])
    assert exited.value.code == 2
    assert "unknown part 'bogus'; the parts: collection, overhead, cli, flavours, memory, xdist, library" in \
        capsys.readouterr().err
