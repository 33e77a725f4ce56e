"""keras-equiv: prove that Keras recurrent layers compute what a NumPy reference says they should."""
from __future__ import annotations

from .case import Case
from .errors import CaseSchemaError, HarnessError, Unsupported
from .schema import load_file, load_files

__all__ = ["Case", "CaseSchemaError", "HarnessError", "Unsupported", "load_file", "load_files"]
__version__ = "0.1.0"
