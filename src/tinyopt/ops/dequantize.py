"""DEQUANTIZE: int8/int16 (or float16) → float32, ``scale * (q - zero_point)`` (TFLM's ``Dequantize``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyopt.ops import _common as c
from tinyopt.ops._record import Op, OpData, Options, register


@dataclass(kw_only=True)
class DequantizeData(OpData):
    scale: float | np.float32
    zero_point: int
    input_zero_point: int


@register
class Dequantize(Op):
    name = "DEQUANTIZE"
    builtin = 6
    options = Options(38)
    ops_per_element = 1
    int8_version = 2
    quant = None  # convert inserts it at float outputs

    def check_dtypes(self, ins, out):
        x = ins[0]
        if x.dtype not in ("int8", "uint8", "int16", "float16") or out.dtype != "float32":
            return f"dequantizes {x.dtype} to {out.dtype}"
        return None

    def fold_constant(self, graph, node):
        """A constant input (float16 weights, or int8 weights of a dynamic-range model) dequantized once."""
        t = graph.tensors[node.inputs[0]]
        if t.dtype == "float16":
            return [t.data.astype(np.float32)]
        q = t.quant
        if q is None:
            return None
        shape = [1] * t.data.ndim
        if q.per_channel:
            shape[q.axis or 0] = -1
        scale = q.scale.astype(np.float32).reshape(shape if q.per_channel else [1] * t.data.ndim)
        zp = q.zero_point.reshape(scale.shape)
        return [((t.data.astype(np.int64) - zp) * scale).astype(np.float32)]

    def prepare(self, graph, node, is_int):
        si, zi = c.scalar_qparams(graph, node, node.inputs[0])
        x = graph.tensors[node.inputs[0]]
        dtype = (x.dtype if x.dtype == "int16" else "int8") if is_int else "float32"
        return DequantizeData(dtype=dtype, scale=si, zero_point=zi, input_zero_point=zi)

    def eval(self, p: DequantizeData, inputs):
        q = inputs[0].astype(np.int64) - p.zero_point
        return (np.float64(p.scale) * q).astype(np.float32)
