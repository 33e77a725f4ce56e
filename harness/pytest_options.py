"""The pytest plugin's options: namespaced long names, short aliases lent to conftest.py files,
the checked values, and the stash keys the plugin's modules share (pytest_plugin.py has the hooks).

The valued options take no ``choices=`` and an optional value: pytest parses the command line
once before it loads the conftest.py files, with the aliases in place, so a conftest's own
``--device`` or ``--keras`` may be a flag or take values of its own; they are checked in
``pytest_configure``, after the last parse.
"""
from __future__ import annotations

import math
import weakref

import pytest

from . import schema
from .result import CaseResult

IDS = pytest.StashKey[schema.IdRegistry]()
PATTERNS = pytest.StashKey[list]()
TIMEOUT = pytest.StashKey[float]()
RESULT = pytest.StashKey[CaseResult]()

DEFAULT_PATHS = ["cases/**/*.yaml", "cases/**/*.yml"]
DEVICES = ("cpu", "gpu", "all")
# The attribute of a TestReport that carries the case's CaseResult (pickled, base64: a string that
# xdist, and any plugin writing reports as JSON, can carry as it is).
REPORT_ATTR = "keras_equiv_result"

_FLAG = {"action": "store_true", "default": False}
# pytest parses the command line once before it loads the conftest.py files, with the aliases in
# place: a conftest's own --device or --keras may then be a flag, or take values of its own.  So
# the valued options take no ``choices=`` and an optional value (``const=""``: missing), both
# checked in pytest_configure, after the last parse.
_VALUED = {"default": None, "nargs": "?", "const": ""}
# (long name, short alias, dest, argparse keywords)
OPTIONS = (
    ("--keras-equiv-device", "--device", "keras_equiv_device",
     {**_VALUED, "metavar": "{cpu,gpu,all}", "help": "run every case on this device instead of the devices it lists"}),
    ("--keras-equiv-mode", "--mode", "keras_equiv_mode",
     {**_VALUED, "metavar": "{eager,function,xla,predict,symbolic,all}",
      "help": "run every layer case in this mode instead of the modes it lists (all: every mode)"}),
    ("--keras-equiv-keras", "--keras", "keras_equiv_keras",
     {**_VALUED, "metavar": "FLAVOUR",
      "help": "which Keras runs the cases: tensorflow (default), jax, torch or tf_keras"}),
    ("--keras-equiv-require-gpu", "--require-gpu", "keras_equiv_require_gpu",
     {**_FLAG, "help": "fail gpu cases when no GPU is visible instead of skipping them"}),
    ("--keras-equiv-tf32", "--tf32", "keras_equiv_tf32",
     {**_FLAG, "help": "allow TF32 matmuls on the GPU (float32 gpu cases use the float32+tf32 tolerance row)"}),
)


class Aliases:
    """The short option names of one parser: taken only where free, lent to conftest.py files while
    they load (so one that defines ``--device`` itself gets it), taken back where still free."""

    def __init__(self):
        self.held: list[tuple[object, str]] = []  # (pytest's Argument, alias)
        self.lent: list[tuple[object, str]] = []

    @staticmethod
    def taken(parser: pytest.Parser) -> set[str]:
        return {name for group in parser._groups for option in group.options for name in option.names()}

    def addoption(self, parser: pytest.Parser, group, name: str, alias: str, **attrs) -> None:
        names = (name,) if alias in self.taken(parser) else (name, alias)
        group.addoption(*names, **attrs)
        if len(names) == 2:
            self.held.append((group.options[-1], alias))

    def lend(self, parser: pytest.Parser) -> None:
        """Withdraw every alias held (pytest >= 9 keeps options in argparse as they are added)."""
        optparser = getattr(parser, "optparser", None)
        for argument, alias in self.held:
            action = getattr(argument, "_action", None)
            if optparser is None or action is None or alias not in action.option_strings:
                continue  # an older pytest: the alias stays (a conftest defining it then clashes)
            action.option_strings.remove(alias)
            optparser._option_string_actions.pop(alias, None)
            parser._opt2dest.pop(alias, None)
            self.lent.append((argument, alias))
        self.held = [held for held in self.held if held not in self.lent]

    def take_back(self, parser: pytest.Parser) -> None:
        """Take back each alias lent that nobody defined meanwhile."""
        taken = self.taken(parser)
        for argument, alias in self.lent:
            if alias in taken:
                continue
            action = argument._action
            action.option_strings.append(alias)
            parser.optparser._option_string_actions[alias] = action
            parser._opt2dest[alias] = action.dest
            self.held.append((argument, alias))
        self.lent = []


# parser -> its aliases, for the conftest-loading hook (weak: an entry goes with its parser).
ALIASES: weakref.WeakKeyDictionary[pytest.Parser, Aliases] = weakref.WeakKeyDictionary()


def option_names(config: pytest.Config, dest: str) -> str:
    """The option strings that set ``dest`` now, as argparse names them: ``--keras-equiv-device/--device``."""
    for group in config._parser._groups:
        for option in group.options:
            if option.dest == dest:
                return "/".join(option.names())
    return dest


def checked_choice(config: pytest.Config, dest: str, choices) -> str | None:
    """The value of a valued option, checked as argparse would (its words too)."""
    value = config.getoption(dest)
    if value == "":
        raise pytest.UsageError(f"argument {option_names(config, dest)}: expected one argument")
    if value is not None and value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise pytest.UsageError(f"argument {option_names(config, dest)}: invalid choice: {value!r} "
                                f"(choose from {listed})")
    return value


def timeout_of(config: pytest.Config) -> float:
    """The per-case limit in seconds (0: none): --keras-equiv-timeout, else the keras_equiv_timeout ini option."""
    given = config.getoption("keras_equiv_timeout")
    where = option_names(config, "keras_equiv_timeout")
    if given is None:
        given, where = str(config.getini("keras_equiv_timeout")).strip() or "0", "ini option keras_equiv_timeout"
    try:
        seconds = float(given)
    except ValueError:
        seconds = math.nan
    if not seconds >= 0 or math.isinf(seconds):
        raise pytest.UsageError(f"{where}: expected a number of seconds >= 0 (0: no limit), got {given!r}")
    return seconds
