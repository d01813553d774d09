"""The two doors into an int8 Graph.

- ``convert_graph(float_graph, calib)``: a float Graph from any importer (TFLite, ONNX, PyTorch) plus
  calibration inputs in the graph's NHWC layout. Needs nothing from ``tinyopt.compress``.
- ``convert_torch(model, calib, input_shape)``: a PyTorch module, plain or prepared by
  ``tinyopt.compress.ptq`` / ``qat`` (then the observers' scales and zero points are used as they are, so
  the int8 graph computes what the fake-quantized model simulated). Calibration inputs are in PyTorch
  layout ``(N, *input_shape)``.

Both fold BatchNorm, fuse RELU/RELU6 into the producing layer and drop identities before quantizing.
"""

from __future__ import annotations

import numpy as np

from tinyopt import ops
from tinyopt.convert.calibrate import calibrate
from tinyopt.convert.quantize import quantize_graph
from tinyopt.errors import DataError
from tinyopt.graph.ir import Graph


def dequantize_weights(graph: Graph) -> Graph:
    """Hybrid models (float activations, int8 weights from dynamic-range quantization) → all float:
    every int8/int32 constant feeding a float layer becomes ``scale * (q - zero_point)``."""
    g = graph.copy()
    for n in g.nodes:
        x = g.tensors[n.inputs[0]] if n.inputs and n.inputs[0] else None
        if x is None or x.dtype != "float32":
            continue
        rec = ops.get(n.op)
        for name in n.inputs[1:3] if rec.weight_axis is not None else ():
            t = g.tensors[name] if name else None
            if t is None or t.data is None or t.dtype not in ("int8", "int32") or t.quant is None:
                continue
            shape = [1] * t.data.ndim
            if t.quant.per_channel:
                shape[t.quant.axis if t.quant.axis is not None else 0] = -1
            scale = t.quant.scale.astype(np.float32).reshape(shape)
            t.data = ((t.data.astype(np.int64) - t.quant.zero_point.reshape(shape))
                      * scale).astype(np.float32)
            t.dtype, t.quant = "float32", None
    return g


def prepare_float_graph(graph: Graph) -> Graph:
    """BN folded into convs, activations fused, identities removed, hybrid weights dequantized: the float
    graph TFLite's converter would quantize."""
    from tinyopt.graph.passes import fold_batchnorm, fuse_activations, lower_unsupported, remove_identities

    return remove_identities(fuse_activations(lower_unsupported(fold_batchnorm(dequantize_weights(graph)))))


def convert_graph(graph: Graph, calib, *, io: str = "int8", observer: str | None = None,
                  fixed: dict[str, tuple[float, int]] | None = None, activations: str = "int8",
                  encode: bool = False) -> Graph:
    """Float Graph + calibration inputs (N, *input_shape[1:]) in the graph's layout (a list of arrays, one
    per input, for a model with several) → integer Graph (``activations="int16"``: 16x8, every activation
    calibrated: ``fixed`` int8 ranges do not carry over to int16's symmetric grid, and weights stay plain
    int8, as TFLM's 16x8 kernels read no int4 or table-coded weights). ``encode``: keep a compressed
    model's weight encodings (``quantize_graph``)."""
    if activations == "int16":
        fixed, encode = None, False
    g = prepare_float_graph(graph)
    arrays = list(calib) if isinstance(calib, (list, tuple)) else [calib]
    if len(arrays) != len(g.inputs):
        raise DataError(f"calibration data for {len(arrays)} input(s), the model has {len(g.inputs)}",
                        path=graph.source, fix="give one array of samples per model input")
    arrays = [np.asarray(a, dtype=np.float32) for a in arrays]
    for a, name in zip(arrays, g.inputs):
        want = g.tensors[name].shape[1:]
        if a.ndim != len(want) + 1 or tuple(a.shape[1:]) != tuple(want):
            raise DataError(f"calibration data has shape {list(a.shape)}, the model input '{name}' is (N, "
                            f"{', '.join(map(str, want))})", path=graph.source,
                            fix="give calibration samples shaped like the model input, batch first")
    ranges = calibrate(g, arrays if len(arrays) > 1 else arrays[0], observer=observer)
    return quantize_graph(g, ranges, io=io, fixed=fixed, activations=activations, encode=encode)


def torch_to_graph_layout(x: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
    """(N, C, H, W) → (N, H, W, C); (N, C, L) → (N, 1, L, C); flat inputs unchanged (from_torch's rule)."""
    x = np.asarray(x, dtype=np.float32)
    if tuple(x.shape[1:]) != tuple(input_shape):
        raise DataError(f"calibration data has shape {list(x.shape)}, expected (N, "
                        f"{', '.join(map(str, input_shape))})",
                        fix="give samples in PyTorch layout, batch first")
    if len(input_shape) == 3:
        return np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    if len(input_shape) == 2:
        return np.ascontiguousarray(x.transpose(0, 2, 1)[:, None])
    return x


def fixed_ranges(activations: dict) -> dict[str, tuple[float, int]]:
    """Tensor name -> (scale, zero point) for the int8 activation ranges a quantized PyTorch model learnt
    (``tinyopt.compress.ptq.quant_params(model)["activations"]``); other widths are left to calibration."""
    return {name: (float(np.asarray(a["scale"]).ravel()[0]), int(np.asarray(a["zero_point"]).ravel()[0]))
            for name, a in activations.items() if a.get("bits", 8) == 8 and a.get("quant_min", -128) == -128}


def convert_torch(model, calib_data, input_shape: tuple[int, ...], *, io: str = "int8",
                  observer: str | None = None, fixed: dict[str, tuple[float, int]] | None = None,
                  encode: bool = False, activations: str = "int8") -> Graph:
    """PyTorch module (optionally PTQ/QAT-prepared) + calibration data → int8 Graph (``activations="int16"``:
    16x8). ``fixed`` gives activation ranges learnt earlier (a compressed model's record: ``fixed_ranges``),
    kept as they are; ``encode``: keep its weight encodings (``quantize_graph``)."""
    import torch

    from tinyopt.compress import ptq
    from tinyopt.graph.torch_import import from_torch

    if isinstance(calib_data, torch.Tensor):
        calib_data = calib_data.detach().cpu().numpy()
    fixed = dict(fixed or {}) or None
    module = model
    if ptq.is_prepared(model):  # prepared by tinyopt.compress.ptq / qat: its fake-quantizers say so
        fixed = {**(fixed or {}), **fixed_ranges(ptq.quant_params(model)["activations"])}
        module = ptq.strip(model)  # float, on-grid weights; QAT's frozen BatchNorms made plain
    was_training = module.training
    module.eval()
    try:
        graph = from_torch(module, tuple(input_shape))
    finally:
        module.train(was_training)
    return convert_graph(graph, torch_to_graph_layout(calib_data, tuple(input_shape)), io=io,
                         observer=observer, fixed=fixed, encode=encode, activations=activations)
