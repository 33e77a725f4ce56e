"""A hand-written NumPy port of a Keras LSTM, as someone porting a trained layer to C writes it
first, with a deliberate mistake: it reads the gate blocks in the order i, f, o, c (Keras stores
i, f, c, o).  README.md ("Diagnosing your own port") runs it against a golden file and lets
`keras-equiv diagnose` find the mistake; set GATE_ORDER = "ifco" and the port agrees.

    python docs/examples/lstm_port.py GOLDEN.h5 CASE_ID OUT.npz

It reads only what a port reads: the recorded input and the layer's weights (plain h5py), and
writes every output under the names the golden file uses (`output`, `h`, `c`).
"""
from __future__ import annotations

import sys

import h5py
import numpy as np

GATE_ORDER = "ifoc"  # the mistake: Keras's kernel columns are [i | f | c | o]


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def lstm(x, kernel, recurrent_kernel, bias):
    """return_sequences=True, return_state=True; zero initial state; float32 like the layer."""
    units = recurrent_kernel.shape[0]
    block = {gate: slice(k * units, (k + 1) * units) for k, gate in enumerate(GATE_ORDER)}
    h = np.zeros((x.shape[0], units), dtype=np.float32)
    c = np.zeros_like(h)
    outputs = []
    for t in range(x.shape[1]):
        z = x[:, t] @ kernel + h @ recurrent_kernel + bias
        i, f, o = (sigmoid(z[:, block[g]]) for g in "ifo")
        c = f * c + i * np.tanh(z[:, block["c"]])
        h = o * np.tanh(c)
        outputs.append(h)
    return np.stack(outputs, axis=1), h, c


def main(golden: str, case_id: str, out: str) -> None:
    with h5py.File(golden, "r") as f:
        group = f["cases"][case_id]
        x = group["inputs/call1"][()].astype(np.float32)
        w = {name: group["weights"][name][()] for name in ("kernel", "recurrent_kernel", "bias")}
    output, h, c = lstm(x, **w)
    np.savez(out, output=output, h=h, c=c)


if __name__ == "__main__":
    main(*sys.argv[1:])
