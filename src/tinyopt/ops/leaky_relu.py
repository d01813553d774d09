"""LEAKY_RELU: x for x > 0, alpha * x below (alpha in the options, any sign or size).

The int8 kernel is TFLM's ``QuantizeLeakyRelu``: two requantizations of x - input zero point, one by
s_in / s_out for x >= 0 (the "identity" multiplier) and one by s_in * alpha / s_out below; both
multipliers come from double arithmetic on the float32 scales and alpha, as the installed TFLM computes
them (float32 arithmetic flips a rounding tie now and then). A negative alpha gives a negative multiplier,
which the kernel applies as the negation of the positive one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyopt.graph.ir import Node
from tinyopt.ops import _common as c
from tinyopt.ops._record import CKernel, Op, OpData, Options, register, scalar
from tinyopt.runtime.fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier

DEFAULT_ALPHA = 0.01  # PyTorch's negative_slope and ONNX's alpha when absent


@dataclass(kw_only=True)
class LeakyReluData(OpData):
    alpha: float | None = None  # float32 kernels
    input_zero_point: int = 0
    output_zero_point: int = 0
    output_multiplier_alpha: int = 0            # s_in * alpha / s_out (negative for a negative alpha)
    output_shift_alpha: int = 0
    output_multiplier_identity: int = 0            # s_in / s_out
    output_shift_identity: int = 0


@register
class LeakyRelu(Op):
    name = "LEAKY_RELU"
    builtin = 98
    options = Options(75, (scalar("alpha", 0, "f32", 0.0),))
    ops_per_element = 2  # compare, multiply
    c = CKernel("leaky_relu", "leaky_relu_params")
    onnx = ("LeakyRelu",)
    torch_modules = ("LeakyReLU",)
    torch_functions = ("leaky_relu",)
    spec_layers = {"leaky_relu": frozenset({"alpha"})}

    def prepare(self, graph, node, is_int):
        alpha = np.float32(node.attrs.get("alpha", 0.0))  # the file stores a float32
        if not np.isfinite(alpha):
            c.fail(graph, node, f"alpha is {alpha}", "give a finite negative slope")
        if not is_int:
            return LeakyReluData(dtype="float32", alpha=float(alpha))
        si, zi = c.scalar_qparams(graph, node, node.inputs[0])
        so, zo = c.scalar_qparams(graph, node, node.outputs[0])
        ma, sa = quantize_multiplier(float(si) * float(alpha) / float(so))
        mi, sh = quantize_multiplier(float(si) / float(so))
        return LeakyReluData(dtype="int8", input_zero_point=zi, output_zero_point=zo,
                             output_multiplier_alpha=ma, output_shift_alpha=sa,
                             output_multiplier_identity=mi, output_shift_identity=sh)

    def eval(self, p: LeakyReluData, inputs):
        x = inputs[0]
        if p.dtype != "int8":
            x = x.astype(np.float32)
            return np.where(x > 0, x, x * np.float32(p.alpha)).astype(np.float32)
        v = x.astype(np.int64) - p.input_zero_point
        pos = multiply_by_quantized_multiplier(v, p.output_multiplier_identity, p.output_shift_identity)
        neg = multiply_by_quantized_multiplier(v, abs(p.output_multiplier_alpha), p.output_shift_alpha)
        neg = -neg if p.output_multiplier_alpha < 0 else neg
        out = p.output_zero_point + np.where(v >= 0, pos, neg)
        return np.clip(out, c.INT8_MIN, c.INT8_MAX).astype(np.int8)

    def pack_c(self, graph, index, node):
        """A table from ``TABLE_FROM`` elements on (see hard_swish.py), else the arithmetic kernel."""
        from tinyopt.export.c import params as cp
        from tinyopt.ops.hard_swish import TABLE_FROM

        x, y = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
        if y.size >= TABLE_FROM:
            return cp.lut(self, graph, index, node)
        cp.check_int8(graph, index, node, [x, y])
        q = self.prepare(graph, node, True)
        keys = ("input_zero_point", "output_zero_point", "output_multiplier_identity",
                "output_shift_identity", "output_shift_alpha")
        ints = {"size": y.size, **{k: int(getattr(q, k)) for k in keys},
                "output_multiplier_alpha": abs(int(q.output_multiplier_alpha)),
                "alpha_negative": int(q.output_multiplier_alpha < 0)}
        return cp.OpParams("leaky_relu", ints, inplace="elementwise")

    # -- doors
    def from_onnx(self, cv, node, name, a, ins):
        return build(cv.b, name, cv.val(ins[0]), a.get("alpha", DEFAULT_ALPHA))

    def from_torch_module(self, cv, n, m, name, out_shape):
        return build(cv.b, name, cv.val(n.args[0]), m.negative_slope)

    def from_torch_function(self, cv, n, key, name, out_shape):
        return build(cv.b, name, cv.val(n.args[0]), cv.arg(n)(1, "negative_slope", DEFAULT_ALPHA))

    def from_spec(self, sb, kind, layer, x, lname, fused):
        alpha = layer.get("alpha", DEFAULT_ALPHA)
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not np.isfinite(alpha):
            sb.fail(f"'alpha' must be a number, got {alpha!r}", "write e.g. 'alpha: 0.1'")
        return Node(lname, self.name, [x.name], [sb.out(lname)], {"alpha": float(alpha)})


def build(b, name: str, x, alpha):
    """A framework leaky ReLU: element-wise, the value keeps its layout."""
    return b.emit(name, LeakyRelu.name, [x.name], {"alpha": float(alpha)}, x.layout, x.perm)
