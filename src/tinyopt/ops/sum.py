"""SUM: the sum over ``axes`` (any axes, ``keep_dims``; see ``_reduce.py``).

Integer path as TFLM's ``QuantizedMeanOrSum`` with ``compute_sum``: the int32 sum minus the input zero
point times the count, requantized by input scale / output scale. Float: a float32 running sum.
"""

from __future__ import annotations

import numpy as np

from tinyopt.ops import _common as c
from tinyopt.ops._record import register
from tinyopt.ops._reduce import ReduceData, Reducer
from tinyopt.runtime.fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier


@register
class Sum(Reducer):
    name = "SUM"
    builtin = 74
    onnx = ("ReduceSum",)
    torch_functions = ("sum",)

    def prepare(self, graph, node, is_int):
        p = self.prepare_reduce(graph, node, is_int)
        if not is_int:
            return ReduceData(**p)
        si, zi = c.scalar_qparams(graph, node, node.inputs[0])
        so, zo = c.scalar_qparams(graph, node, node.outputs[0])
        m, s = quantize_multiplier(float(si) / float(so))
        return ReduceData(**p, input_zero_point=zi, output_zero_point=zo, multiplier=m, shift=s)

    def eval(self, p: ReduceData, inputs):
        x = inputs[0]
        axes, keep = self.batch_axes(p), p.keep_dims
        if p.dtype != "int8":
            return np.sum(x.astype(np.float32), axis=axes, keepdims=keep, dtype=np.float32).astype(np.float32)
        total = np.sum(x.astype(np.int64), axis=axes, keepdims=keep)
        shifted = total - p.input_zero_point * p.num_elements_in_axis
        out = multiply_by_quantized_multiplier(shifted, p.multiplier, p.shift) + p.output_zero_point
        return np.clip(out, -128, 127).astype(np.int8)

    def from_onnx(self, cv, node, name, a, ins):
        return self.onnx_reduce(cv, node, name, a, ins, axes_input_from=13)

    def from_torch_function(self, cv, n, key, name, out_shape):
        return self.torch_reduce(cv, n, name)
