"""The independent NumPy reference (float64; never imports Keras).

- ``recurrent``: LSTM, GRU, SimpleRNN and Bidirectional, one set of cell equations (the module
  the runner takes as ``ref``; the sensitivity tests pass planted-bug copies of it);
- ``sequential``: the other layers of a ``model:`` case, and the chain;
- ``dropout``: training-mode dropout masks recovered through the recurrent cells.
"""
from __future__ import annotations

from .recurrent import ACTIVATIONS, CELLS, DropoutMasks, activation, forward, run, run_rnn

__all__ = ["ACTIVATIONS", "CELLS", "DropoutMasks", "activation", "forward", "run", "run_rnn"]
