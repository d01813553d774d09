"""HARD_SWISH: x * relu6(x + 3) / 6, and the doors of the swish family.

The int8 kernel is TFLM's ``HardSwish``: everything runs in 16-bit fixed point. The input is moved to a
"high-resolution" scale (x 2^7), multiplied once by the output multiplier (the linear part) and once by
the "reluish" multiplier, which maps [-3, 3] onto the int16 range (saturating outside it); the reluish
value, shifted into [0, 1], then scales the linear part with a rounding-towards-zero high multiply. Both
multipliers are 16-bit (``DownScaleInt32ToInt16Multiplier``) roundings of 31-bit ones whose ratios of
scales are taken in double, as the installed TFLM does (a float32 ratio moves the 31-bit multiplier a few
units, which now and then carries the 16-bit one across a rounding tie). The int16 helpers below reproduce
gemmlowp's int16 specialisations, including the int16 mask of its rounding shift.

Doors: ONNX HardSwish and PyTorch ``Hardswish`` map here. TFLite has no hard sigmoid, so ONNX
HardSigmoid(alpha, beta) = clip(alpha x + beta, 0, 1) = relu6(6 alpha x + 6 beta) / 6 becomes MUL, ADD,
RELU6 and MUL (PyTorch's ``Hardsigmoid`` is alpha = 1/6, beta = 1/2); an ONNX HardSigmoid(1/6, 1/2) whose
only reader is ``Mul(x, ·)`` of its own input is a hard swish (what exporters before opset 14 write) and
becomes this operator. SiLU, x * sigmoid(x), is LOGISTIC then MUL.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyopt.graph.ir import Node
from tinyopt.ops import _common as c
from tinyopt.ops._record import CKernel, Op, OpData, register
from tinyopt.ops._sigmoid_like import unary
from tinyopt.runtime.fixedpoint import quantize_multiplier

INT16_MIN, INT16_MAX = -(1 << 15), (1 << 15) - 1
INT32_MAX = (1 << 31) - 1
# The C library runs an element-wise operator whose int8 output depends on the input alone as a 256-byte
# table (one load per element) once its tensor has at least as many elements as the table has entries;
# a smaller tensor runs the arithmetic kernel, whose ~500 bytes of code serve every such node. Measured on
# the Cortex-M4 (qemu instruction counts per element, call and input copy included): HARD_SWISH 70,
# LEAKY_RELU 40, the table 10.
TABLE_FROM = 256


@dataclass(kw_only=True)
class HardSwishData(OpData):
    input_zero_point: int = 0
    output_zero_point: int = 0
    reluish_multiplier_fixedpoint_int16: int = 0            # input (x 2^7) -> [-3, 3] on [-2^15, 2^15)
    reluish_multiplier_exponent: int = 0
    output_multiplier_fixedpoint_int16: int = 0            # input (x 2^7) -> output scale
    output_multiplier_exponent: int = 0            # <= 0 (TFLM's Prepare refuses a left shift)


# -- gemmlowp's int16 arithmetic, on int64 arrays holding int16 values ---------------------------------

def down_scale_int32_to_int16_multiplier(m: int) -> int:
    """``DownScaleInt32ToInt16Multiplier``: the 16 high bits of a Q31 multiplier, rounded (saturating).

    >>> down_scale_int32_to_int16_multiplier(1 << 30), down_scale_int32_to_int16_multiplier((1 << 31) - 1)
    (16384, 32767)
    """
    if m >= INT32_MAX - (1 << 15):
        return INT16_MAX
    return (m + (1 << 15)) >> 16


def srdhm16(a, b) -> np.ndarray:
    """gemmlowp ``SaturatingRoundingDoublingHighMul`` for int16: (a*b + nudge) / 2^15 truncated, which is
    floor((a*b + 2^14) / 2^15) for both signs of a*b (as for int32, see ``runtime.fixedpoint``)."""
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    return np.where((a == INT16_MIN) & (b == INT16_MIN), INT16_MAX, (a * b + (1 << 14)) >> 15)


def sdhm16(a, b) -> np.ndarray:
    """``SaturatingDoublingHighMul`` (no rounding): a*b / 2^15 with C's division towards zero."""
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    ab = a * b
    q = np.where(ab >= 0, ab >> 15, -((-ab) >> 15))
    return np.where((a == INT16_MIN) & (b == INT16_MIN), INT16_MAX, q)


