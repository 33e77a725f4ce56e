"""``keras-equiv diagnose GOLDEN PORT``: does a user's own port of a layer agree, and if not, why.

The golden file (``keras-equiv record``) holds a case's inputs, weights and Keras's outputs; PORT
holds what the user's implementation (C, an FPGA flow, ONNX, PyTorch, NumPy) computed from those
inputs and weights, by output name as the golden file names them (``output``, ``h``, ``c``,
``h_fw``, ``call2.output``): a ``.npz``, a ``.npy`` (the case's first output), or an ``.h5`` with one
dataset per name at its root.  The port is compared with Keras's recorded outputs under the case's
tolerance; where it disagrees, diagnosis/findings.py says where (error by timestep, first
divergence) and which layout mistake reproduces it.  Never imports Keras: a port is judged against
the golden file and the reference.
"""
from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

import numpy as np

from . import data, flavours, golden, layers, runner
from . import keras_api as api
from .case import Case
from .compare import Comparison, compare
from .diagnosis import findings as diagnosis
from .errors import UsageError
from .golden_format import h5py_module
from .reference import recurrent
from .report import error_text, problem, strict
from .tolerances import resolve

FORMAT = "keras-equiv-diagnosis"
FORMAT_VERSION = 1


def add_arguments(p) -> None:
    p.add_argument("golden", metavar="GOLDEN.h5|ID", help="a golden file (keras-equiv record ID --out GOLDEN.h5), or a "
                                                      "case id: the case is run here and recorded first")
    p.add_argument("port", metavar="PORT", help="your implementation's outputs: .npz / .h5 by output name, "
                                                "or .npy (the first output)")
    p.add_argument("--case", metavar="ID", help="the recorded case the port ran (needed when the file holds several)")
    p.add_argument("--json", metavar="FILE", help="also write the verdict and the diagnosis as JSON ('-': stdout)")
    p.add_argument("--plot", metavar="DIR", help="also draw the error by timestep as DIR/<case>.png (needs "
                                                 "keras-equiv[plot])")


class PortResult(NamedTuple):
    """One port judged against one recorded case."""

    case: Case
    comparisons: tuple[Comparison, ...]  # the port against Keras's recorded outputs, by output
    reference: tuple[Comparison, ...]  # the reference against Keras's recorded outputs (the diagnosis's footing)
    findings: diagnosis.Findings | None  # None: the port agrees

    @property
    def agrees(self) -> bool:
        return all(c.passed for c in self.comparisons)


