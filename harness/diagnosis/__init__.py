"""Why numbers disagree: timestep errors, first divergence, layout hypotheses.  When a port of a Keras
recurrent layer (to C, an FPGA, ONNX, PyTorch) or Keras itself gives numbers that differ from the NumPy
reference, the modules here say where (per-timestep errors, the first step that diverges) and why
(which weight-layout or semantics mistake reproduces the numbers).
"""
