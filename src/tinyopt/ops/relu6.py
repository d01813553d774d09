"""RELU6: clamp to [0, 6]; TFLM's int8 kernel clamps in the input's integer domain (the output shares the
input's scale and zero point)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyopt.graph.ir import Node
from tinyopt.ops import _common as c
from tinyopt.ops import _int16_c
from tinyopt.ops._record import CKernel, Op, OpData, QuantRule, register
from tinyopt.ops._sigmoid_like import unary
from tinyopt.ops.relu import Relu
from tinyopt.runtime.fixedpoint import round_half_away


@dataclass(kw_only=True)
class Relu6Data(OpData):
    zero: int | None = None  # the clamp bounds in the input's integer domain
    six: int | None = None


@register
class Relu6(Op):
    name = "RELU6"
    builtin = 21
    fusable_as = "RELU6"
    ops_per_element = 1
    int8_version = 2
    c = CKernel("lut", "lut_params")
    quant = QuantRule(output="input", int16=True)
    onnx = ("Clip",)
    torch_modules = ("ReLU6", "Hardtanh")
    torch_functions = ("relu6", "hardtanh")
    spec_layers = {"relu6": frozenset()}

    def prepare(self, graph, node, is_int):
        if not is_int:
            return Relu6Data(dtype="float32")
        si, zi = c.scalar_qparams(graph, node, node.inputs[0])
        six = zi + int(round_half_away(np.float32(6.0) / si))
        if graph.tensors[node.inputs[0]].dtype == "int16":  # the same clamp, in the int16 range
            return Relu6Data(dtype="int16", zero=zi, six=int(min(max(six, c.INT16_MIN), c.INT16_MAX)))
        return Relu6Data(dtype="int8", zero=zi, six=int(min(max(six, c.INT8_MIN), c.INT8_MAX)))

    def pack_c(self, graph, index, node):
        if _int16_c.is_int16(graph, node):  # the int16 requantization kernel: identity (2^30, 1), clamped
            p = self.prepare(graph, node, True)
            return _int16_c.pack_clamp(graph, index, node, 1 << 30, 1, (p.zero, p.zero), p.zero, p.six)
        from tinyopt.export.c.params import lut

        return lut(self, graph, index, node)

    def eval(self, p: Relu6Data, inputs):
        x = inputs[0]
        if p.dtype == "float32":
            return np.clip(x.astype(np.float32), 0.0, 6.0).astype(np.float32)
        return np.clip(x, p.zero, p.six).astype(p.dtype)

    # -- doors: ReLU6, Hardtanh(0, 6) and ONNX Clip(0, 6) / Clip(0, inf)
    def from_onnx(self, cv, node, name, a, ins):
        x = cv.val(ins[0])
        lo = a.get("min") if cv.opset < 11 else (cv.const(ins[1], "min") if len(ins) > 1 and ins[1] else None)
        hi = a.get("max") if cv.opset < 11 else (cv.const(ins[2], "max") if len(ins) > 2 and ins[2] else None)
        lo = None if lo is None else float(np.asarray(lo).ravel()[0])
        hi = (None if hi is None
              or float(np.asarray(hi).ravel()[0]) >= 3.4e38 else float(np.asarray(hi).ravel()[0]))
        if lo == 0.0 and hi == 6.0:
            return unary(cv.b, name, x, self.name)
        if lo == 0.0 and hi is None:
            return unary(cv.b, name, x, Relu.name)
        cv.b.unsupported(f"Clip({lo}, {hi}) (only (0, 6) → RELU6 and (0, inf) → RELU exist)")

    def _hardtanh(self, b, name, x, lo, hi):
        if (float(lo), float(hi)) != (0.0, 6.0):
            b.unsupported(f"hardtanh({lo}, {hi}) (only (0, 6), i.e. ReLU6, has a TFLite op)")
        return unary(b, name, x, self.name)

    def from_torch_module(self, cv, n, m, name, out_shape):
        x = cv.val(n.args[0])
        if type(m).__name__ == "Hardtanh":
            return self._hardtanh(cv.b, name, x, m.min_val, m.max_val)
        return unary(cv.b, name, x, self.name)

    def from_torch_function(self, cv, n, key, name, out_shape):
        x = cv.val(n.args[0])
        if key == "hardtanh":
            arg = cv.arg(n)
            return self._hardtanh(cv.b, name, x, arg(1, "min_val", -1.0), arg(2, "max_val", 1.0))
        return unary(cv.b, name, x, self.name)

    def from_spec(self, sb, kind, layer, x, lname, fused):
        return Node(lname, self.name, [x.name], [sb.out(lname)], {})
