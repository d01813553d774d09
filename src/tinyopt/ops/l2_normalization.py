"""L2_NORMALIZATION: each vector along the last axis divided by its L2 norm (rank <= 4 in TFLM).

Float32 as TFLM's reference: a float32 running sum of squares, its square root floored at 1e-6, one
division per element. Int8 as TFLM's ``reference_integer_ops::L2Normalization``: the int32 sum of the
squared offset inputs, its inverse square root by ``GetInvSqrtQuantizedMultiplierExp``, each offset
input multiplied by it with 7 more bits: the output is fixed at scale 1/128, zero point 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyopt.ops import _common as c
from tinyopt.ops._gemmlowp import inv_sqrt_multiplier_exp
from tinyopt.ops._last_axis import over_last_axis
from tinyopt.ops._record import Op, OpData, Options, QuantRule, activation, register
from tinyopt.runtime.fixedpoint import multiply_by_quantized_multiplier

EPSILON = np.float32(1e-6)  # TFLM's hard-coded floor of the norm
OUTPUT_SCALE = 7  # the int8 output is in 1/2^7 steps


@dataclass(kw_only=True)
class L2NormData(OpData):
    input_zero_point: int = 0


@register
class L2Normalization(Op):
    name = "L2_NORMALIZATION"
    builtin = 11
    options = Options(12, (activation("activation", 0),))
    ops_per_element = 3
    int8_version = 2
    quant = QuantRule(output=(1.0 / 128, 0))
    onnx = ("LpNormalization",)
    torch_functions = ("normalize",)

    def prepare(self, graph, node, is_int):
        x = graph.tensors[node.inputs[0]]
        if len(x.shape) > 4:
            c.unsupported(graph, node, f"a rank-{len(x.shape)} input",
                          "TFLM normalizes tensors of rank 4 or less")
        if (node.attrs.get("activation") or "NONE") != "NONE":
            c.unsupported(graph, node, f"fused activation {node.attrs['activation']}",
                          "TFLM's L2_NORMALIZATION takes no fused activation: apply it as its own operator")
        if not is_int:
            return L2NormData(dtype="float32")
        _, zi = c.scalar_qparams(graph, node, node.inputs[0])
        so, zo = c.scalar_qparams(graph, node, node.outputs[0])
        if (so, zo) != (np.float32(1.0 / 128), 0):
            c.fail(graph, node,
                   f"int8 L2_NORMALIZATION writes scale 1/128, zero point 0; the output says {so}, {zo}",
                   "quantize the output with scale 0.0078125 and zero point 0")
        return L2NormData(dtype="int8", input_zero_point=zi)

    def eval(self, p: L2NormData, inputs):
        x = inputs[0]
        if p.dtype != "int8":
            xf = x.astype(np.float32)
            squares = np.cumsum(xf * xf, axis=-1, dtype=np.float32)[..., -1:]  # the running float32 sum
            norm = np.maximum(np.sqrt(squares), EPSILON)
            return (xf / norm).astype(np.float32)
        d = x.astype(np.int64) - p.input_zero_point
        acc = np.sum(d * d, axis=-1, keepdims=True)
        inv, shift = inv_sqrt_multiplier_exp(acc, -1)
        out = multiply_by_quantized_multiplier(d, inv, shift + OUTPUT_SCALE)
        return np.clip(out, -128, 127).astype(np.int8)

    # -- doors
    def from_onnx(self, cv, node, name, a, ins):
        if a.get("p", 2) != 2:
            cv.b.unsupported(f"LpNormalization with p={a.get('p')}", "use p=2 (TFLite's L2_NORMALIZATION)")
        return over_last_axis(cv.b, name, cv.val(ins[0]), a.get("axis", -1), self.name,
                              {"activation": "NONE"})

    def from_torch_function(self, cv, n, key, name, out_shape):
        arg = cv.arg(n)
        if arg(1, "p", 2.0) != 2:
            cv.b.unsupported(f"F.normalize with p={arg(1, 'p', 2.0)}", "use p=2 (TFLite's L2_NORMALIZATION)")
        return over_last_axis(cv.b, name, cv.val(n.args[0]), arg(2, "dim", 1), self.name,
                              {"activation": "NONE"})
