"""QUANTIZE: float32 → int8/int16 (``round(x / scale) + zero_point``), or int8/int16 → int8/int16 with
other parameters (a requantization, as TFLM's ``Requantize``: the 16x8 graph's edges and its inserted
requantizations). The C library runs the integer → integer cases (a float → int8 QUANTIZE never reaches
it); element-wise, it may run in place."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyopt.ops import _common as c
from tinyopt.ops import _int16_c
from tinyopt.ops._record import CKernel, Op, OpData, Options, register
from tinyopt.runtime.fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier, round_half_away


@dataclass(kw_only=True)
class QuantizeData(OpData):
    scale: float | np.float32  # the output's affine parameters
    zero_point: int
    input_zero_point: int | None = None  # int8 → int8: requantize by input scale / output scale
    input_multiplier: int | None = None
    input_shift: int | None = None
    output_dtype: str = "int8"             # int8 or int16: the range the result is clamped to


@register
class Quantize(Op):
    name = "QUANTIZE"
    builtin = 114
    options = Options(89)
    ops_per_element = 1
    quant = None  # convert inserts it; it has no float twin to convert
    c = CKernel("quantize", "quantize_params")

    def check_dtypes(self, ins, out):
        x = ins[0]
        if (x.dtype not in ("float32", "int8", "uint8", "int16")
                or out.dtype not in ("int8", "uint8", "int16")):
            return f"quantizes {x.dtype} to {out.dtype}"
        return None

    def is_integer(self, graph, node):
        return True

    def prepare(self, graph, node, is_int):
        x, y = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
        so, zo = c.scalar_qparams(graph, node, node.outputs[0])
        wide = "int16" in (x.dtype, y.dtype)  # dtype names the kernel family: int16 on either side
        p = QuantizeData(dtype="int16" if wide else "int8", scale=so, zero_point=zo, output_dtype=y.dtype)
        if x.dtype in ("int8", "int16"):
            si, zi = c.scalar_qparams(graph, node, node.inputs[0])
            m, s = quantize_multiplier(float(si) / float(so))
            p.input_zero_point, p.input_multiplier, p.input_shift = zi, m, s
        return p

    def eval(self, p: QuantizeData, inputs):
        x = inputs[0]
        if p.input_multiplier is not None:
            out = multiply_by_quantized_multiplier(x.astype(np.int64) - p.input_zero_point,
                                                   p.input_multiplier, p.input_shift) + p.zero_point
        else:
            q = round_half_away(x.astype(np.float32) / np.float32(p.scale))
            # TFLM's AffineQuantize: static_cast<int32_t>, as host compilers emit it (x86 cvttss2si: NaN, inf
            # and values beyond int32 give INT32_MIN, so log(0) lands on a saturated end), then + zero_point
            # in wrapping int32 arithmetic, then the clamp
            bad = ~np.isfinite(q) | (q < -2.0 ** 31) | (q >= 2.0 ** 31)
            i32 = np.where(bad, -(1 << 31), np.where(bad, 0, q)).astype(np.int64) + p.zero_point
            out = ((i32 + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)
        info = np.iinfo(p.output_dtype)
        return np.clip(out, info.min, info.max).astype(p.output_dtype)

    def pack_c(self, graph, index, node):
        if _int16_c.is_int16(graph, node):  # int16 requantizations (kernels/quantize_int16.c)
            return _int16_c.pack_requantize(graph, index, node, self.prepare(graph, node, True))
        from tinyopt.errors import UnsupportedOpError
        from tinyopt.export.c import params as cp

        x, y = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
        if x.dtype != "int8":
            raise UnsupportedOpError(f"a QUANTIZE from {x.dtype}", path=graph.source,
                                     where=cp.where(index, node),
                                     fix="the C library takes int8 input: convert with int8 input and output "
                                         "(tinyopt convert's default)")
        cp.check_int8(graph, index, node, [x] if y.dtype == "uint8" else [x, y])  # uint8: a model's output
        p = self.prepare(graph, node, True)
        lo, hi = (0, 255) if y.dtype == "uint8" else (-128, 127)
        ints = dict(size=y.size, input_zero_point=p.input_zero_point, output_zero_point=p.zero_point,
                    multiplier=p.input_multiplier, shift=p.input_shift, output_min=lo, output_max=hi)
        return cp.OpParams("quantize", ints, inplace="elementwise")
