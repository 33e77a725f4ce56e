"""pytest plugin: every expanded case of a keras-equiv case file is one item.

Loaded by the root conftest.py and registered as a ``pytest11`` entry point, so it is active in
every pytest run of an environment where keras-equiv is installed; it claims only its own files
and options.  Collection only parses YAML: TensorFlow is imported by the first item that runs.

Which files are case files.  A file is a keras-equiv case file when both hold:

1. its path relative to the rootdir matches one of the glob patterns of the ini option
   ``keras_equiv_paths`` (default ``cases/**/*.yaml cases/**/*.yml``: ``**`` stands for any
   number of directories, none included; ``*``, ``?`` and ``[...]`` stay inside one directory),
   or the file itself is named on the command line;
2. its top level is a YAML mapping with a ``cases`` key.  Only this much is read, and reading
   never fails: a file that is not YAML at all counts as having the key only when one of its
   lines starts with ``cases:`` (so a case file with a YAML syntax error still reports it).

pytest and other plugins keep every other file (a ``tests/cases/config.yaml`` without a
``cases:`` key, ``mkdocs.yml``), silently.  A claimed file that is not a valid case file is a
collection error listing its problems.

Options, each with a short alias that is kept while no other plugin or conftest.py defines the
same name (the long name always works): ``--keras-equiv-device`` / ``--device`` cpu|gpu|all,
``--keras-equiv-mode`` / ``--mode`` eager|function|xla|predict|symbolic|all,
``--keras-equiv-keras`` / ``--keras`` FLAVOUR, ``--keras-equiv-require-gpu`` / ``--require-gpu``,
``--keras-equiv-tf32`` / ``--tf32``, ``--keras-equiv-timeout SECONDS`` and ``--keras-equiv-plot DIR``
(``keras-equiv run --plot``: a PNG per diagnosed failure).

Per-case time limit: ``--keras-equiv-timeout SECONDS`` (or the ini option
``keras_equiv_timeout``; 0, the default, is no limit).  A watchdog thread sends SIGINT to the
main thread when a case runs longer, and the plugin's handler (installed for the duration of the
case only; a real Ctrl-C still interrupts the run) turns it into an error verdict of that case:
``case exceeded its 30 s limit``, followed by where it was stopped; the next case runs as usual.
Only Python code is interrupted: a call into C that never returns (a deadlocked kernel) holds the
case until it does.  Without ``signal.pthread_kill`` (Windows) a blocking sleep is not cut short
either.  Cases run outside the main thread get no limit.

What a run leaves: each case's ``CaseResult`` is stashed on its item; its junit ``<properties>``
(``item.user_properties``, see ``junit_properties``); ``--tb=line`` gives ``path:line: verdict``
per failed case, ``--tb=short`` the verdict and the reproduce line, any other style the full
report (report.failure_text); and the end of the run prints ``report.summary`` of every case that
ran (counts, largest error by dtype), under xdist too: the result travels back from the worker
on its test report.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from . import flavours, plot, schema
from .errors import HarnessError
from .markers import MARKERS
from .modes import ALL as ALL_MODES
from .modes import MODES
from .pytest_files import glob_regex, is_case_file
from .pytest_items import REPORT_ATTR, CaseFile, CaseItem, RunSummary, encode_result
from .pytest_options import ALIASES, DEFAULT_PATHS, DEVICES, IDS, OPTIONS, PATTERNS, RESULT, TIMEOUT, Aliases, \
    checked_choice, timeout_of


def pytest_addoption(parser: pytest.Parser) -> None:
    """pytest_addoption: the harness's own options (namespaced, with short aliases) and ini options."""
    group = parser.getgroup("keras-equiv")
    aliases = Aliases()
    for name, alias, dest, attrs in OPTIONS:
        aliases.addoption(parser, group, name, alias, dest=dest, **attrs)
    group.addoption("--keras-equiv-timeout", dest="keras_equiv_timeout", type=float, default=None,
                    metavar="SECONDS", help="fail a case that runs longer than this (0: no limit; "
                                            "default: the keras_equiv_timeout ini option)")
    group.addoption("--keras-equiv-plot", dest="keras_equiv_plot", default=None, metavar="DIR",
                    help="draw each diagnosed failing case's error by timestep as DIR/<case>.png "
                         "(needs keras-equiv[plot])")
    ALIASES[parser] = aliases
    parser.addini("keras_equiv_paths", type="args", default=list(DEFAULT_PATHS),
                  help="glob patterns, relative to the rootdir, of the files that may be keras-equiv "
                       "case files (they must also have a top-level 'cases:' key)")
    parser.addini("keras_equiv_timeout", default="",
                  help="seconds a keras-equiv case may run (0 or empty: no limit)")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args):
    """pytest_load_initial_conftests: lend the short aliases to the conftest.py files while they load."""
    aliases = ALIASES.get(parser)
    if aliases is not None:
        aliases.lend(parser)
    try:
        return (yield)
    finally:
        if aliases is not None:
            aliases.take_back(parser)


def pytest_configure(config: pytest.Config) -> None:
    """pytest_configure: option values, the Keras flavour and (in an xdist worker) the GPU, before any
    Keras import; the case-file patterns; the markers cases get; the end-of-run summary."""
    checked_choice(config, "keras_equiv_device", DEVICES)
    checked_choice(config, "keras_equiv_mode", (*MODES, ALL_MODES))
    # No --keras: the environment's flavour, else the installed default (none installed: nothing is
    # set; collection and the harness's own tests need no Keras).
    flavour = checked_choice(config, "keras_equiv_keras", flavours.FLAVOURS) or flavours.wanted()
    if flavour is not None:
        missing = flavours.missing_package(flavour)
        if missing:
            raise pytest.UsageError(missing)
        try:
            flavours.select(flavour)
        except HarnessError as exc:
            raise pytest.UsageError(str(exc)) from None
    config.stash[TIMEOUT] = timeout_of(config)
    if config.getoption("keras_equiv_plot"):
        try:
            plot.pyplot()  # matplotlib importable before any case runs
        except HarnessError as exc:
            raise pytest.UsageError(str(exc)) from None
    config.stash[PATTERNS] = [glob_regex(p) for p in config.getini("keras_equiv_paths")]
    # In an xdist worker: gwN -> CUDA_VISIBLE_DEVICES=N mod GPUs; nothing in the controller or without xdist.
    flavours.pin_worker_gpu(getattr(config, "workerinput", {}).get("workerid"))
    config.stash[IDS] = schema.IdRegistry()
    for name, meaning in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: keras-equiv: {meaning}")
    config.pluginmanager.register(RunSummary(), "keras-equiv-summary")


def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    """pytest_collect_file: keras-equiv case files only (see the module docstring); None for any other."""
    if is_case_file(file_path, parent.config, named=parent.session.isinitpath(file_path)):
        return CaseFile.from_parent(parent, path=file_path)
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    """pytest_runtest_makereport: the call report of a case carries its CaseResult (REPORT_ATTR)."""
    report = yield
    if call.when == "call" and isinstance(item, CaseItem) and RESULT in item.stash:
        setattr(report, REPORT_ATTR, encode_result(item.stash[RESULT]))
    return report
