"""PRELU: x for x >= 0, alpha * x below, with alpha a tensor (per channel, or any shape that broadcasts).

The int8 kernel is TFLM's ``BroadcastPrelu4DSlow``: x + input_offset is requantized by s_in / s_out when
non-negative, and the product (x + input_offset) * (alpha + alpha_offset) by s_in * s_alpha / s_out when
negative (multipliers from double arithmetic, as ``CalculatePreluParams``). alpha is an int8 tensor with
its own scale and zero point; ``convert`` quantizes it from its own range.

Doors: ONNX PRelu (slope broadcast onto NCHW, e.g. (C, 1, 1)) and PyTorch ``PReLU`` (one slope, or one per
channel on axis 1) become an alpha constant in the graph's layout, e.g. (1, 1, C) for NHWC.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyopt.errors import UnsupportedOpError
from tinyopt.ops import _common as c
from tinyopt.ops._record import CKernel, Op, OpData, QuantRule, register
from tinyopt.runtime.fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier

MAX_RANK = 4  # TFLM's float kernel walks 4-D shapes


@dataclass(kw_only=True)
class PreluData(OpData):
    input_offset: int | None = None   # -input zero point
    alpha_offset: int | None = None   # -alpha zero point
    output_offset: int | None = None  # +output zero point
    output_multiplier_1: int | None = None  # s_in / s_out (x >= 0)
    output_shift_1: int | None = None
    output_multiplier_2: int | None = None  # s_in * s_alpha / s_out (x < 0)
    output_shift_2: int | None = None


@register
class Prelu(Op):
    name = "PRELU"
    builtin = 54
    arity = (2, 2)
    param_inputs = (1,)
    ops_per_element = 2  # compare, multiply
    quant = QuantRule(constants="range")
    c = CKernel("prelu", "prelu_params")
    onnx = ("PRelu",)
    torch_modules = ("PReLU",)

    def check_dtypes(self, ins, out):
        x, a = ins[0], ins[1]
        if a is not None and x is not None and {x.dtype, a.dtype} != {out.dtype}:
            return f"mixes dtypes {sorted({x.dtype, a.dtype, out.dtype})} between input, alpha and output"
        return None

    def shape(self, graph, node, fail):
        x, a = graph.tensors[node.inputs[0]], graph.tensors[node.inputs[1]]
        try:
            return tuple(np.broadcast_shapes(x.shape, a.shape))
        except ValueError:
            fail(f"alpha of shape {list(a.shape)} does not broadcast onto the input {list(x.shape)}",
                 "give alpha one value per channel (shape [1, 1, C] for an NHWC input) or a single value")

    def prepare(self, graph, node, is_int):
        y = graph.tensors[node.outputs[0]]
        if len(y.shape) > MAX_RANK:
            c.unsupported(graph, node, f"a rank-{len(y.shape)} PRELU",
                          f"TFLM's PRELU handles up to {MAX_RANK}-D")
        if not is_int:
            return PreluData(dtype="float32")
        (si, zi), (sa, za), (so, zo) = (c.scalar_qparams(graph, node, t)
                                        for t in (node.inputs[0], node.inputs[1], node.outputs[0]))
        m1, s1 = quantize_multiplier(float(si) / float(so))
        m2, s2 = quantize_multiplier(float(si) * float(sa) / float(so))
        return PreluData(dtype="int8", input_offset=-zi, alpha_offset=-za, output_offset=zo,
                         output_multiplier_1=m1, output_shift_1=s1, output_multiplier_2=m2, output_shift_2=s2)

    def eval(self, p: PreluData, inputs):
        x, alpha = inputs[0], inputs[1]
        if p.dtype != "int8":
            x, alpha = x.astype(np.float32), alpha.astype(np.float32)
            return np.where(x >= 0, x, x * alpha).astype(np.float32)
        v = x.astype(np.int64) + p.input_offset
        pos = multiply_by_quantized_multiplier(v, p.output_multiplier_1, p.output_shift_1)
        neg = multiply_by_quantized_multiplier(v * (alpha.astype(np.int64) + p.alpha_offset),
                                               p.output_multiplier_2, p.output_shift_2)
        out = np.where(v >= 0, pos, neg) + p.output_offset
        return np.clip(out, c.INT8_MIN, c.INT8_MAX).astype(np.int8)

    def pack_c(self, graph, index, node):
        """alpha is stored over the input's trailing axes from its first non-unit one (per channel: C values),
        so the kernel reads alpha[i % alpha_size] as two nested loops."""
        from tinyopt.export.c import params as cp

        x, a, y = (graph.tensors[t] for t in (*node.inputs, node.outputs[0]))
        cp.check_int8(graph, index, node, [x, y])
        if a.data is None or a.dtype != "int8" or x.shape != y.shape:
            raise UnsupportedOpError("PRELU whose alpha is not a constant int8 tensor broadcast on its input",
                                     path=graph.source, where=cp.where(index, node),
                                     fix="give alpha as a constant (one value per channel, or one value)")
        rank = len(y.shape)
        ash = (1,) * (rank - a.data.ndim) + tuple(a.data.shape)
        first = next((k for k, d in enumerate(ash) if d != 1), rank)  # alpha varies from this axis on
        alpha = np.broadcast_to(np.asarray(a.data).reshape(ash), y.shape)[(0,) * first].reshape(-1)
        q = self.prepare(graph, node, True)
        keys = ("input_offset", "alpha_offset", "output_offset", "output_multiplier_1", "output_shift_1",
                "output_multiplier_2", "output_shift_2")
        ints = {"outer": y.size // alpha.size, "alpha_size": alpha.size,
                **{k: int(getattr(q, k)) for k in keys}}
        return cp.OpParams("prelu", ints, {"alpha": ("int8_t", alpha)}, inplace="elementwise")

    # -- doors
    def from_onnx(self, cv, node, name, a, ins):
        x = cv.val(ins[0])
        return build(cv.b, name, x, cv.const(ins[1], "slope"), onnx=True)

    def from_torch_module(self, cv, n, m, name, out_shape):
        return build(cv.b, name, cv.val(n.args[0]), cv.np(m.weight), onnx=False)


def build(b, name: str, x, slope: np.ndarray, onnx: bool):
    """PRELU of a framework value. ONNX's slope broadcasts NumPy-style onto the framework shape; PyTorch's
    has 1 or C values for axis 1. Either becomes alpha in the graph tensor's layout."""
    slope = np.asarray(slope, np.float32)
    rank = len(x.shape)
    if slope.size == 1:
        return _emit(b, name, x, slope.reshape(1))
    if not onnx:  # PyTorch: one value per channel of axis 1 (the module has checked the count)
        slope = slope.reshape((1, slope.size) + (1,) * (rank - 2))
    if slope.ndim > rank or x.layout not in ("nchw", "ncl", "plain") or (x.permuted and x.layout != "plain"):
        b.unsupported(f"PRelu slope of shape {list(slope.shape)} on a {x.layout} input {list(x.shape)}",
                      "give the slope one value per channel of an (N, C, ...) or (N, F) input")
    full = slope.reshape((1,) * (rank - slope.ndim) + slope.shape)
    if x.permuted:  # a flattened channels-first tensor: graph element i is framework element perm[i]
        full = np.broadcast_to(full, x.shape).reshape(1, -1)[:, x.perm]
    elif x.layout == "nchw":
        full = full.transpose(0, 2, 3, 1)
    elif x.layout == "ncl":
        full = full.transpose(0, 2, 1)[:, None]
    return _emit(b, name, x, full[0])  # alpha without the batch axis, as TFLite's converter writes it


def _emit(b, name: str, x, alpha: np.ndarray):
    return b.emit(name, Prelu.name, [x.name, b.const(f"{name}/alpha", alpha)], {}, x.layout, x.perm)
