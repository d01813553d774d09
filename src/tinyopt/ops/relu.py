"""RELU. Integer path as TFLM's ``ReluQuantized``: requantize to the output scale, clamp at the quantized 0
(TFLM's ``ReluOpData`` keeps ``input_offset`` = +input zero point, subtracted). The multiplier is the double
ratio of the scales, as the installed TFLM computes it (a float32 ratio flips a rounding tie now and then)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyopt.graph.ir import Node
from tinyopt.ops import _common as c
from tinyopt.ops import _int16, _int16_c
from tinyopt.ops._record import CKernel, Op, OpData, QuantRule, register
from tinyopt.ops._sigmoid_like import unary
from tinyopt.runtime.fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier, round_half_away


@dataclass(kw_only=True)
class ReluData(OpData):
    input_offset: int | None = None
    output_offset: int | None = None
    output_multiplier: int | None = None
    output_shift: int | None = None
    output_activation_min: int | None = None
    output_activation_max: int | None = None


@register
class Relu(Op):
    name = "RELU"
    builtin = 19
    fusable_as = "RELU"
    ops_per_element = 1
    int8_version = 2
    c = CKernel("lut", "lut_params")
    quant = QuantRule(int16=True)  # TFLM's RELU has an int16 kernel
    onnx = ("Relu",)
    torch_modules = ("ReLU",)
    torch_functions = ("relu",)
    spec_layers = {"relu": frozenset()}

    def prepare(self, graph, node, is_int):
        if not is_int:
            return ReluData(dtype="float32")
        si, zi = c.scalar_qparams(graph, node, node.inputs[0])
        so, zo = c.scalar_qparams(graph, node, node.outputs[0])
        m, s = quantize_multiplier(float(si) / float(so))
        wide = graph.tensors[node.inputs[0]].dtype == "int16"  # TFLM's int16 RELU: symmetric tensors
        if wide:
            _int16.zero_points_zero(graph, node, [node.inputs[0], node.outputs[0]],
                                    "TFLM's int16 RELU requires symmetric tensors")
        qmin, qmax = (c.INT16_MIN, c.INT16_MAX) if wide else (c.INT8_MIN, c.INT8_MAX)
        lo = max(qmin, zo + int(round_half_away(np.float32(0.0) / so)))
        return ReluData(dtype="int16" if wide else "int8", input_offset=zi, output_offset=zo,
                        output_multiplier=m, output_shift=s, output_activation_min=lo,
                        output_activation_max=qmax)

    def pack_c(self, graph, index, node):
        if _int16_c.is_int16(graph, node):  # the int16 requantization kernel with RELU's clamp
            p = self.prepare(graph, node, True)
            return _int16_c.pack_clamp(graph, index, node, p.output_multiplier, p.output_shift,
                                       (p.input_offset, p.output_offset), p.output_activation_min,
                                       p.output_activation_max)
        from tinyopt.export.c.params import lut

        return lut(self, graph, index, node)

    def eval(self, p: ReluData, inputs):
        x = inputs[0]
        if p.dtype == "float32":
            return np.maximum(x.astype(np.float32), np.float32(0))
        out = p.output_offset + multiply_by_quantized_multiplier(x.astype(np.int64) - p.input_offset,
                                                                 p.output_multiplier, p.output_shift)
        return np.clip(out, p.output_activation_min, p.output_activation_max).astype(p.dtype)

    def from_onnx(self, cv, node, name, a, ins):
        return unary(cv.b, name, cv.val(ins[0]), self.name)

    def from_torch_module(self, cv, n, m, name, out_shape):
        return unary(cv.b, name, cv.val(n.args[0]), self.name)

    def from_torch_function(self, cv, n, key, name, out_shape):
        return unary(cv.b, name, cv.val(n.args[0]), self.name)

    def from_spec(self, sb, kind, layer, x, lname, fused):
        return Node(lname, self.name, [x.name], [sb.out(lname)], {})
