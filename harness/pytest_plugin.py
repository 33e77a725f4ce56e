"""pytest plugin: every expanded case in a YAML file under a ``cases/`` directory is one item.

Loaded by the root conftest.py and registered as a ``pytest11`` entry point.  Collection only
parses YAML: TensorFlow is imported by the first item that runs.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from . import flavours, runner, schema
from .errors import CaseFailure, CaseSchemaError, HarnessError
from .report import failure_text
from .result import Verdict
from .select import with_device

_IDS = pytest.StashKey[schema.IdRegistry]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """pytest_addoption: the harness's own options."""
    group = parser.getgroup("keras-equiv")
    group.addoption("--device", choices=("cpu", "gpu", "all"), default=None,
                    help="run every case on this device instead of the devices it lists")
    group.addoption("--keras", choices=flavours.FLAVOURS, default=None, metavar="FLAVOUR",
                    help="which Keras runs the cases: tensorflow (default), jax, torch or tf_keras")
    group.addoption("--require-gpu", action="store_true", default=False,
                    help="fail gpu cases when no GPU is visible instead of skipping them")
    group.addoption("--tf32", action="store_true", default=False,
                    help="allow TF32 matmuls on the GPU (float32 gpu cases use the float32+tf32 tolerance row)")


def pytest_configure(config: pytest.Config) -> None:
    """pytest_configure: the Keras flavour and (in an xdist worker) the GPU, before any Keras import;
    the markers cases get."""
    flavour = config.getoption("keras", None)
    if flavour is not None:
        missing = flavours.missing_package(flavour)
        if missing:
            raise pytest.UsageError(missing)
        try:
            flavours.select(flavour)
        except HarnessError as exc:
            raise pytest.UsageError(str(exc)) from None
    # In an xdist worker: gwN -> CUDA_VISIBLE_DEVICES=N mod GPUs; nothing in the controller or without xdist.
    flavours.pin_worker_gpu(getattr(config, "workerinput", {}).get("workerid"))
    config.stash[_IDS] = schema.IdRegistry()
    config.addinivalue_line("markers", "gpu: the case runs on a GPU")
    config.addinivalue_line("markers", "keras2: the case needs legacy Keras 2 (tf_keras)")
    config.addinivalue_line("markers", "slow: a large case")


def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    """pytest_collect_file: YAML files inside a directory named ``cases``."""
    if file_path.suffix in (".yaml", ".yml") and "cases" in file_path.parent.parts:
        return CaseFile.from_parent(parent, path=file_path)
    return None


class CaseFile(pytest.File):
    """One YAML case file."""

    def collect(self):
        cases = schema.load_file(self.path, display=self.nodeid)
        problems = self.config.stash[_IDS].add(cases)
        if problems:
            raise CaseSchemaError(problems)
        for case in with_device(cases, self.config.getoption("device")):
            yield CaseItem.from_parent(self, name=case.id, case=case)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, CaseSchemaError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


class CaseItem(pytest.Item):
    """One expanded case on one device."""

    def __init__(self, *, case, **kwargs):
        super().__init__(**kwargs)
        self.case = case
        if case.device == "gpu":
            self.add_marker(pytest.mark.gpu)
        if case.requires.get("keras") == 2:
            self.add_marker(pytest.mark.keras2)

    def runtest(self) -> None:
        options = runner.RunOptions(tf32=self.config.getoption("tf32", False),
                                    require_gpu=self.config.getoption("require_gpu", False))
        result = runner.run_case(self.case, options)
        if result.verdict == Verdict.SKIP:
            pytest.skip(result.message)
        if result.verdict.failed:
            raise CaseFailure(result)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, CaseFailure):
            return failure_text(excinfo.value.result)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, self.case.line - 1, f"case: {self.case.id}"
