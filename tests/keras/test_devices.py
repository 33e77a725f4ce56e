"""Devices: gpu cases without a GPU (skip, or fail under --require-gpu), where output tensors
live, the kernel and device checks, and TF32 (one GPU per xdist worker: tests/unit/test_gpu_pinning.py).

This machine has no GPU: the GPU side is tested through its decision logic, the skip and fail
paths, and Keras runs whose recorded device or kernel is replaced to what a GPU would report.
Keras is imported here first so pytester's sys.modules snapshot keeps it.
"""
from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest

from harness import kernels, runner, schema, session, tolerances
from harness.case import OutputKey
from harness.cli import main
from harness.runner import RunOptions

pytest.importorskip("keras")
if session.gpu_available():
    pytest.skip("a GPU is visible: these tests pin the no-GPU behaviour", allow_module_level=True)

# One-unit linear SimpleRNN, worked by hand: h1 = 0.5*1 + 0.125 = 0.625,
# h2 = 0.5*2 + 0.25*0.625 + 0.125 = 1.28125 (exact in binary).
GPU_CASE = """\
cases:
  - id: tiny-gpu
    layer: {class: SimpleRNN, units: 1, activation: linear}
    input: {data: values, values: [[[1.0], [2.0]]]}
    weights: {kernel: [[0.5]], recurrent_kernel: [[0.25]], bias: [0.125]}
    devices: [cpu, gpu]
    expect:
      values: {output: [[1.28125]]}
"""
NO_GPU = "gpu case: no GPU visible to Keras"


@pytest.fixture
def case_file(tmp_path):
    folder = tmp_path / "cases"
    folder.mkdir()
    path = folder / "tiny_gpu.yaml"
    path.write_text(GPU_CASE, encoding="utf-8")
    return path


def _cases(path):
    return {c.device: c for c in schema.load_file(path)}


# ---------------------------------------------------------------- no GPU: skip, or fail on request

def test_gpu_case_is_skipped_with_the_reason(case_file):
    result = runner.run_case(_cases(case_file)["gpu"])
    assert (result.verdict, result.kernel) == ("skip", "")
    assert result.message.startswith(NO_GPU)


def test_require_gpu_turns_the_skip_into_a_failure(case_file):
    result = runner.run_case(_cases(case_file)["gpu"], RunOptions(require_gpu=True))
    assert result.verdict == "fail"
    assert [c.name for c in result.failures] == ["device"] and "--require-gpu" in result.message


