"""``--plot DIR``: one PNG per failing case, its error by timestep per output.

Each line is one output's worst err/tol at each timestep (harness/diagnosis/timesteps.py: the
rule compare.py judges with, so 1 is exactly the tolerance), on a log scale, with the tolerance
line and the first divergence marked.  Outputs without a time axis (a last output, a state) are
points at the right edge.  matplotlib is an optional extra (``pip install 'keras-equiv[plot]'``),
imported only when a plot is drawn.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from .diagnosis.timesteps import TimestepErrors
from .errors import UsageError

FLOOR = 1e-6  # err/tol drawn no lower than this (a log scale has no 0)
INSTALL = "--plot needs matplotlib: pip install 'keras-equiv[plot]'"


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend; UsageError (exit 2) when it is not installed."""
    try:
        import matplotlib  # noqa: PLC0415 - an optional extra, needed only to draw

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415 - after choosing the backend
    except ImportError:
        raise UsageError(INSTALL) from None
    return plt


def file_name(case_id: str) -> str:
    """A file name for a case id (its brackets and separators become ``_``): ``lstm-basic_cpu_.png``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", case_id) + ".png"


def plot_case(folder: str | Path, case_id: str, rows: Sequence[TimestepErrors],
              first_divergence: int | None = None, title: str = "") -> Path:
    """Draw one case's rows into ``folder`` (created); returns the PNG's path."""
    plt = pyplot()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    steps = max((len(r.ratios) for r in rows if r.by_timestep), default=1)
    for r in rows:
        values = [max(v, FLOOR) for v in r.ratios]
        if r.by_timestep:
            ax.plot(range(len(values)), values, marker="o", markersize=3, label=str(r.key))
        else:
            ax.plot([steps - 1], values, marker="s", linestyle="none", label=f"{r.key} (no time axis)")
    ax.axhline(1.0, color="red", linestyle="--", linewidth=1, label="tolerance (err/tol = 1)")
    if first_divergence is not None:
        ax.axvline(first_divergence, color="grey", linestyle=":", linewidth=1.5,
                   label=f"first divergence (index {first_divergence})")
    ax.set_yscale("log")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("timestep (along the outputs' time axis)")
    ax.set_ylabel("worst |err| / allowed")
    ax.set_title(title or case_id, fontsize=9)
    ax.legend(fontsize=8, loc="best")
    ax.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    path = folder / file_name(case_id)
    fig.savefig(path)
    plt.close(fig)
    return path
