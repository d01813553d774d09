"""MUL: element-wise product; integer path as TFLM's ``MulElementwise`` (one requantization of the product
of the offset operands by s1 * s2 / s_out)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyopt.ops import _common as c
from tinyopt.ops import _int16, _int16_c
from tinyopt.ops._binary import Binary, options
from tinyopt.ops._record import CKernel, OpData, register
from tinyopt.runtime.fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier


@dataclass(kw_only=True)
class MulData(c.ActivationRange, OpData):
    input1_offset: int | None = None
    input2_offset: int | None = None
    output_offset: int | None = None
    output_multiplier: int | None = None
    output_shift: int | None = None


@register
class Mul(Binary):
    name = "MUL"
    builtin = 18
    options = options(21)
    arith_code = 2
    c = CKernel("arithmetic", "arithmetic_params")
    onnx = ("Mul",)
    torch_functions = ("mul", "imul")

    def prepare(self, graph, node, is_int):
        p = c.output_range(graph, node, is_int)
        if not is_int:
            return MulData(dtype="float32", **p)
        (s1, z1), (s2, z2), (so, zo) = self.operand_qparams(graph, node)
        m, s = quantize_multiplier(float(s1) * float(s2) / float(so))
        wide = graph.tensors[node.outputs[0]].dtype == "int16"
        if wide:  # TFLM's Prepare and Eval both require it; the product then fits int32 (2^30 at most)
            _int16.zero_points_zero(graph, node, [*node.inputs[:2], node.outputs[0]],
                                    "TFLM's int16 MUL requires symmetric operands")
        return MulData(dtype="int16" if wide else "int8", **p, input1_offset=-z1, input2_offset=-z2,
                       output_offset=zo, output_multiplier=m, output_shift=s)

    def pack_c(self, graph, index, node):
        if _int16_c.is_int16(graph, node):  # the 16x8 kernel (kernels/elementwise_int16.c)
            return _int16_c.pack_arithmetic(graph, index, node, self.prepare(graph, node, True),
                                            self.arith_code)
        return self.pack_arithmetic(graph, index, node)

    def eval(self, p: MulData, inputs):
        a, b = inputs[0], inputs[1]
        if p.dtype == "float32":
            return c.clamp_float(a.astype(np.float32) * b.astype(np.float32), p)
        prod = (a.astype(np.int64) + p.input1_offset) * (b.astype(np.int64) + p.input2_offset)
        out = multiply_by_quantized_multiplier(prod, p.output_multiplier, p.output_shift) + p.output_offset
        return np.clip(out, p.output_activation_min, p.output_activation_max).astype(p.dtype)
