"""keras-equiv: prove that Keras recurrent layers compute what a NumPy reference says they should."""
from __future__ import annotations

from importlib import metadata

try:
    __version__ = metadata.version("keras-equiv")  # one owner: pyproject.toml
except metadata.PackageNotFoundError:  # a checkout that was never installed
    __version__ = "0+unknown"

# After __version__: golden.py reads it while these imports run.
from .case import Case
from .errors import CaseSchemaError, HarnessError, Unsupported
from .schema import load_file, load_files

__all__ = ["Case", "CaseSchemaError", "HarnessError", "Unsupported", "load_file", "load_files", "__version__"]
