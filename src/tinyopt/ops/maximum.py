"""MAXIMUM: element-wise maximum with broadcasting (TFLM's ``MaximumMinimumBroadcastSlow``, up to 5-D).

TFLM compares the raw int8 values, so an int8 node must give both inputs and the output one scale and
zero point; ``convert`` requantizes the inputs to the output's (as the TFLite converter's same-scale
rule does). Clipping an input at the output's range first changes nothing: max is monotone.
"""

from __future__ import annotations

import numpy as np

from tinyopt.ops._broadcast import (
    BroadcastData,
    Broadcasting,
    aligned,
    build,
    check_qparams_equal,
    onnx_operands,
    pack_broadcast,
)
from tinyopt.ops._record import CKernel, Options, QuantRule, register


class MaximumMinimum(Broadcasting):
    """Base of MAXIMUM and MINIMUM (``MaximumMinimumOptions``, no fields)."""

    options = Options(39)
    quant = QuantRule(inputs_as_output=True, constants="output")
    c = CKernel("maximum_minimum", "maximum_minimum_params")
    is_max = True

    def prepare(self, graph, node, is_int):
        if is_int:
            check_qparams_equal(graph, node)
        return BroadcastData(dtype="int8" if is_int else "float32", **self.broadcast_fields(graph, node))

    def eval(self, p: BroadcastData, inputs):
        a, b = aligned(p, inputs)
        pick = a > b if self.is_max else a < b  # TFLM: el1 > el2 ? el1 : el2 (NaN: the second operand)
        return np.where(pick, a, b).astype(a.dtype)

    def pack_c(self, graph, index, node):
        return pack_broadcast(self, graph, index, node, {"is_max": int(self.is_max)}, "maximum_minimum")

    # -- doors
    def from_onnx(self, cv, node, name, a, ins):
        vals = onnx_operands(cv, ins)
        if not any(not isinstance(v, np.ndarray) for v in vals):
            cv.b.unsupported(f"{node.op_type} of constants only")
        out = vals[0]
        for k, v in enumerate(vals[1:]):
            out = build(cv.b, name if k == len(vals) - 2 else f"{name}_{k}", self.name, out, v)
        return out

    def from_torch_function(self, cv, n, key, name, out_shape):
        from tinyopt.graph.torch_import import Val

        a, other = cv.val(n.args[0]), cv.val(cv.arg(n)(1, "other"))
        if not isinstance(other, Val) and not isinstance(other, (int, float)):
            cv.b.unsupported(f"torch.{key} with a {type(other).__name__} operand")
        return build(cv.b, name, self.name, a, other)


@register
class Maximum(MaximumMinimum):
    name = "MAXIMUM"
    builtin = 55
    onnx = ("Max",)
    torch_functions = ("maximum",)