def read_port(path: str | Path, names: list[str]) -> dict[str, np.ndarray]:
    """The port's arrays by output name (UsageError: unreadable, or a name the case does not return)."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            arrays = {names[0]: np.load(path, allow_pickle=False)}
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as f:
                arrays = {k: f[k] for k in f.files}
        elif suffix in (".h5", ".hdf5"):
            with h5py_module().File(path, "r") as f:
                arrays = {k: np.asarray(v[()]) for k, v in f.items() if isinstance(v, h5py_module().Dataset)}
        else:
            raise UsageError(f"{path}: a port's outputs are .npz, .npy or .h5 (got {suffix or 'no suffix'})")
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: cannot be read ({type(exc).__name__}: {exc})") from None
    unknown = sorted(set(arrays) - set(names))
    if unknown:
        raise UsageError(f"{path}: {', '.join(unknown)}: not outputs of this case (it returns {', '.join(names)})")
    if not arrays:
        raise UsageError(f"{path}: holds no array (expected some of {', '.join(names)})")
    for name, value in arrays.items():
        if value.dtype.kind not in "fiu":
            raise UsageError(f"{path}: {name}: holds {value.dtype} values, expected real numbers")
    return arrays


def _flavour(provenance: Mapping) -> str:
    """The flavour the file was recorded under, as the reference reads activations (Keras 2: tf_keras)."""
    return "tf_keras" if str(provenance.get("keras", "")).startswith("2.") else str(provenance.get("backend", ""))


def judge(case: Case, arrays: data.Arrays, provenance: Mapping, port: Mapping[str, np.ndarray]) -> PortResult:
    """The port's outputs against the recorded case: compared with Keras's, and diagnosed if they differ."""
    cfg = flavours.reference_cfg(api.with_defaults(dict(case.layer)), _flavour(provenance))
    compute = layers.DTYPES[case.dtype].compute
    keys = {str(k): k for k in arrays.golden_outputs}
    actual = {keys[name]: np.asarray(value) for name, value in port.items()}
    fed = [data.round_to(x, compute) for x in arrays.inputs]
    init = [data.round_to(s, compute) for s in arrays.initial_state] if arrays.initial_state is not None else None
    expected = runner.reference_outputs(case, recurrent, cfg, fed, arrays.mask, init, arrays.weights)
    comparisons = tuple(compare(str(k), v, arrays.golden_outputs[k], resolve(case, k), against="Keras (recorded)")
                        for k, v in actual.items())
    reference = tuple(compare(str(k), expected[k], v, resolve(case, k), against="Keras (recorded)")
                      for k, v in arrays.golden_outputs.items())
    found = None
    if not all(c.passed for c in comparisons):
        found = diagnosis.diagnose(cfg, fed, arrays.weights, actual, expected, lambda key: resolve(case, key),
                                   mask=arrays.mask, initial_state=init,
                                   reset_before=case.calls.reset_before if case.calls else ())
    return PortResult(case, comparisons, reference, found)


def text(result: PortResult) -> list[str]:
    """The human report: one row per output, then the diagnosis."""
    verdict = "AGREES" if result.agrees else "DIFFERS"
    out = [f"{verdict}  {result.case.id}: the port against Keras's recorded outputs"]
    for c in result.comparisons:
        mark = "ok  " if c.passed else "FAIL"
        out.append(f"  {mark} {c.name}: {error_text(c) if c.worst else problem(c)}")
    off = [c for c in result.reference if not c.passed]
    if off:
        out.append("  note: the reference itself differs from the recorded Keras outputs here ("
                   + ", ".join(c.name for c in off) + "): the diagnosis below is against the reference")
    if result.findings is not None:
        out += ["  " + line for line in diagnosis.lines(result.findings)]
    return out


def to_json(result: PortResult) -> str:
    def comp(c: Comparison) -> dict:
        return {"output": c.name, "passed": c.passed, "issue": c.issue.value, "max_abs": c.max_abs,
                "max_rel": c.max_rel, "allowance_used": c.ratio, "atol": c.tolerance.atol, "rtol": c.tolerance.rtol}

    doc = {"format": FORMAT, "format_version": FORMAT_VERSION, "case": result.case.id, "agrees": result.agrees,
           "outputs": [comp(c) for c in result.comparisons], "reference": [comp(c) for c in result.reference],
           "diagnosis": diagnosis.to_json(result.findings) if result.findings is not None else None}
    return json.dumps(strict(doc), indent=2, allow_nan=False)


def main(args, write_json, draw) -> int:
    """The ``diagnose`` command: 0 the port agrees, 1 it differs, 2 bad input (UsageError/GoldenError)."""
    case, arrays, provenance = golden.one_case(args.golden, args.case, "the port ran")
    port = read_port(args.port, [str(k) for k in arrays.golden_outputs])
    result = judge(case, arrays, provenance, port)
    out = text(result)
    if args.plot and result.findings is not None:
        path = draw(args.plot, case.id, result.findings.timesteps, result.findings.first_on_axis,
                    f"{case.id}: port vs reference")
        out.append(f"  plot:       {path}")
    if args.json:
        write_json(args.json, to_json(result))
    print("\n".join(out), file=sys.stderr if args.json == "-" else sys.stdout)
    return 0 if result.agrees else 1