def test_cli_require_gpu(case_file, capsys):
    assert main(["run", "-n", "0", str(case_file), "-k", "gpu"]) == 0
    assert "SKIP  tiny-gpu[gpu]" in capsys.readouterr().out
    assert main(["run", "-n", "0", str(case_file), "-k", "gpu", "--require-gpu"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  tiny-gpu[gpu]" in out and "(--require-gpu)" in out
    # the cpu copy of the case is untouched by the option
    assert main(["run", "-n", "0", str(case_file), "--device", "cpu", "--require-gpu"]) == 0


def test_pytest_require_gpu(pytester, case_file):
    (pytester.path / "cases").mkdir()
    (pytester.path / "cases" / "tiny_gpu.yaml").write_text(GPU_CASE, encoding="utf-8")
    plain = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-rs")
    plain.assert_outcomes(passed=1, skipped=1)
    plain.stdout.fnmatch_lines([f"*{NO_GPU}*"])
    strict = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--require-gpu")
    strict.assert_outcomes(passed=1, failed=1)
    strict.stdout.fnmatch_lines([f"device: {NO_GPU}*(--require-gpu)", "FAILED *tiny-gpu[[]gpu[]] - device: gpu case*"])


# ---------------------------------------------------------------- where tensors live

def test_cpu_run_records_the_device_and_kernel_of_its_tensors(case_file):
    result = runner.run_case(_cases(case_file)["cpu"], RunOptions(keep=True))
    assert result.verdict == "pass", result.message
    assert (result.device, result.kernel) == ("cpu", "generic")  # SimpleRNN: the generic loop, on the CPU
    assert result.keras_run.observed == "generic" and result.keras_run.predicted.kernel == "generic"


@pytest.mark.parametrize("tensor, device", [
    (SimpleNamespace(device="/job:localhost/replica:0/task:0/device:GPU:0"), "gpu"),  # TF
    (SimpleNamespace(device="/job:localhost/replica:0/task:0/device:CPU:0"), "cpu"),
    (SimpleNamespace(device=SimpleNamespace(type="cuda", index=0)), "gpu"),  # torch.device
    (SimpleNamespace(device=SimpleNamespace(type="cpu", index=None)), "cpu"),
    (SimpleNamespace(devices=lambda: [SimpleNamespace(platform="gpu")]), "gpu"),  # jax.Array.devices()
    (SimpleNamespace(devices=lambda: [SimpleNamespace(platform="cpu")]), "cpu"),
])
def test_tensor_device_reads_tf_torch_and_jax_tensors(tensor, device):
    assert session.tensor_device(tensor) == device


def _replayed(case, **changes):
    """The case's real CPU Keras run, with fields replaced as a GPU machine would report them."""
    real = runner.run_case(dataclasses.replace(case, device="cpu", base_id=case.base_id + "-real"),
                           RunOptions(keep=True))
    assert real.verdict == "pass", real.message
    return runner.run_case(case, keras_cache={case.id: dataclasses.replace(real.keras_run, **changes)})


def test_gpu_case_whose_tensors_stayed_on_the_cpu_fails(case_file):
    # tf-keras's device(should_use_gpu=True) falls back to the CPU silently (docs/peers.md): not here.
    result = _replayed(_cases(case_file)["gpu"], device="cpu")
    assert result.verdict == "fail"
    assert [(c.name, c.detail) for c in result.failures] == [
        ("device", "gpu case, but the output tensors are on the CPU")]


def test_cpu_case_whose_tensors_went_to_the_gpu_fails(case_file):
    result = _replayed(_cases(case_file)["cpu"], device="gpu")
    assert [c.name for c in result.failures] == ["device"]


# ---------------------------------------------------------------- the kernel that ran

def test_kernel_other_than_predicted_fails(case_file):
    result = _replayed(_cases(case_file)["gpu"], device="gpu", observed="cudnn", kernel="cudnn")
    assert [c.name for c in result.failures] == ["kernel"]
    assert result.message.startswith("Keras ran the cudnn kernel, but harness/kernels.py predicted generic "
                                     "(SimpleRNN has no fused kernel")


def test_cpu_case_that_ran_cudnn_fails(case_file):
    # Keras 3 TF picks cuDNN whenever a GPU is visible, whatever the device scope (§11): such a
    # "cpu" result would come from a GPU, so it fails even when kernels.py predicted it.
    cudnn = kernels.Decision("cudnn", "GPU visible")
    result = _replayed(_cases(case_file)["cpu"], observed="cudnn", kernel="cudnn", predicted=cudnn)
    assert [c.name for c in result.failures] == ["kernel"]
    assert result.message.startswith("cpu case, but the cuDNN kernel ran")


def test_expect_kernel(case_file):
    cpu = _cases(case_file)["cpu"]
    wants = lambda k: dataclasses.replace(cpu, expect=dataclasses.replace(cpu.expect, kernel=k))
    assert runner.run_case(wants("generic")).verdict == "pass"
    failed = runner.run_case(wants("cudnn"))
    assert failed.verdict == "fail"
    assert failed.message.startswith("expect.kernel cudnn, ran generic (SimpleRNN has no fused kernel")


def test_expect_kernel_is_validated(tmp_path):
    path = tmp_path / "k.yaml"
    path.write_text("cases:\n  - id: k\n    layer: {class: GRU, units: 2}\n    input: {timesteps: 2, features: 1}\n"
                    "    expect: {kernel: cudn}\n", encoding="utf-8")
    with pytest.raises(schema.CaseSchemaError) as info:
        schema.load_file(path, display="k.yaml")
    assert str(info.value) == ("k.yaml:5: case 'k': expect.kernel: unknown kernel; did you mean 'cudnn'? "
                               "(expected one of cudnn, fused, generic, got 'cudn')")


# ---------------------------------------------------------------- TF32

def test_tf32_row_applies_to_float32_gpu_cases_only(case_file):
    cases, out = _cases(case_file), OutputKey("output")
    assert tolerances.resolve(cases["gpu"], out, tf32=True).atol == 1e-3
    assert tolerances.resolve(cases["gpu"], out, tf32=True).source == "dtype default float32+tf32"
    assert tolerances.resolve(cases["gpu"], out).atol == 1e-5  # TF32 off by default
    assert tolerances.resolve(cases["cpu"], out, tf32=True).atol == 1e-5  # no TF32 on a CPU
    assert tolerances.resolve(dataclasses.replace(cases["gpu"], dtype="float64"), out, tf32=True).atol == 1e-12


def _tf32_enabled() -> bool:
    """The backend's own TF32 switch, read back from the backend."""
    backend = session.keras().backend.backend()
    if backend == "torch":
        torch = pytest.importorskip("torch")
        return torch.backends.cuda.matmul.allow_tf32
    if backend == "jax":
        jax = pytest.importorskip("jax")
        return jax.config.jax_default_matmul_precision == "tensorfloat32"
    tf = pytest.importorskip("tensorflow")
    return tf.config.experimental.tensor_float_32_execution_enabled()


def test_tf32_is_switched_per_case(case_file):
    cpu = _cases(case_file)["cpu"]
    assert runner.run_case(cpu, RunOptions(tf32=True)).verdict == "pass"
    assert _tf32_enabled() is True
    assert runner.run_case(cpu).verdict == "pass"
    assert _tf32_enabled() is False
