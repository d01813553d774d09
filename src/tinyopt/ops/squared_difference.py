"""SQUARED_DIFFERENCE: (a - b)^2 with broadcasting (TFLM: up to 4-D when the shapes differ).

Integer path as TFLM's ``SquaredDifference``: both operands offset, shifted left by 7 and rescaled to
twice the larger input scale, subtracted, squared in int32 (at most (255 * 128)^2 < 2^31), then
requantized by (2 * max scale)^2 / (2^14 * output scale).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyopt.ops import _common as c
from tinyopt.ops._broadcast import BroadcastData, Broadcasting, aligned, pack_broadcast
from tinyopt.ops._record import CKernel, Options, QuantRule, register
from tinyopt.runtime.fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier

LEFT_SHIFT = 7  # int8: 255^2 * 2^14 fits int32


@dataclass(kw_only=True)
class SquaredDifferenceData(BroadcastData):
    input1_offset: int | None = None     # -zero point of each operand
    input2_offset: int | None = None
    output_offset: int | None = None
    left_shift: int | None = None
    input1_multiplier: int | None = None  # operand rescaling to twice the larger input scale
    input1_shift: int | None = None
    input2_multiplier: int | None = None
    input2_shift: int | None = None
    output_multiplier: int | None = None
    output_shift: int | None = None

    INTS = ("input1_offset", "input2_offset", "output_offset", "left_shift", "input1_multiplier",
            "input1_shift", "input2_multiplier", "input2_shift", "output_multiplier", "output_shift")


@register
class SquaredDifference(Broadcasting):
    name = "SQUARED_DIFFERENCE"
    builtin = 99
    options = Options(76)
    ops_per_element = 2
    quant = QuantRule(constants="range")
    c = CKernel("squared_difference", "squared_difference_params")

    def prepare(self, graph, node, is_int):
        fields = self.broadcast_fields(graph, node)
        a, b = graph.tensors[node.inputs[0]], graph.tensors[node.inputs[1]]
        if a.shape != b.shape and fields["out_rank"] > 4:
            c.unsupported(graph, node, f"broadcasting {list(a.shape)} against {list(b.shape)} (rank "
                          f"{fields['out_rank']})", "TFLM's SQUARED_DIFFERENCE broadcasts up to 4-D: reshape to 4-D")
        if not is_int:
            return SquaredDifferenceData(dtype="float32", **fields)
        (s1, z1), (s2, z2), (so, zo) = (c.scalar_qparams(graph, node, t)
                                        for t in (node.inputs[0], node.inputs[1], node.outputs[0]))
        twice_max = 2.0 * float(max(s1, s2))
        m1, sh1 = quantize_multiplier(float(s1) / twice_max)
        m2, sh2 = quantize_multiplier(float(s2) / twice_max)
        mo, sho = quantize_multiplier(twice_max * twice_max / float(np.float32(1 << (2 * LEFT_SHIFT)) * so))
        return SquaredDifferenceData(dtype="int8", **fields, input1_offset=-z1, input2_offset=-z2,
                                     output_offset=zo, left_shift=LEFT_SHIFT, input1_multiplier=m1,
                                     input1_shift=sh1, input2_multiplier=m2, input2_shift=sh2,
                                     output_multiplier=mo, output_shift=sho)

    def eval(self, p: SquaredDifferenceData, inputs):
        a, b = aligned(p, inputs)
        if p.dtype != "int8":
            d = a.astype(np.float32) - b.astype(np.float32)
            return (d * d).astype(np.float32)
        sa = multiply_by_quantized_multiplier((a.astype(np.int64) + p.input1_offset) << p.left_shift,
                                              p.input1_multiplier, p.input1_shift)
        sb = multiply_by_quantized_multiplier((b.astype(np.int64) + p.input2_offset) << p.left_shift,
                                              p.input2_multiplier, p.input2_shift)
        d = sa - sb
        out = multiply_by_quantized_multiplier(d * d, p.output_multiplier, p.output_shift) + p.output_offset
        return np.clip(out, -128, 127).astype(np.int8)

    def pack_c(self, graph, index, node):
        q = self.prepare(graph, node, True)
        ints = {k: int(getattr(q, k)) for k in SquaredDifferenceData.INTS}
        return pack_broadcast(self, graph, index, node, ints, "squared_difference")
