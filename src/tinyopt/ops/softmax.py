"""SOFTMAX over the last axis, with ``beta``. Integer path as TFLM's reference ``Softmax`` (gemmlowp fixed
point: exp of the scaled differences to the row maximum, a 12-integer-bit sum, one reciprocal); the int8
output is fixed at scale 1/256, zero point -128."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tinyopt.graph.ir import Node
from tinyopt.ops import _common as c
from tinyopt.ops._record import CKernel, Op, OpData, Options, QuantRule, register, scalar
from tinyopt.runtime import fixedpoint as fp

_SCALED_DIFF_INTEGER_BITS = 5
_ACCUMULATION_INTEGER_BITS = 12


@dataclass(kw_only=True)
class SoftmaxData(OpData):
    beta: float                         # float32 value widened to double
    input_multiplier: int | None = None  # beta * input scale, as a fixed-point multiplier
    input_left_shift: int | None = None
    diff_min: int | None = None         # input differences below this give exp = 0


@register
class Softmax(Op):
    name = "SOFTMAX"
    builtin = 25
    options = Options(9, (scalar("beta", 0, "f32", 0.0, 1.0),))
    ops_per_element = 3  # exp, sum, divide
    int8_version = 2
    quant = QuantRule(output=(1.0 / 256, -128))
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
        if zo != -128 or so != np.float32(1.0 / 256):
            c.fail(graph, node, f"int8 softmax output must have scale 1/256 and zero point -128, got {so} and {zo}",
                   "quantize softmax outputs with scale 0.00390625 and zero point -128")
        kbits = 5
        real = min(beta * float(si) * (1 << (31 - kbits)), (1 << 31) - 1.0)
        m, left = fp.quantize_multiplier(real)
        return SoftmaxData(dtype="int8", beta=beta, input_multiplier=m, input_left_shift=left,
                           diff_min=int(-1.0 * fp.calculate_input_radius(kbits, left)))

    def eval(self, p: SoftmaxData, inputs):
        x = inputs[0]
        if p.dtype != "int8":
            z = (x.astype(np.float32) - x.max(axis=-1, keepdims=True).astype(np.float32)) * np.float32(p.beta)
            e = np.exp(z)
            return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)
        xi = x.astype(np.int64)
        diff = xi - xi.max(axis=-1, keepdims=True)
        valid = diff >= p.diff_min
        rescaled = fp.multiply_by_quantized_multiplier_greater_than_one(diff, p.input_multiplier, p.input_left_shift)
        exp_q0 = fp.exp_on_negative_values(rescaled, _SCALED_DIFF_INTEGER_BITS)
        terms = fp.rescale(exp_q0, 0, _ACCUMULATION_INTEGER_BITS)
        sum_of_exps = np.sum(np.where(valid, terms, 0), axis=-1, keepdims=True)
        shifted_scale, num_bits_over_unit = fp.get_reciprocal(sum_of_exps, _ACCUMULATION_INTEGER_BITS)
        unsat = fp.rounding_divide_by_pot(fp.fp_mul(shifted_scale, exp_q0), num_bits_over_unit + 31 - 8)
        out = np.clip(unsat - 128, -128, 127)
        return np.where(valid, out, -128).astype(np.int8)

    def pack_c(self, graph, index, node):
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
