"""What LOGISTIC and TANH share: TFLM's int8 kernels evaluate them in gemmlowp fixed point on the input
rescaled to Q4.27, saturating beyond ``input_range_radius``; the output scale and zero point are fixed.

int16 (16x8): TFLM's ``reference_integer_ops`` kernels read a 256-entry table of sigmoid(i/24) and
interpolate (tanh(x) = 2 sigmoid(2x) - 1); the input is rescaled to 1/(3 * 4096) by an up-to-15-bit
multiplier and a rounding shift (a power-of-two scale 2^-12 needs none). Zero points are 0, the output
scale 2^-15 (Q0.15).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyopt.graph.ir import Node
from tinyopt.ops import _common as c
from tinyopt.ops import _int16, _int16_c
from tinyopt.ops._record import CKernel, Op, OpData, QuantRule
from tinyopt.runtime import fixedpoint as fp


@dataclass(kw_only=True)
class SigmoidLikeData(OpData):
    input_zero_point: int = 0
    input_multiplier: int = 0            # input scale * 2^27, as a fixed-point multiplier
    input_left_shift: int = 0
    input_range_radius: int = 0            # beyond ±radius the output saturates


class SigmoidLike(Op):
    ops_per_element = 1
    int8_version = 2
    c = CKernel("lut", "lut_params")
    output_qparams: tuple[float, int] = (1.0, 0)
    output_bits = 8  # fractional bits of the int8 output: 8 (LOGISTIC, [0, 1)) or 7 (TANH, [-1, 1))

    pot_shifts: tuple[int, ...] = (0,)  # int16: the input left shifts TFLM treats as the power-of-two case
    is_tanh = False  # int16 C kernel: TANH's table walk (else LOGISTIC's)

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        cls.quant = QuantRule(output=cls.output_qparams, int16=True, output16=(1.0 / 32768, 0))

    def prepare_int16(self, graph, node) -> SigmoidLikeData:
        """TFLM's int16 Prepare: zero points 0, the output at 2^-15, the input multiplier to 1/(3 * 4096)."""
        _int16.zero_points_zero(graph, node, [node.inputs[0], node.outputs[0]],
                                f"TFLM's int16 {node.op} requires symmetric tensors")
        si, _ = c.scalar_qparams(graph, node, node.inputs[0])
        so, _ = c.scalar_qparams(graph, node, node.outputs[0])
        if _int16.checked_log2(so) != (True, -15):
            c.fail(graph, node, f"int16 {node.op} output must have scale 2^-15, got {so}",
                   "quantize the output with scale 1/32768 and zero point 0")
        pot, log2 = _int16.checked_log2(si)
        left = 12 + log2
        if pot and left in self.pot_shifts:
            return SigmoidLikeData(dtype="int16", input_zero_point=0, input_multiplier=0,
                                   input_left_shift=left)
        multiplier, left = float(si) * 4096.0 * 3.0, 0
        while multiplier <= 32767.0 / 2.0 and left <= 30:
            left += 1
            multiplier *= 2.0
        if multiplier > 32767.0:  # TFLM only DCHECKs this; its int32 products would overflow
            c.unsupported(graph, node,
                          f"int16 input scale {si} is above what TFLM's int16 {node.op} takes (2.67)",
                          "calibrate a narrower input range")
        return SigmoidLikeData(dtype="int16", input_zero_point=0, input_multiplier=int(multiplier),
                               input_left_shift=left)

    def prepare(self, graph, node, is_int):
        if not is_int:
            return SigmoidLikeData(dtype="float32")
        if graph.tensors[node.inputs[0]].dtype == "int16":
            return self.prepare_int16(graph, node)
        si, zi = c.scalar_qparams(graph, node, node.inputs[0])
        so, zo = c.scalar_qparams(graph, node, node.outputs[0])
        want = (np.float32(self.output_qparams[0]), self.output_qparams[1])
        if (so, zo) != want:
            c.fail(graph, node,
                   f"int8 {node.op} output must have scale {float(want[0])} and zero point {want[1]}, "
                   f"got {so} and {zo}",
                   f"quantize the output with scale {float(want[0])}, zero point {want[1]}")
        m, left = fp.frexp_multiplier(float(si) * float(1 << (31 - 4)))
        return SigmoidLikeData(dtype="int8", input_zero_point=zi, input_multiplier=m, input_left_shift=left,
                               input_range_radius=fp.calculate_input_radius(4, left, 31))

    def fixed(self, q4):
        raise NotImplementedError

    def fixed16(self, x, multiplier: int, left_shift: int):
        raise NotImplementedError

    @staticmethod
    def float_fn(x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def eval(self, p: SigmoidLikeData, inputs):
        x = inputs[0]
        if p.dtype == "int16":
            return self.fixed16(x, p.input_multiplier, p.input_left_shift)
        if p.dtype != "int8":
            return self.float_fn(x.astype(np.float32)).astype(np.float32)
        d = x.astype(np.int64) - p.input_zero_point
        radius = p.input_range_radius
        inner = np.clip(d, -radius + 1, radius - 1)
        q4 = fp.multiply_by_quantized_multiplier(inner, p.input_multiplier, p.input_left_shift)
        offset = self.output_qparams[1]
        out = np.clip(fp.rounding_divide_by_pot(self.fixed(q4), 31 - self.output_bits) + offset, -128, 127)
        out = np.where(d <= -radius, -128, np.where(d >= radius, 127, out))
        return out.astype(np.int8)

    def pack_c(self, graph, index, node):
        if _int16_c.is_int16(graph, node):  # the 16x8 table kernel (kernels/elementwise_int16.c)
            return _int16_c.pack_sigmoid(graph, index, node, self.prepare(graph, node, True), self.is_tanh)
        from tinyopt.export.c.params import lut

        return lut(self, graph, index, node)

    def from_onnx(self, cv, node, name, a, ins):
        return unary(cv.b, name, cv.val(ins[0]), self.name)

    def from_torch_module(self, cv, n, m, name, out_shape):
        return unary(cv.b, name, cv.val(n.args[0]), self.name)

    def from_torch_function(self, cv, n, key, name, out_shape):
        return unary(cv.b, name, cv.val(n.args[0]), self.name)

    def from_spec(self, sb, kind, layer, x, lname, fused):
        return Node(lname, self.name, [x.name], [sb.out(lname)], {})


def unary(b, name: str, x, op: str):
    """An element-wise framework op: the value keeps its layout and flatten order."""
    return b.emit(name, op, [x.name], {}, x.layout, x.perm)
