"""The markers of a case, from its traits: the one list ``pytest -m`` and ``keras-equiv run -m``
select with (the pytest plugin adds them to each item; ``pytest --markers`` lists them)."""
from __future__ import annotations

from .case import Case
from .layers import DTYPES
from .modes import ABOUT as MODE_ABOUT

LAYER_MARKERS = {"lstm": "LSTM", "gru": "GRU", "simplernn": "SimpleRNN", "bidirectional": "Bidirectional"}
BACKEND_MARKERS = {f"backend_{b}": b for b in ("tensorflow", "jax", "torch")}

# Every marker a case can carry, and what it means.
MARKERS: dict[str, str] = {
    **{name: f"the case runs a {cls} layer (a Bidirectional case also has its inner class)"
       for name, cls in LAYER_MARKERS.items()},
    "model": "a model: case (layers applied like keras.Sequential)",
    **{dtype: f"the case runs in dtype {dtype}" for dtype in DTYPES},
    "cpu": "the case runs on the CPU",
    "gpu": "the case runs on a GPU",
    **{mode.value: about for mode, about in MODE_ABOUT.items()},
    "keras2": "the case needs legacy Keras 2 (tf_keras): requires.keras 2",
    "keras3": "the case needs Keras 3: requires.keras 3",
    **{name: f"the case needs the {b} backend: requires.backend" for name, b in BACKEND_MARKERS.items()},
    "error": "expect.error: Keras must raise",
    "mismatch": "expect.mismatch: a documented Keras behaviour that differs from the reference",
    "golden": "expect.golden: the case runs on recorded arrays",
    "values": "expect.values: outputs given by an outside source",
    "kernel": "expect.kernel: the case demands a kernel (cudnn, fused, generic)",
    "params": "expect.params or expect.layer_params: parameter counts given",
    "stateful": "a stateful layer, called more than once (calls:)",
    "masked": "the input is masked (mask:)",
    "training": "training-mode call (dropout checked structurally)",
    "gradients": "expect.gradients: Keras's gradients checked against the NumPy backward pass",
}


def markers(case: Case) -> tuple[str, ...]:
    """The markers of ``case``, in MARKERS order."""
    classes = set()
    for layer in ([*case.model] if case.model is not None else [case.layer]):
        classes.add(layer.get("class"))
        for key in ("layer", "backward_layer"):  # a Bidirectional's directions
            if isinstance(layer.get(key), dict):
                classes.add(layer[key].get("class"))
    expect = case.expect
    have = {name for name, cls in LAYER_MARKERS.items() if cls in classes}
    have |= {case.dtype, case.device, case.mode}
    if case.model is not None:
        have.add("model")
    if case.requires.get("keras") in (2, 3):
        have.add(f"keras{case.requires['keras']}")
    have |= {name for name, b in BACKEND_MARKERS.items() if b in case.requires.get("backend", ())}
    for name, present in (("error", expect.error), ("mismatch", expect.mismatch), ("golden", expect.golden),
                          ("values", expect.values), ("kernel", expect.kernel),
                          ("params", expect.params is not None or expect.layer_params is not None),
                          ("stateful", case.calls), ("masked", case.mask), ("training", case.training),
                          ("gradients", expect.gradients)):
        if present:
            have.add(name)
    return tuple(name for name in MARKERS if name in have)
