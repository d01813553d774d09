"""Integer parameters of each operator, computed once at generation time (TFLM's Prepare step).

Everything the generated C needs at inference time is an integer: per-channel multipliers and shifts,
zero-point offsets, activation bounds. The float arithmetic that produces them follows TFLM's order of
operations (float32 scales widened to double) so the integers are identical to the ones TFLM computes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from tinyopt.errors import UnsupportedOpError
from tinyopt.graph.ir import Graph, Node, Tensor

INT8_MIN, INT8_MAX = -128, 127


def quantize_multiplier(m: float) -> tuple[int, int]:
    """A real multiplier as a Q31 significand and a power-of-two exponent: ``m ≈ q * 2**(shift - 31)``.

    >>> quantize_multiplier(0.5)
    (1073741824, 0)
    >>> quantize_multiplier(0.0)
    (0, 0)
    """
    if m == 0.0:
        return 0, 0
    frac, shift = math.frexp(m)
    q = _round_half_away(frac * (1 << 31))
    if q == 1 << 31:
        q //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if shift > 30:  # TFLM clamps the same way rather than overflow
        shift, q = 30, (1 << 31) - 1
    return int(q), int(shift)


def _round_half_away(x: float) -> int:
    return int(math.floor(abs(x) + 0.5)) * (1 if x >= 0 else -1)


def _f32(x) -> float:
    """A scale as TFLite stores it (float32), widened to double the way TFLM's C++ does."""
    return float(np.float32(x))


def activation_range(act: str, scale: float, zero_point: int) -> tuple[int, int]:
    """Clamp bounds of a fused activation in the quantized domain (float32 division, round half away).

    >>> activation_range("RELU6", 0.05, -128)
    (-128, -8)
    """
    def q(v: float) -> int:
        return zero_point + _round_half_away(float(np.float32(v) / np.float32(scale)))

    if act in (None, "NONE"):
        return INT8_MIN, INT8_MAX
    if act == "RELU":
        return max(INT8_MIN, q(0.0)), INT8_MAX
    if act == "RELU6":
        return max(INT8_MIN, q(0.0)), min(INT8_MAX, q(6.0))
    if act == "RELU_N1_TO_1":
        return max(INT8_MIN, q(-1.0)), min(INT8_MAX, q(1.0))
    raise ValueError(act)


