"""SOFTMAX over the last axis, with ``beta``. Integer path as TFLM's reference ``Softmax`` (gemmlowp fixed
point: exp of the scaled differences to the row maximum, a 12-integer-bit sum, one reciprocal); the int8
output is fixed at scale 1/256, zero point -128.

int16 (16x8) as TFLM's ``SoftmaxInt16``: the differences rescaled so that [-65535, 0] is [-10, 0], exp read
from a 513-entry interpolated table, the sum normalised to [1, 2) and its reciprocal from a second table
(1 / (1 + x)); the output at 1/32768, zero point 0. The tables are built as TFLM's ``LUTPopulate<int16_t>``
builds them, in float32.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from tinyopt.graph.ir import Node
from tinyopt.ops import _common as c
from tinyopt.ops import _int16, _int16_c
from tinyopt.ops._record import CKernel, Op, OpData, Options, QuantRule, register, scalar
from tinyopt.runtime import fixedpoint as fp

_SCALED_DIFF_INTEGER_BITS = 5
_ACCUMULATION_INTEGER_BITS = 12


@dataclass(kw_only=True)
class SoftmaxData(OpData):
    beta: float                         # float32 value widened to double
    input_multiplier: int = 0            # beta * input scale, as a fixed-point multiplier
    input_left_shift: int = 0
    diff_min: int = 0                   # input differences below this give exp = 0


def _round(x):
    """``TfLiteRound`` on float32 values: halves away from zero."""
    return (np.sign(x) * np.floor(np.abs(x) + np.float32(0.5))).astype(np.float32)


def lut_populate_int16(input_scale, input_zero_point: int, output_scale, fn) -> np.ndarray:
    """TFLM's ``LUTPopulateInt16<float>`` (output zero point 0): 512 samples of ``fn`` over the input range,
    each biased by half the error its linear interpolation makes at the midpoint, and the end value. All
    float32, as the C template instantiates it; ``fn`` maps float32 arrays to float32 arrays."""
    f32 = np.float32
    input_scale, output_scale = f32(input_scale), f32(output_scale)
    input_min = input_scale * f32(-32768 - input_zero_point)
    input_max = input_scale * f32(32767 - input_zero_point)
    output_min, output_max = output_scale * f32(-32768), output_scale * f32(32767)
    step = (input_max - input_min) / f32(512)
    half_step = step / f32(2)
    inv = f32(65536) / (output_max - output_min)
    i = np.arange(512)
    at = input_min + i.astype(f32) * step
    val, val_mid, val_next = fn(at), fn(at + half_step), fn(input_min + (i + 1).astype(f32) * step)
    sample = _round(val * inv)
    midpoint_interp = _round((val_next * inv + _round(val * inv)) / f32(2))
    bias = _round((midpoint_interp - _round(val_mid * inv)) / f32(2))
    last = _round(fn(np.array([input_max], f32)) * inv)
    return np.clip(np.concatenate([sample - bias, last]), -32768, 32767).astype(np.int64)


def _expf(x):
    """expf: exp rounded once to float32 (what a correctly rounding libm gives)."""
    return np.exp(np.asarray(x, np.float64)).astype(np.float32)


@lru_cache(maxsize=1)
def int16_tables() -> tuple[np.ndarray, np.ndarray]:
    """(exp table on [-10, 0], 1 / (1 + x) table on [0, 1]): TFLM's two int16 softmax LUTs."""
    rng = np.float32(65535)
    exp_lut = lut_populate_int16(np.float32(10.0) / rng, 32767, np.float32(2.0) / rng, _expf)
    recip_lut = lut_populate_int16(np.float32(1.0) / rng, -32768, np.float32(2.0) / rng,
                                   lambda v: np.float32(1.0) / (np.float32(1.0) + v))
    return exp_lut, recip_lut


