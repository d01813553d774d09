"""SQUARED_DIFFERENCE: (a - b)^2 with broadcasting (TFLM: up to 4-D when the shapes differ).

Integer path as TFLM's ``SquaredDifference``: both operands offset, shifted left by 7 and rescaled to
twice the larger input scale, subtracted, squared in int32 (at most (255 * 128)^2 < 2^31), then
requantized by (2 * max scale)^2 / (2^14 * output scale).

Its record holds the layer-normalization doors (ONNX ``LayerNormalization``, ``nn.LayerNorm``,
``F.layer_norm``): TFLite has no such operator, and the decomposition the TFLite converter emits is built
around this one (see ``layer_norm``).
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
    input1_offset: int = 0               # -zero point of each operand
    input2_offset: int = 0
    output_offset: int = 0
    left_shift: int = 0
    input1_multiplier: int = 0            # operand rescaling to twice the larger input scale
    input1_shift: int = 0
    input2_multiplier: int = 0
    input2_shift: int = 0
    output_multiplier: int = 0
    output_shift: int = 0

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
    onnx = ("LayerNormalization",)  # layer normalization, decomposed (see ``layer_norm``)
    torch_modules = ("LayerNorm",)
    torch_functions = ("layer_norm",)

    def prepare(self, graph, node, is_int):
        fields = self.broadcast_fields(graph, node)
        a, b = graph.tensors[node.inputs[0]], graph.tensors[node.inputs[1]]
        if a.shape != b.shape and fields["out_rank"] > 4:
            c.unsupported(graph, node, f"broadcasting {list(a.shape)} against {list(b.shape)} (rank "
                          f"{fields['out_rank']})",
                          "TFLM's SQUARED_DIFFERENCE broadcasts up to 4-D: reshape to 4-D")
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

    # -- doors: layer normalization has no TFLite operator; it is decomposed here around this one
    def from_onnx(self, cv, node, name, a, ins):
        if any(o and cv.uses.get(o) for o in node.output[1:]):
            cv.b.unsupported("LayerNormalization's Mean / InvStdDev outputs", "use only its first output")
        x = cv.val(ins[0])
        axis = int(a.get("axis", -1)) % len(x.shape)
        weight = cv.const(ins[1], "scale")
        bias = cv.const(ins[2], "bias") if len(ins) > 2 and ins[2] else None
        return layer_norm(cv.b, name, x, len(x.shape) - axis, weight, bias, float(a.get("epsilon", 1e-5)))

    def from_torch_module(self, cv, n, m, name, out_shape):
        return layer_norm(cv.b, name, cv.val(n.args[0]), len(m.normalized_shape), cv.np(m.weight),
                          cv.np(m.bias), float(m.eps))

    def from_torch_function(self, cv, n, key, name, out_shape):
        from tinyopt.graph.torch_import import Val

        arg = cv.arg(n)
        shape, weight, bias = arg(1, "normalized_shape"), arg(2, "weight"), arg(3, "bias")
        if weight is not None or bias is not None:
            cv.b.unsupported("F.layer_norm with a weight or bias tensor", "use nn.LayerNorm, which owns them")
        x = cv.val(n.args[0])
        if not isinstance(x, Val):
            cv.b.unsupported("a layer norm of a constant")
        return layer_norm(cv.b, name, x, len(tuple(shape)) if isinstance(shape, (list, tuple)) else 1, None,
                          None, float(arg(4, "eps", 1e-5)))


def layer_norm(b, name: str, x, n_axes: int, weight, bias, eps: float):
    """Layer normalization over the last ``n_axes`` framework axes, as TFLite operators computing the same
    float function: mean = MEAN(x); var = MEAN(SQUARED_DIFFERENCE(x, mean)); r = RSQRT(ADD(var, eps));
    y = MUL(SUB(x, mean), r), then MUL by the weight and ADD the bias when given. Every step has an int8
    kernel in TFLM, so the decomposition converts."""
    from tinyopt.ops import _binary, _broadcast, _reduce
    from tinyopt.ops._unary import unary
    from tinyopt.ops.add import Add
    from tinyopt.ops.mean import Mean
    from tinyopt.ops.mul import Mul
    from tinyopt.ops.rsqrt import Rsqrt
    from tinyopt.ops.sub import Sub

    rank = len(x.shape)
    if not 1 <= n_axes < rank:
        b.unsupported(f"a layer norm over the last {n_axes} axes of {list(x.shape)}",
                      "normalize over feature axes only (not the batch)")
    axes = list(range(rank - n_axes, rank))
    mean = _reduce.build(b, f"{name}/mean", Mean.name, x, axes, True)
    sq = _broadcast.build(b, f"{name}/squared_difference", SquaredDifference.name, x, mean)
    var = _reduce.build(b, f"{name}/variance", Mean.name, sq, axes, True)
    r = unary(b, f"{name}/rsqrt", _binary.build(b, f"{name}/add_eps", Add.name, var, float(eps)), Rsqrt.name)
    y = _binary.build(b, f"{name}/normalized", Mul.name,
                      _binary.build(b, f"{name}/centered", Sub.name, x, mean), r)
    if weight is not None:
        y = _binary.build(b, f"{name}/weight", Mul.name, y, np.asarray(weight, np.float32))
    if bias is not None:
        y = _binary.build(b, name, Add.name, y, np.asarray(bias, np.float32))
    return y
