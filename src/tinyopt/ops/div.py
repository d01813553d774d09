"""DIV: element-wise quotient with broadcasting (up to 5-D) and a fused activation.

Float32 as TFLM's ``Div``/``BroadcastDivSlow``. Int8 as TFLM's ``DivElementwise``: the offset operands,
signs moved to the numerator, the integer reciprocal of the denominator (``GetReciprocal``), the
numerator shifted to its headroom, then one requantization by input1 scale / (input2 scale x output
scale) computed in double, as the installed TFLM does (float32 arithmetic flips a rounding tie now and
then). A denominator equal to its zero point is a division by zero
(TFLM only checks it in debug builds); both runtimes give the same number for it.

Doors: a constant divisor becomes MUL by its reciprocal (the same function, and the multiply has more
kernels); ``Reciprocal`` and a constant numerator stay DIV; a divisor that is the square root of a
value used only there becomes MUL by RSQRT (the exported LayerNorm pattern), which TFLM runs in int8.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyopt.ops import _common as c
from tinyopt.ops._broadcast import BroadcastData, Broadcasting, aligned, build, onnx_operands
from tinyopt.ops._gemmlowp import count_leading_sign_bits, rounding_divide_by_pot_wide
from tinyopt.ops._record import Options, QuantRule, activation, register
from tinyopt.runtime import fixedpoint as fp


@dataclass(kw_only=True)
class DivData(c.ActivationRange, BroadcastData):
    input1_offset: int = 0
    input2_offset: int = 0
    output_offset: int = 0
    output_multiplier: int = 0
    output_shift: int = 0


@register
class Div(Broadcasting):
    name = "DIV"
    builtin = 42
    options = Options(29, (activation("activation", 0),))
    fused_activation = True
    int8_version = 1
    quant = QuantRule(constants="range")
    onnx = ("Div", "Reciprocal")
    torch_functions = ("div", "truediv", "reciprocal")

    def prepare(self, graph, node, is_int):
        fields = {**self.broadcast_fields(graph, node), **c.output_range(graph, node, is_int)}
        if not is_int:
            return DivData(dtype="float32", **fields)
        (s1, z1), (s2, z2), (so, zo) = (c.scalar_qparams(graph, node, t)
                                        for t in (node.inputs[0], node.inputs[1], node.outputs[0]))
        m, s = fp.quantize_multiplier(float(s1) / (float(s2) * float(so)))
        return DivData(dtype="int8", **fields, input1_offset=-z1, input2_offset=-z2, output_offset=zo,
                       output_multiplier=m, output_shift=s)

    def eval(self, p: DivData, inputs):
        a, b = aligned(p, inputs)
        if p.dtype != "int8":
            with np.errstate(divide="ignore", invalid="ignore"):
                return c.clamp_float(a.astype(np.float32) / b.astype(np.float32), p)
        v1 = a.astype(np.int64) + p.input1_offset
        v2 = b.astype(np.int64) + p.input2_offset
        v1, v2 = np.broadcast_arrays(np.where(v2 < 0, -v1, v1), np.abs(v2))
        inv, recip_shift = fp.get_reciprocal(v2, 31)
        headroom = count_leading_sign_bits(v1)
        unscaled = fp.multiply_by_quantized_multiplier_greater_than_one(v1, inv, headroom)
        total_shift = p.output_shift - recip_shift - headroom
        scaled = fp.saturating_rounding_doubling_high_mul(unscaled, p.output_multiplier)
        out = rounding_divide_by_pot_wide(scaled, -total_shift) + p.output_offset
        return np.clip(out, p.output_activation_min, p.output_activation_max).astype(np.int8)

    def quantize(self, q, index, node):
        """The default int8 twin, kept only where TFLM's integer division is exact: a constant numerator whose
        every value, over every possible denominator, keeps the final shift within 31 bits."""
        from tinyopt.convert.quantize import quantize_node

        new = quantize_node(q, index, node, self)
        worst = self.widest_shift(q.g, new)
        if worst is None or worst > 31:
            why = "a numerator computed at run time" if worst is None else f"a final shift of {worst} bits"
            c.unsupported(q.src, node,
                          f"an int8 DIV with {why}: TFLM's integer division shifts by 32 or more "
                          "for numerators near their zero point (undefined in C; wrong outputs on x86)",
                          "keep the division in float, divide by a constant (it becomes a MUL), or multiply "
                          "by RSQRT / a reciprocal instead")
        return new

    def widest_shift(self, graph, node) -> int | None:
        """The largest right shift the int8 kernel takes on ``node`` (None: a non-constant numerator)."""
        num, den = graph.tensors[node.inputs[0]], graph.tensors[node.inputs[1]]
        if num.data is None:
            return None
        p = self.prepare(graph, node, True)
        v1 = np.asarray(num.data, np.int64).ravel() + p.input1_offset
        if den.data is not None:
            v2 = np.abs(np.asarray(den.data, np.int64).ravel() + p.input2_offset)
        else:
            v2 = np.abs(np.arange(-128, 128) + p.input2_offset)
        recip_shift = 31 - int(fp.count_leading_zeros32(max(int(v2.max()), 1)))
        return int(count_leading_sign_bits(v1).max()) + recip_shift - p.output_shift

    # -- doors
    def from_onnx(self, cv, node, name, a, ins):
        if node.op_type == "Reciprocal":
            return build(cv.b, name, self.name, 1.0, cv.val(ins[0]), {"activation": "NONE"})
        x, d = onnx_operands(cv, ins)
        single_use = lambda: cv.uses.get(ins[1], 0) == 1 and ins[1] not in cv.outputs  # noqa: E731
        return quotient(cv.b, name, x, d, single_use)

    def from_torch_function(self, cv, n, key, name, out_shape):
        import torch.fx

        from tinyopt.graph.torch_import import Val

        arg = cv.arg(n)
        if key == "reciprocal":
            return build(cv.b, name, self.name, 1.0, cv.val(n.args[0]), {"activation": "NONE"})
        if arg(2, "rounding_mode") is not None:
            cv.b.unsupported(f"torch.div with rounding_mode={arg(2, 'rounding_mode')!r}",
                             "divide without rounding")
        x, d = cv.val(n.args[0]), cv.val(arg(1, "other"))
        for v in (x, d):
            if not isinstance(v, (Val, int, float)):
                cv.b.unsupported(f"a division by a {type(v).__name__}",
                                 "divide by a number or a tensor of the model")
        src = n.args[1] if len(n.args) > 1 else n.kwargs.get("other")
        return quotient(cv.b, name, x, d, lambda: isinstance(src, torch.fx.Node) and len(src.users) == 1)


def quotient(b, name: str, x, d, divisor_used_once):
    """x / d for framework values or constants; see the module docstring for what each case becomes."""
    from tinyopt.graph.torch_import import Val
    from tinyopt.ops.mul import Mul
    from tinyopt.ops.rsqrt import Rsqrt
    from tinyopt.ops.sqrt import Sqrt

    if not isinstance(x, Val) and not isinstance(d, Val):
        b.unsupported("a division of two constants")
    if not isinstance(d, Val):
        with np.errstate(divide="ignore"):
            return build(b, name, Mul.name, x, np.float32(1.0) / np.asarray(d, np.float32),
                         {"activation": "NONE"})
    sqrt = next((n for n in b.g.nodes if n.outputs == [d.name] and n.op == Sqrt.name), None)
    if isinstance(x, Val) and sqrt is not None and divisor_used_once():
        sqrt.op = Rsqrt.name  # x / sqrt(v) = x * rsqrt(v), and RSQRT has an int8 kernel
        return build(b, name, Mul.name, x, d, {"activation": "NONE"})
    return build(b, name, Div.name, x, d, {"activation": "NONE"})