def lut_lookup16(value, lut: np.ndarray) -> np.ndarray:
    """TFLM's ``LUTLookup(int16_t, const int16_t *)``: the top 9 bits index, the low 7 interpolate."""
    v = np.asarray(value, np.int64)
    index = 256 + (v >> 7)
    base = lut[index]
    slope = lut[index + 1] - base
    return base + ((slope * (v & 0x7F) + 64) >> 7)


def softmax_int16(x, input_multiplier: int, input_left_shift: int) -> np.ndarray:
    """``SoftmaxInt16`` over the last axis of int16 ``x``."""
    exp_lut, recip_lut = int16_tables()
    xi = np.asarray(x, np.int64)
    diff = xi - xi.max(axis=-1, keepdims=True)
    scaled = fp.multiply_by_quantized_multiplier(diff, input_multiplier, input_left_shift)
    exps = lut_lookup16(np.clip(scaled + 32767, -32768, 32767), exp_lut)
    total = exps.sum(axis=-1, keepdims=True)
    headroom_plus_one = fp.count_leading_zeros32(total)
    shifted = ((total << (headroom_plus_one - 1)) + (1 << 13)) >> 14
    recip = lut_lookup16(np.clip(shifted - (1 << 15) - (1 << 16), -32768, 32767), recip_lut)
    right_shift = 31 - headroom_plus_one
    out = (exps * recip + (np.int64(1) << (right_shift - 1))) >> right_shift
    return np.clip(out, 0, 32767).astype(np.int16)


