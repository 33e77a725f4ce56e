"""One GPU per pytest-xdist worker (harness/flavours.py), decided without importing Keras."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from harness import flavours

# ---------------------------------------------------------------- one GPU per xdist worker

SMI = """\
GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-11111111-2222-3333-4444-555555555555)
GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-66666666-7777-8888-9999-000000000000)
  MIG 1g.10gb     Device  0: (UUID: MIG-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee)
"""


@pytest.mark.parametrize("worker, count, gpu", [
    ("gw0", 2, "0"), ("gw1", 2, "1"), ("gw2", 2, "0"), ("gw7", 4, "3"), ("gw5", 1, "0"),
    ("gw0", 0, None), ("master", 2, None), ("", 2, None),
])
def test_worker_gpu_is_the_worker_number_mod_the_gpu_count(worker, count, gpu):
    assert flavours.worker_gpu(worker, count) == gpu


def test_worker_gpu_indexes_an_existing_visible_list():
    assert [flavours.worker_gpu(f"gw{n}", 2, ["2", "3"]) for n in range(4)] == ["2", "3", "2", "3"]


def test_gpu_count_without_importing_tensorflow():
    assert flavours.gpu_count({}, smi_output=SMI) == 2  # MIG lines are not GPUs
    assert flavours.gpu_count({}, smi_output="") == 0
    assert flavours.gpu_count({"KERAS_EQUIV_GPUS": "3"}, smi_output=SMI) == 3
    assert flavours.gpu_count({"CUDA_VISIBLE_DEVICES": "4,6"}, smi_output=SMI) == 2
    assert flavours.gpu_count({"CUDA_VISIBLE_DEVICES": ""}, smi_output=SMI) == 0
    assert flavours.gpu_count({"CUDA_VISIBLE_DEVICES": "-1"}, smi_output=SMI) == 0


def test_pin_worker_gpu_sets_the_environment():
    env = {"TF_FORCE_GPU_ALLOW_GROWTH": "false"}
    assert flavours.pin_worker_gpu("gw3", env, smi_output=SMI) == "1"
    assert env["CUDA_VISIBLE_DEVICES"] == "1"
    assert env["TF_FORCE_GPU_ALLOW_GROWTH"] == "false"  # the user's own setting wins
    assert env["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    outside = {"PYTEST_XDIST_WORKER": "gw1"}  # inherited by a pytest started inside a worker: not a worker
    assert flavours.pin_worker_gpu(None, outside, smi_output=SMI) is None
    assert outside == {"PYTEST_XDIST_WORKER": "gw1"}


def test_a_visible_list_shorter_than_the_count_is_never_overrun():
    # A run nested in a pinned worker sees CUDA_VISIBLE_DEVICES=1 while KERAS_EQUIV_GPUS says 2.
    env = {"KERAS_EQUIV_GPUS": "2", "CUDA_VISIBLE_DEVICES": "1"}
    assert flavours.pin_worker_gpu("gw1", env) == "1"


def test_hidden_gpus_stay_hidden_whatever_the_count_says():
    env = {"KERAS_EQUIV_GPUS": "2", "CUDA_VISIBLE_DEVICES": "-1"}
    assert flavours.pin_worker_gpu("gw0", env) is None
    assert env["CUDA_VISIBLE_DEVICES"] == "-1"  # GPU 0 was re-exposed here


PROBE = """
import os, sys

TF_AT_IMPORT = "tensorflow" in sys.modules


def check():
    worker = os.environ["PYTEST_XDIST_WORKER"]
    assert not TF_AT_IMPORT
    assert os.environ["CUDA_VISIBLE_DEVICES"] == str(int(worker[2:]) % 2), worker


def test_a():
    check()


def test_b():
    check()
"""


def test_xdist_workers_are_pinned_before_tensorflow_is_imported(pytester, monkeypatch):
    pytester.makepyfile(test_probe=PROBE)
    monkeypatch.setenv("KERAS_EQUIV_GPUS", "2")  # stands in for nvidia-smi on this GPU-less machine
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_flavour_and_gpu_count_modules_never_import_keras():
    code = ("import sys; from harness import flavours, kernels; flavours.gpu_count({}, smi_output='');"
            "print([m for m in ('keras', 'tensorflow', 'tf_keras', 'jax', 'torch') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out.strip().replace("'", '"')) == []