def conv_padding(size: int, kernel: int, stride: int, dilation: int, padding: str) -> tuple[int, int]:
    """(output size, leading pad) as TFLM computes them; the odd extra pixel of SAME goes after.

    >>> conv_padding(49, 10, 2, 1, "SAME")
    (25, 4)
    """
    eff = (kernel - 1) * dilation + 1
    if padding == "SAME":
        out = (size + stride - 1) // stride
    else:
        out = (size - eff + stride) // stride
    pad = max(((out - 1) * stride + eff - size) // 2, 0)
    return out, pad


@dataclass
class OpParams:
    """The prepared integers of one node; ``kind`` picks the C kernel."""

    kind: str
    ints: dict = field(default_factory=dict)
    arrays: dict = field(default_factory=dict)  # name -> (C type, np.ndarray)


def _qp(t: Tensor) -> tuple[float, int]:
    return _f32(t.quant.scale[0]), int(t.quant.zero_point[0])


def _check_int8(graph: Graph, index: int, node: Node, tensors: list[Tensor]) -> None:
    for t in tensors:
        if t.dtype != "int8" or t.quant is None:
            raise UnsupportedOpError(
                f"tensor '{t.name}' is {t.dtype}{'' if t.quant else ' without quantization'}; the C "
                "generator handles int8 quantized tensors", path=graph.source,
                where=f"node {index} '{node.name}' ({node.op})",
                fix="convert the model to int8 first (tinyopt convert) or deploy the .tflite with TFLM")


def _conv_like(graph: Graph, index: int, node: Node, depthwise: bool) -> OpParams:
    x, w = graph.tensors[node.inputs[0]], graph.tensors[node.inputs[1]]
    b = graph.tensors[node.inputs[2]] if len(node.inputs) > 2 and node.inputs[2] else None
    y = graph.tensors[node.outputs[0]]
    _check_int8(graph, index, node, [x, y, w])
    _, ih, iw, ic = x.shape
    _, oh, ow, oc = y.shape
    if depthwise:
        _, kh, kw, _ = w.shape
    else:
        _, kh, kw, _ = w.shape
    sh, sw = node.attrs.get("stride", (1, 1))
    dh, dw = node.attrs.get("dilation", (1, 1))
    pad = node.attrs.get("padding", "VALID")
    _, ph = conv_padding(ih, kh, sh, dh, pad)
    _, pw = conv_padding(iw, kw, sw, dw, pad)
    s_in, zp_in = _qp(x)
    s_out, zp_out = _qp(y)
    w_scales = np.asarray(w.quant.scale, dtype=np.float32)
    if w_scales.size == 1:
        w_scales = np.repeat(w_scales, oc)
    mult, shift = zip(*(quantize_multiplier(s_in * _f32(ws) / s_out) for ws in w_scales))
    wq = np.asarray(w.data, dtype=np.int64)
    bias = np.zeros(oc, np.int64) if b is None else np.asarray(b.data, dtype=np.int64)
    # Fold the input offset into the bias: sum w*(x + off) = sum w*x + off*sum w. Exact in integers; the
    # kernels feed the input zero point at padded taps so that those taps still contribute 0.
    wsum = wq.sum(axis=(0, 1, 2)) if depthwise else wq.reshape(oc, -1).sum(axis=1)
    bias_folded = bias + (-zp_in) * wsum
    lo, hi = activation_range(node.attrs.get("activation", "NONE"), s_out, zp_out)
    ints = dict(in_h=ih, in_w=iw, in_c=ic, out_h=oh, out_w=ow, out_c=oc, k_h=kh, k_w=kw, stride_h=sh,
                stride_w=sw, dil_h=dh, dil_w=dw, pad_h=ph, pad_w=pw, input_zp=zp_in, output_offset=zp_out,
                act_min=lo, act_max=hi)
    if depthwise:
        ints["depth_multiplier"] = oc // ic
    weights = wq.reshape(kh, kw, oc) if depthwise else wq.reshape(oc, kh, kw, ic)
    arrays = {"weights": ("int8_t", weights.astype(np.int8)),
              "bias": ("int32_t", _int32(bias_folded, graph, index, node)),
              "multiplier": ("int32_t", np.asarray(mult, np.int64)),
              "shift": ("int32_t", np.asarray(shift, np.int64))}
    return OpParams("depthwise_conv2d" if depthwise else "conv2d", ints, arrays)


def _int32(a: np.ndarray, graph: Graph, index: int, node: Node) -> np.ndarray:
    if a.min(initial=0) < -(2**31) or a.max(initial=0) > 2**31 - 1:
        raise UnsupportedOpError("the folded bias overflows int32", path=graph.source,
                                 where=f"node {index} '{node.name}' ({node.op})",
                                 fix="requantize the layer with a smaller input zero point")
    return a


def _fully_connected(graph: Graph, index: int, node: Node) -> OpParams:
    x, w = graph.tensors[node.inputs[0]], graph.tensors[node.inputs[1]]
    b = graph.tensors[node.inputs[2]] if len(node.inputs) > 2 and node.inputs[2] else None
    y = graph.tensors[node.outputs[0]]
    _check_int8(graph, index, node, [x, y, w])
    o, depth = w.shape
    s_in, zp_in = _qp(x)
    s_out, zp_out = _qp(y)
    w_scales = np.asarray(w.quant.scale, dtype=np.float32)
    if w_scales.size == 1:
        w_scales = np.repeat(w_scales, o)
    mult, shift = zip(*(quantize_multiplier(s_in * _f32(ws) / s_out) for ws in w_scales))
    wq = np.asarray(w.data, dtype=np.int64)
    bias = np.zeros(o, np.int64) if b is None else np.asarray(b.data, dtype=np.int64)
    bias_folded = bias + (-zp_in) * wq.sum(axis=1)
    lo, hi = activation_range(node.attrs.get("activation", "NONE"), s_out, zp_out)
    batches = x.size // depth
    ints = dict(batches=batches, accum_depth=depth, out_c=o, output_offset=zp_out, act_min=lo, act_max=hi)
    arrays = {"weights": ("int8_t", wq.astype(np.int8)),
              "bias": ("int32_t", _int32(bias_folded, graph, index, node)),
              "multiplier": ("int32_t", np.asarray(mult, np.int64)),
              "shift": ("int32_t", np.asarray(shift, np.int64))}
    return OpParams("fully_connected", ints, arrays)


def _pool(graph: Graph, index: int, node: Node) -> OpParams:
    x, y = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
    _check_int8(graph, index, node, [x, y])
    if _qp(x) != _qp(y):
        raise UnsupportedOpError("pooling input and output quantization differ", path=graph.source,
                                 where=f"node {index} '{node.name}' ({node.op})",
                                 fix="quantize pooling with the same scale and zero point on both sides")
    _, ih, iw, c = x.shape
    _, oh, ow, _ = y.shape
    fh, fw = node.attrs.get("filter", (1, 1))
    sh, sw = node.attrs.get("stride", (1, 1))
    pad = node.attrs.get("padding", "VALID")
    _, ph = conv_padding(ih, fh, sh, 1, pad)
    _, pw = conv_padding(iw, fw, sw, 1, pad)
    s, zp = _qp(y)
    lo, hi = activation_range(node.attrs.get("activation", "NONE"), s, zp)
    ints = dict(in_h=ih, in_w=iw, channels=c, out_h=oh, out_w=ow, f_h=fh, f_w=fw, stride_h=sh, stride_w=sw,
                pad_h=ph, pad_w=pw, act_min=lo, act_max=hi)
    return OpParams("average_pool2d" if node.op == "AVERAGE_POOL_2D" else "max_pool2d", ints)


def _add(graph: Graph, index: int, node: Node) -> OpParams:
    a, b = graph.tensors[node.inputs[0]], graph.tensors[node.inputs[1]]
    y = graph.tensors[node.outputs[0]]
    _check_int8(graph, index, node, [a, b, y])
    if a.shape != b.shape or a.shape != y.shape:
        raise UnsupportedOpError(f"broadcasting ADD {list(a.shape)} + {list(b.shape)}", path=graph.source,
                                 where=f"node {index} '{node.name}' ({node.op})",
                                 fix="give both inputs the same shape")
    (sa, za), (sb, zb), (so, zo) = _qp(a), _qp(b), _qp(y)
    left_shift = 20
    twice_max = 2.0 * max(sa, sb)
    m1, s1 = quantize_multiplier(sa / twice_max)
    m2, s2 = quantize_multiplier(sb / twice_max)
    mo, so_ = quantize_multiplier(twice_max / ((1 << left_shift) * so))
    lo, hi = activation_range(node.attrs.get("activation", "NONE"), so, zo)
    ints = dict(size=y.size, input1_offset=-za, input2_offset=-zb, output_offset=zo, left_shift=left_shift,
                input1_multiplier=m1, input1_shift=s1, input2_multiplier=m2, input2_shift=s2,
                output_multiplier=mo, output_shift=so_, act_min=lo, act_max=hi)
    return OpParams("add", ints)


def _softmax(graph: Graph, index: int, node: Node) -> OpParams:
    x, y = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
    _check_int8(graph, index, node, [x, y])
    s_out, zp_out = _qp(y)
    if zp_out != -128 or abs(s_out - 1.0 / 256) > 1e-9:
        raise UnsupportedOpError("int8 SOFTMAX output must have scale 1/256 and zero point -128",
                                 path=graph.source, where=f"node {index} '{node.name}' ({node.op})",
                                 fix="quantize the softmax output with scale 1/256, zero point -128")
    beta = float(node.attrs.get("beta", 1.0))
    s_in, _ = _qp(x)
    integer_bits = 5
    real = min(beta * s_in * (1 << (31 - integer_bits)), (1 << 31) - 1.0)
    mult, left_shift = quantize_multiplier(real)
    max_rescaled = 1.0 * ((1 << integer_bits) - 1) * (1 << (31 - integer_bits)) / (1 << left_shift)
    diff_min = -math.floor(max_rescaled)
    depth = x.shape[-1]
    ints = dict(rows=x.size // depth, depth=depth, input_multiplier=mult, input_left_shift=left_shift,
                diff_min=diff_min)
    return OpParams("softmax", ints)


PREPARE = {
    "CONV_2D": lambda g, i, n: _conv_like(g, i, n, depthwise=False),
    "DEPTHWISE_CONV_2D": lambda g, i, n: _conv_like(g, i, n, depthwise=True),
    "FULLY_CONNECTED": _fully_connected,
    "AVERAGE_POOL_2D": _pool,
    "MAX_POOL_2D": _pool,
    "ADD": _add,
    "SOFTMAX": _softmax,
    "RESHAPE": lambda g, i, n: OpParams("reshape", {"size": g.tensors[n.outputs[0]].size}),
}


def prepare(graph: Graph, index: int, node: Node) -> OpParams:
    """The kernel choice and integer parameters of ``node``; unsupported operators are named with index."""
    if node.op not in PREPARE:
        raise UnsupportedOpError(f"operator {node.op} has no C kernel", path=graph.source,
                                 where=f"node {index} '{node.name}'",
                                 fix=f"the C generator supports {', '.join(sorted(PREPARE))}; replace the "
                                     "operator or deploy the .tflite with TFLM")
    return PREPARE[node.op](graph, index, node)