def rounding_divide_by_pot16(x, exponent: int) -> np.ndarray:
    """gemmlowp ``RoundingDivideByPOT`` on int16: its mask 2^e - 1 is an int16 too, so from e = 16 on
    the mask is -1 (all ones) and the "remainder" is x itself — reproduced as written.

    >>> rounding_divide_by_pot16(np.array([5, -5, 6, -6]), 2).tolist()  # 1.25, -1.25, 1.5, -1.5
    [1, -1, 2, -2]
    """
    x = np.asarray(x, np.int64)
    mask = -1 if exponent >= 16 else (1 << exponent) - 1
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + ((x & mask) > threshold)


def saturating_left_shift16(x, amount: int) -> np.ndarray:
    """x * 2^amount clamped to int16 (from 2^15 on every nonzero int16 saturates: the shift is capped)."""
    return np.clip(np.asarray(x, np.int64) << min(amount, 15), INT16_MIN, INT16_MAX)


def hard_swish_int8(p: HardSwishData, x) -> np.ndarray:
    """TFLM's quantized ``HardSwish``, element by element (vectorised)."""
    input_value = np.asarray(x, np.int64) - p.input_zero_point
    hires = input_value * (1 << 7)  # |x - zp| <= 255: fits int16
    preshift_output = srdhm16(hires, p.output_multiplier_fixedpoint_int16)
    reluish = hires
    exp = p.reluish_multiplier_exponent
    if exp > 0:  # all but the last bit of a left shift, then the multiplier, then the last bit
        reluish = saturating_left_shift16(reluish, exp - 1)
    reluish = srdhm16(reluish, p.reluish_multiplier_fixedpoint_int16)
    if exp > 0:
        reluish = saturating_left_shift16(reluish, 1)
    if exp < 0:
        reluish = rounding_divide_by_pot16(reluish, -exp)
    reluish = (reluish + (1 << 15)) >> 1  # [-1, 1] -> [0, 1]
    out = rounding_divide_by_pot16(sdhm16(reluish, preshift_output), -p.output_multiplier_exponent)
    # |out| <= 32638 (|preshift| <= 32639, reluish < 1): adding a zero point cannot leave int16
    return np.clip(out + p.output_zero_point, c.INT8_MIN, c.INT8_MAX).astype(np.int8)


