"""Writing a report or golden file without losing one: the output path checked before any case
runs, and the file replaced atomically (a unique temporary name in the same folder, then a rename)."""
from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from .errors import UsageError


def _probe(folder: Path) -> None:
    """Create and remove a file in ``folder``: the only writability test root cannot fool."""
    with tempfile.TemporaryFile(dir=folder):
        pass


def check_output_path(flag: str, path: str, stdout_ok: bool = True,
                      probe: Callable[[Path], None] = _probe) -> None:
    """Raise UsageError naming ``path`` unless a file can be written there (``-``: stdout, where allowed)."""
    if path == "-" and stdout_ok:
        return
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"{flag} {path}: is a directory")
    if path.endswith(("/", os.sep)):
        raise UsageError(f"{flag} {path}: names a folder, not a file")
    folder = target.parent
    if not folder.exists():
        raise UsageError(f"{flag} {path}: folder {folder} does not exist")
    if not folder.is_dir():
        raise UsageError(f"{flag} {path}: {folder} is not a folder")
    try:
        probe(folder)
    except OSError as exc:
        raise UsageError(f"{flag} {path}: folder {folder} is not writable ({exc.strerror or exc})") from None


def write_atomic(path: str | Path, fill: Callable[[str], object]) -> None:
    """``fill(temp_path)`` writes the file under a unique temporary name in the same folder, which
    then replaces ``path`` in one step: a write that fails or is interrupted leaves the old file."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        # mkstemp's file is private (0600); a report gets the mode a plain open() would give it.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, target.stat().st_mode & 0o7777 if target.exists() else 0o666 & ~umask)
        fill(tmp)
        os.replace(tmp, target)
    except BaseException:
        for leftover in (tmp, tmp + ".tmp"):  # golden.record writes <name>.tmp first
            with contextlib.suppress(OSError):
                os.unlink(leftover)
        raise