@register
class Softmax(Op):
    name = "SOFTMAX"
    builtin = 25
    options = Options(9, (scalar("beta", 0, "f32", 0.0, 1.0),))
    ops_per_element = 3  # exp, sum, divide
    int8_version = 2
    quant = QuantRule(output=(1.0 / 256, -128), int16=True, output16=(1.0 / 32768, 0))
    c = CKernel("softmax", "softmax_params")
    onnx = ("Softmax",)
    torch_modules = ("Softmax",)
    torch_functions = ("softmax",)
    spec_layers = {"softmax": frozenset()}
    spec_activation = "softmax"

    def read_tflite(self, r, ins, out):
        attrs = super().read_tflite(r, ins, out)
        beta = float(attrs["beta"])
        if not math.isfinite(beta) or beta <= 0:
            r.fail(f"softmax beta {beta} must be positive and finite")
        attrs["beta"] = beta
        return attrs

    def prepare(self, graph, node, is_int):
        beta = float(np.float32(node.attrs.get("beta", 1.0)))
        if not is_int:
            return SoftmaxData(dtype="float32", beta=beta)
        si, _ = c.scalar_qparams(graph, node, node.inputs[0])
        so, zo = c.scalar_qparams(graph, node, node.outputs[0])
        if graph.tensors[node.inputs[0]].dtype == "int16":
            return self.prepare_int16(graph, node, beta, si, so)
        if zo != -128 or so != np.float32(1.0 / 256):
            c.fail(graph, node,
                   f"int8 softmax output must have scale 1/256 and zero point -128, got {so} and {zo}",
                   "quantize softmax outputs with scale 0.00390625 and zero point -128")
        kbits = 5
        real = min(beta * float(si) * (1 << (31 - kbits)), (1 << 31) - 1.0)
        m, left = fp.quantize_multiplier(real)
        return SoftmaxData(dtype="int8", beta=beta, input_multiplier=m, input_left_shift=left,
                           diff_min=int(-1.0 * fp.calculate_input_radius(kbits, left)))

    def prepare_int16(self, graph, node, beta: float, si, so) -> SoftmaxData:
        """TFLM's int16 Prepare: symmetric tensors, the output at 1/32768 (within 0.1 %), the differences
        rescaled so that 65535 steps are 10.0."""
        _int16.zero_points_zero(graph, node, [node.inputs[0], node.outputs[0]],
                                "TFLM's int16 softmax requires symmetric tensors")
        if abs(float(so) - 1.0 / 32768) > 0.001 / 32768:
            c.fail(graph, node, f"int16 softmax output must have scale 1/32768, got {so}",
                   "quantize softmax outputs with scale 1/32768 and zero point 0")
        m, left = fp.quantize_multiplier(float(si) * beta / (10.0 / 65535.0))
        return SoftmaxData(dtype="int16", beta=beta, input_multiplier=m, input_left_shift=left)

    def eval(self, p: SoftmaxData, inputs):
        x = inputs[0]
        if p.dtype == "int16":
            return softmax_int16(x, p.input_multiplier, p.input_left_shift)
        if p.dtype != "int8":
            z = (x.astype(np.float32) - x.max(axis=-1, keepdims=True).astype(np.float32)) * np.float32(p.beta)
            e = np.exp(z)
            return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)
        xi = x.astype(np.int64)
        diff = xi - xi.max(axis=-1, keepdims=True)
        valid = diff >= p.diff_min
        rescaled = fp.multiply_by_quantized_multiplier_greater_than_one(diff, p.input_multiplier,
                                                                        p.input_left_shift)
        exp_q0 = fp.exp_on_negative_values(rescaled, _SCALED_DIFF_INTEGER_BITS)
        terms = fp.rescale(exp_q0, 0, _ACCUMULATION_INTEGER_BITS)
        sum_of_exps = np.sum(np.where(valid, terms, 0), axis=-1, keepdims=True)
        shifted_scale, num_bits_over_unit = fp.get_reciprocal(sum_of_exps, _ACCUMULATION_INTEGER_BITS)
        unsat = fp.rounding_divide_by_pot(fp.fp_mul(shifted_scale, exp_q0), num_bits_over_unit + 31 - 8)
        out = np.clip(unsat - 128, -128, 127)
        return np.where(valid, out, -128).astype(np.int8)

    def pack_c(self, graph, index, node):
        if _int16_c.is_int16(graph, node):  # the 16x8 kernel (kernels/softmax_int16.c)
            return _int16_c.pack_softmax(graph, index, node, self.prepare(graph, node, True))
        from tinyopt.export.c import params as cp

        x, y = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
        cp.check_int8(graph, index, node, [x, y])
        q = self.prepare(graph, node, True)
        depth = x.shape[-1]
        ints = dict(rows=x.size // depth, depth=depth, input_multiplier=q.input_multiplier,
                    input_left_shift=q.input_left_shift, diff_min=q.diff_min)
        return cp.OpParams("softmax", ints)

    # -- doors
    def from_onnx(self, cv, node, name, a, ins):
        x = cv.val(ins[0])
        axis = a.get("axis", -1 if cv.opset >= 13 else 1)
        if cv.opset < 13 and axis % len(x.shape) != len(x.shape) - 1 and len(x.shape) > 2:
            cv.b.unsupported("a pre-opset-13 Softmax that flattens trailing axes")
        return build(cv.b, name, x, axis)

    def from_torch_module(self, cv, n, m, name, out_shape):
        return build(cv.b, name, cv.val(n.args[0]), m.dim)

    def from_torch_function(self, cv, n, key, name, out_shape):
        return build(cv.b, name, cv.val(n.args[0]), cv.arg(n)(1, "dim"))

    def from_spec(self, sb, kind, layer, x, lname, fused):
        return Node(lname, self.name, [x.name], [sb.out(lname)], {"beta": 1.0})


def build(b, name: str, x, axis):
    """Softmax over framework axis ``axis``: SOFTMAX over the last graph axis, between two TRANSPOSEs when
    the axis maps elsewhere (see ``_last_axis.py``)."""
    from tinyopt.ops._last_axis import over_last_axis

    if axis is None:
        b.unsupported("softmax without dim", "give dim explicitly")
    return over_last_axis(b, name, x, axis, Softmax.name, {"beta": 1.0})
