"""RSQRT: 1 / sqrt(x) element-wise. Float32 as TFLM (``1.f / std::sqrt(f)``); int8 as TFLM's
``RsqrtEvalQuantized``: the integer inverse square root of (x - input zero point) by
``GetInvSqrtQuantizedMultiplierExp``, applied to 1 with 20 bits of headroom, then rescaled by
1 / (sqrt(input scale) * output scale). A zero difference gives 127; a negative one is an error in TFLM,
and here too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tinyopt.errors import DataError
from tinyopt.ops import _common as c
from tinyopt.ops._gemmlowp import inv_sqrt_multiplier_exp
from tinyopt.ops._record import CKernel, OpData, QuantRule, register
from tinyopt.ops._unary import Unary
from tinyopt.runtime.fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier

SHIFT = 20  # kShift: keeps 1 * inverse square root an integer


@dataclass(kw_only=True)
class RsqrtData(OpData):
    input_offset: int = 0             # TFLM's names: the input and output zero points
    output_offset: int = 0
    multiplier: int = 0               # 1 / (sqrt(input scale) * output scale), in double
    shift: int = 0


def rsqrt_multiplier(input_scale: np.float32, output_scale: np.float32) -> tuple[int, int]:
    """``SetRsqrtOutputMultiplier``: the square root, the product and 1/x all in double, as the installed TFLM
    computes them (float32 for the first two flips a rounding tie now and then).

    >>> rsqrt_multiplier(np.float32(0.25), np.float32(0.5))  # 1 / (0.5 * 0.5) = 4 = 0.5 * 2^3
    (1073741824, 3)
    """
    return quantize_multiplier(1.0 / (math.sqrt(float(input_scale)) * float(output_scale)))


@register
class Rsqrt(Unary):
    name = "RSQRT"
    builtin = 76
    int8_version = 2
    quant = QuantRule()
    c = CKernel("lut", "lut_params")
    torch_functions = ("rsqrt",)

    @staticmethod
    def float_fn(x):
        return np.float32(1.0) / np.sqrt(x)

    def prepare(self, graph, node, is_int):
        if not is_int:
            return RsqrtData(dtype="float32")
        si, zi = c.scalar_qparams(graph, node, node.inputs[0])
        so, zo = c.scalar_qparams(graph, node, node.outputs[0])
        m, s = rsqrt_multiplier(si, so)
        return RsqrtData(dtype="int8", input_offset=zi, output_offset=zo, multiplier=m, shift=s)

    def eval(self, p: RsqrtData, inputs):
        if p.dtype != "int8":
            return super().eval(p, inputs)
        value = inputs[0].astype(np.int64) - p.input_offset
        if np.any(value < 0):
            raise DataError("RSQRT input below its zero point (a negative number): TFLM stops there too",
                            fix="feed RSQRT non-negative values (e.g. a variance plus epsilon)")
        inv, inv_shift = inv_sqrt_multiplier_exp(value, -1)
        data = multiply_by_quantized_multiplier(np.ones_like(value), inv, inv_shift + SHIFT)
        out = multiply_by_quantized_multiplier(data, p.multiplier, p.shift - SHIFT) + p.output_offset
        return np.where(value == 0, 127, np.clip(out, -128, 127)).astype(np.int8)

    def pack_c(self, graph, index, node):
        """The 256-entry table of the int8 kernel (kernels/lut.c). Inputs below the zero point, where TFLM
        stops with an error, read the zero input's entry (127): the table needs a value there."""
        from tinyopt.export.c import params as cp

        x, y = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
        cp.check_int8(graph, index, node, [x, y])
        p = self.prepare(graph, node, True)
        values = np.maximum(np.arange(-128, 128), p.input_offset).astype(np.int8).reshape(256, 1)
        table = np.asarray(self.eval(p, [values]), np.int8).reshape(256)
        return cp.OpParams("lut", {"size": y.size}, {"table": ("int8_t", table)}, inplace="elementwise",
                           struct="lut_params", entry="lut", files=("lut",))

