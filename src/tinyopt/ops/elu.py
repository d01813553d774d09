"""ELU: x for x >= 0, exp(x) - 1 below (TFLite's ELU has no alpha: alpha is 1).

TFLM's int8 kernel is a 256-entry lookup table built in Prepare with float32 arithmetic: each int8 value
is dequantized, transformed (``expf(x) - 1`` below zero), divided by the output scale (a multiplication by
its float32 inverse), rounded half away from zero and offset by the output zero point. The table is built
here the same way, once; evaluation and the C library (the shared table kernel) only index it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyopt.graph.ir import Node
from tinyopt.ops import _common as c
from tinyopt.ops._record import CKernel, Op, OpData, register
from tinyopt.ops._sigmoid_like import unary
from tinyopt.runtime.fixedpoint import round_half_away


@dataclass(kw_only=True)
class EluData(OpData):
    table: np.ndarray | None = None  # int8[256], indexed by the input byte (uint8 of the int8 value)


def expf(x: np.ndarray) -> np.ndarray:
    """float32 exp, correctly rounded (exp in float64, then rounded once), as libm's expf gives it."""
    return np.exp(np.asarray(x, np.float32).astype(np.float64)).astype(np.float32)


def elu_table(si: np.float32, zi: int, so: np.float32, zo: int) -> np.ndarray | None:
    """TFLM's ``PopulateLookupTable`` for ELU; None when a value overflows int32 before the clamp (an output
    scale ~2^24 times finer than the input's, where the reference's float to int conversion is undefined)."""
    vals = np.arange(-128, 128)
    inverse_scale = np.float32(1) / so
    dequantized = si * (vals - zi).astype(np.float32)
    with np.errstate(over="ignore"):
        below = expf(dequantized) - np.float32(1)
        transformed = np.where(dequantized < 0, below, dequantized).astype(np.float32)
        rescaled = np.float32(round_half_away(transformed * inverse_scale))
        total = (rescaled + np.float32(zo)).astype(np.float32)
    if not np.all(np.abs(total) < 2.0**31):
        return None
    q = np.clip(total.astype(np.int64), c.INT8_MIN, c.INT8_MAX)
    table = np.empty(256, np.int8)
    table[vals.astype(np.uint8)] = q  # TFLM indexes the table by the input's byte
    return table


@register
class Elu(Op):
    name = "ELU"
    builtin = 111
    ops_per_element = 2  # exp, subtract (the reference's count; int8 is one table read)
    c = CKernel("lut", "lut_params")  # the table, as TFLM evaluates it
    onnx = ("Elu",)
    torch_modules = ("ELU",)
    torch_functions = ("elu",)
    spec_layers = {"elu": frozenset()}
    spec_activation = "elu"

    def prepare(self, graph, node, is_int):
        if not is_int:
            return EluData(dtype="float32")
        si, zi = c.scalar_qparams(graph, node, node.inputs[0])
        so, zo = c.scalar_qparams(graph, node, node.outputs[0])
        table = elu_table(si, zi, so, zo)
        if table is None:
            c.unsupported(graph, node, f"output scale {so} is too fine for input scale {si}: the lookup "
                          "table overflows int32",
                          "calibrate the output range again (ELU keeps roughly the input's range)")
        return EluData(dtype="int8", table=table)

    def eval(self, p: EluData, inputs):
        x = inputs[0]
        if p.dtype != "int8":
            x = x.astype(np.float32)
            return np.where(x < 0, np.expm1(x), x).astype(np.float32)
        assert p.table is not None  # prepare builds the table for int8
        return p.table[x.astype(np.uint8)]

    def pack_c(self, graph, index, node):
        from tinyopt.export.c.params import lut

        return lut(self, graph, index, node)

    # -- doors
    def _build(self, b, name, x, alpha):
        if float(alpha) != 1.0:
            b.unsupported(f"ELU with alpha {alpha} (TFLite's ELU has alpha 1)",
                          "train with alpha=1 (nn.ELU's default), or use another activation")
        return unary(b, name, x, self.name)

    def from_onnx(self, cv, node, name, a, ins):
        return self._build(cv.b, name, cv.val(ins[0]), a.get("alpha", 1.0))

    def from_torch_module(self, cv, n, m, name, out_shape):
        return self._build(cv.b, name, cv.val(n.args[0]), m.alpha)

    def from_torch_function(self, cv, n, key, name, out_shape):
        return self._build(cv.b, name, cv.val(n.args[0]), cv.arg(n)(1, "alpha", 1.0))

    def from_spec(self, sb, kind, layer, x, lname, fused):
        return Node(lname, self.name, [x.name], [sb.out(lname)], {})
