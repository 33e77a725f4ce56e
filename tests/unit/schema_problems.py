"""The one helper the schema tests share: a case file's problems, as the lines a user reads."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness import schema
from harness.errors import CaseSchemaError


def problems(tmp_path: Path, text: str, name: str = "c.yaml") -> list[str]:
    """Write ``text`` as ``name`` and load it; it must fail, and its message lines come back."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CaseSchemaError) as info:
        schema.load_file(path, display=name)
    return str(info.value).splitlines()
