"""ADD: element-wise sum with a fused activation.

Integer path as TFLM's ``AddElementwise``: both operands are shifted left by 20 (int8; 15 for int16),
rescaled to twice the larger input scale, added, then requantized to the output. For int16 TFLM always
takes this general path (TFLite's power-of-two fast path is not called: ``pot_scale`` false).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyopt.graph.ir import Node
from tinyopt.ops import _common as c
from tinyopt.ops import _int16, _int16_c
from tinyopt.ops._binary import Binary, options
from tinyopt.ops._record import CKernel, OpData, register
from tinyopt.runtime.fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier


@dataclass(kw_only=True)
class AddData(c.ActivationRange, OpData):
    input1_offset: int | None = None     # -zero point of each operand
    input2_offset: int | None = None
    output_offset: int | None = None
    left_shift: int | None = None        # 20 for int8: inputs are scaled up before requantization
    input1_multiplier: int | None = None  # operand rescaling to twice the larger input scale
    input1_shift: int | None = None
    input2_multiplier: int | None = None
    input2_shift: int | None = None
    output_multiplier: int | None = None
    output_shift: int | None = None


def prepare_add_sub(rec: Binary, graph, node, is_int) -> AddData:
    """TFLM's ``CalculateOpDataAdd`` / ``CalculateOpDataSub``: left shift 20 (int8) or 15 (int16, where
    65535 << 15 still fits the int32 sum), the scale ratios in double. (Older TFLM sources divide SUB's
    scales in float32; the installed TFLM agrees with double on every int8 operand pair of 60 random
    parameter sets, float32 does not on 3 of them.)"""
    p = c.output_range(graph, node, is_int)
    if not is_int:
        return AddData(dtype="float32", **p)
    (s1, z1), (s2, z2), (so, zo) = rec.operand_qparams(graph, node)
    wide = graph.tensors[node.outputs[0]].dtype == "int16"
    if wide:  # the 16x8 scheme's symmetric operands (TFLM's int16 SUB requires it; 65535 << 15 needs it)
        _int16.zero_points_zero(graph, node, [*node.inputs[:2], node.outputs[0]],
                                "TFLM's int16 ADD/SUB assume symmetric operands")
    left_shift = 15 if wide else 20
    twice_max = 2.0 * float(max(s1, s2))
    m1, sh1 = quantize_multiplier(float(s1) / twice_max)
    m2, sh2 = quantize_multiplier(float(s2) / twice_max)
    mo, sho = quantize_multiplier(twice_max / ((1 << left_shift) * float(so)))
    return AddData(dtype="int16" if wide else "int8", **p, input1_offset=-z1, input2_offset=-z2,
                   output_offset=zo, left_shift=left_shift, input1_multiplier=m1, input1_shift=sh1,
                   input2_multiplier=m2, input2_shift=sh2, output_multiplier=mo, output_shift=sho)


def eval_add_sub(p: AddData, inputs, sign: int) -> np.ndarray:
    a, b = inputs[0], inputs[1]
    if p.dtype == "float32":
        return c.clamp_float(a.astype(np.float32) + sign * b.astype(np.float32), p)
    a1 = (a.astype(np.int64) + p.input1_offset) << p.left_shift
    b1 = (b.astype(np.int64) + p.input2_offset) << p.left_shift
    sa = multiply_by_quantized_multiplier(a1, p.input1_multiplier, p.input1_shift)
    sb = multiply_by_quantized_multiplier(b1, p.input2_multiplier, p.input2_shift)
    out = multiply_by_quantized_multiplier(sa + sign * sb, p.output_multiplier,
                                           p.output_shift) + p.output_offset
    return np.clip(out, p.output_activation_min, p.output_activation_max).astype(p.dtype)


@register
class Add(Binary):
    name = "ADD"
    builtin = 0
    options = options(11)
    bias_like = True
    arith_code = 0
    c = CKernel("add", "add_params")
    onnx = ("Add",)
    torch_functions = ("add", "iadd")
    spec_layers = {"add": frozenset({"from"})}

    def prepare(self, graph, node, is_int):
        return prepare_add_sub(self, graph, node, is_int)

    def eval(self, p, inputs):
        return eval_add_sub(p, inputs, 1)

    def pack_c(self, graph, index, node):
        if _int16_c.is_int16(graph, node):  # the 16x8 kernel (kernels/elementwise_int16.c)
            return _int16_c.pack_arithmetic(graph, index, node, self.prepare(graph, node, True),
                                            self.arith_code)
        from tinyopt.export.c import params as cp

        a, b = graph.tensors[node.inputs[0]], graph.tensors[node.inputs[1]]
        y = graph.tensors[node.outputs[0]]
        cp.check_int8(graph, index, node, [a, b, y])
        if a.shape != b.shape or a.shape != y.shape or a.data is not None or b.data is not None:
            return self.pack_arithmetic(graph, index, node)  # broadcasting or a constant operand
        q = self.prepare(graph, node, True)
        keys = ("input1_offset", "input2_offset", "output_offset", "left_shift", "input1_multiplier",
                "input1_shift", "input2_multiplier", "input2_shift", "output_multiplier", "output_shift")
        ints = {k: int(getattr(q, k)) for k in keys}
        ints.update(size=y.size, output_activation_min=q.output_activation_min,
                    output_activation_max=q.output_activation_max)
        # every operand of the three requantizations stays below 2^30 (|x + offset| <= 255 << left_shift, and
        # a multiplier below 1 with no left shift only shrinks it): the add kernel may use tinyopt_mbqm_small
        ints["small"] = int(ints["left_shift"] <= 21 and max(ints["input1_shift"], ints["input2_shift"],
                                                             ints["output_shift"]) <= 0)
        return cp.OpParams("add", ints, signature="binary", inplace="elementwise", epilogue=True,
                           stream="rows")

    def from_spec(self, sb, kind, layer, x, lname, fused):
        srcs = sb.sources(layer)
        return Node(lname, self.name, [x.name, srcs[0]], [sb.out(lname)], {"activation": fused})
