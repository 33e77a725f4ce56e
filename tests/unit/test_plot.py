"""--plot (harness/plot.py): one PNG per failing case; skipped where matplotlib is not installed."""
from __future__ import annotations

import pytest

from harness import plot
from harness.case import OutputKey
from harness.diagnosis.timesteps import TimestepErrors


def test_file_names_keep_only_safe_characters():
    name = plot.file_name("lstm-return-flags[return_sequences:true+cpu]")
    assert name == "lstm-return-flags_return_sequences_true_cpu_.png"


def test_a_plot_is_a_png_file(tmp_path):
    pytest.importorskip("matplotlib", reason="keras-equiv[plot] is not installed")
    rows = (TimestepErrors(OutputKey("output"), (0.0, 0.5, 3.0, 40.0), True, 2, 1),
            TimestepErrors(OutputKey("h"), (40.0,), False, None, 1))
    path = plot.plot_case(tmp_path / "plots", "lstm-x[cpu]", rows, first_divergence=2)
    assert path == tmp_path / "plots" / "lstm-x_cpu_.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