@register
class HardSwish(Op):
    name = "HARD_SWISH"
    builtin = 117
    ops_per_element = 3  # add, clamp, multiply (the / 6 folds into a constant)
    c = CKernel("hard_swish", "hard_swish_params")
    onnx = ("HardSwish", "HardSigmoid")
    torch_modules = ("Hardswish", "Hardsigmoid", "SiLU")
    torch_functions = ("hardswish", "hardsigmoid", "silu")
    spec_layers = {"hard_swish": frozenset()}
    spec_activation = "hard_swish"

    def prepare(self, graph, node, is_int):
        if not is_int:
            return HardSwishData(dtype="float32")
        si, zi = c.scalar_qparams(graph, node, node.inputs[0])
        so, zo = c.scalar_qparams(graph, node, node.outputs[0])
        hires_input_scale = float(np.float32(1.0 / 128.0) * si)  # exact: a power of two
        reluish_scale = 3.0 / 32768.0
        om, oe = quantize_multiplier(hires_input_scale / float(so))
        if oe > 0:
            c.unsupported(graph, node, f"the output scale {so} is at most input scale / 128 ({si}): TFLM's "
                          "HARD_SWISH needs a right-shifting output multiplier",
                          "calibrate the output range again (hard swish keeps roughly the input's range)")
        rm, re = quantize_multiplier(hires_input_scale / reluish_scale)
        return HardSwishData(dtype="int8", input_zero_point=zi, output_zero_point=zo,
                             reluish_multiplier_fixedpoint_int16=down_scale_int32_to_int16_multiplier(rm),
                             reluish_multiplier_exponent=re,
                             output_multiplier_fixedpoint_int16=down_scale_int32_to_int16_multiplier(om),
                             output_multiplier_exponent=oe)

    def eval(self, p: HardSwishData, inputs):
        x = inputs[0]
        if p.dtype != "int8":
            x = x.astype(np.float32)
            return (x * np.minimum(np.float32(6), np.maximum(np.float32(0), x + np.float32(3)))
                    / np.float32(6)).astype(np.float32)
        return hard_swish_int8(p, x)

    def pack_c(self, graph, index, node):
        from tinyopt.export.c import params as cp

        x, y = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
        if y.size >= TABLE_FROM:
            return cp.lut(self, graph, index, node)
        cp.check_int8(graph, index, node, [x, y])
        q = self.prepare(graph, node, True)
        keys = ("input_zero_point", "output_zero_point", "reluish_multiplier_fixedpoint_int16",
                "reluish_multiplier_exponent", "output_multiplier_fixedpoint_int16",
                "output_multiplier_exponent")
        ints = {"size": y.size, **{k: int(getattr(q, k)) for k in keys}}
        return cp.OpParams("hard_swish", ints, inplace="elementwise")

    # -- doors
    def from_onnx(self, cv, node, name, a, ins):
        x = cv.val(ins[0])
        if node.op_type == "HardSwish":
            return unary(cv.b, name, x, self.name)
        alpha, beta = np.float32(a.get("alpha", 0.2)), np.float32(a.get("beta", 0.5))
        if (alpha, beta) == (np.float32(1 / 6), np.float32(0.5)) and _claim_hard_swish_mul(cv, node):
            return unary(cv.b, name, x, self.name)
        return hard_sigmoid(cv.b, name, x, alpha, beta)

    def from_torch_module(self, cv, n, m, name, out_shape):
        return self._torch(cv, type(m).__name__.lower(), cv.val(n.args[0]), name)

    def from_torch_function(self, cv, n, key, name, out_shape):
        return self._torch(cv, key, cv.val(n.args[0]), name)

    def _torch(self, cv, key, x, name):
        if key == "hardsigmoid":
            return hard_sigmoid(cv.b, name, x, np.float32(1 / 6), np.float32(0.5))
        if key == "silu":
            return silu(cv.b, name, x)
        return unary(cv.b, name, x, self.name)

    def from_spec(self, sb, kind, layer, x, lname, fused):
        return Node(lname, self.name, [x.name], [sb.out(lname)], {})


def hard_sigmoid(b, name: str, x, alpha: np.float32, beta: np.float32):
    """clip(alpha x + beta, 0, 1) as relu6(6 alpha x + 6 beta) * (1/6): MUL (unless 6 alpha is 1), ADD
    (unless 6 beta is 0), RELU6, MUL."""
    from tinyopt.ops._binary import build
    from tinyopt.ops.add import Add
    from tinyopt.ops.mul import Mul
    from tinyopt.ops.relu6 import Relu6

    six = np.float32(6)
    if six * alpha != 1:
        x = build(b, f"{name}/scale", Mul.name, x, float(six * alpha))
    if six * beta != 0:
        x = build(b, f"{name}/shift", Add.name, x, float(six * beta))
    x = unary(b, f"{name}/relu6", x, Relu6.name)
    return build(b, name, Mul.name, x, float(np.float32(1) / six))


def silu(b, name: str, x):
    """x * sigmoid(x): LOGISTIC, then MUL by the input."""
    from tinyopt.ops._binary import build
    from tinyopt.ops.logistic import Logistic
    from tinyopt.ops.mul import Mul

    s = unary(b, f"{name}/sigmoid", x, Logistic.name)
    return build(b, name, Mul.name, x, s)


def _claim_hard_swish_mul(cv, node) -> bool:
    """When the HardSigmoid's only reader is ``Mul(x, hardsigmoid(x))`` of the same x, turn that Mul into
    an Identity of this node's output (the converter walks nodes in order, so it passes our HARD_SWISH on)
    and return True. The model is the importer's own parsed copy; nothing outside it changes."""
    out, x = node.output[0], node.input[0]
    if cv.uses.get(out, 0) != 1 or out in cv.outputs:
        return False
    mul = next((m for m in cv.model.graph.node if out in m.input), None)
    if mul is None or mul.op_type != "Mul" or sorted(mul.input) != sorted([x, out]) or x == out:
        return False
    mul.op_type = "Identity"
    del mul.input[:]
    mul.input.append(out)
    return True
