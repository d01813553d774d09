"""What several operator records share: window geometry, quantization parameters, fused activations,
and the numpy helpers of windowed and requantizing kernels. Nothing here names an operator."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NoReturn

import numpy as np

from tinyopt.errors import ModelFormatError, UnsupportedOpError
from tinyopt.graph.ir import Graph, Node
from tinyopt.ops._record import OpData
from tinyopt.runtime.fixedpoint import multiply_by_quantized_multiplier, round_half_away

INT8_MIN, INT8_MAX = -128, 127
INT16_MIN, INT16_MAX = -32768, 32767
ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1", "TANH")  # TFLite's fused activations
INTEGER_ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")  # what TFLM's integer kernels clamp to


def where(graph: Graph, node: Node) -> str:
    index = next((i for i, n in enumerate(graph.nodes) if n is node), "?")
    return f"node {index} '{node.name}' ({node.op})"


def fail(graph: Graph, node: Node, msg: str, fix: str, cls=ModelFormatError) -> NoReturn:
    raise cls(msg, path=graph.source, where=where(graph, node), fix=fix)


def unsupported(graph: Graph, node: Node, msg: str, fix: str) -> NoReturn:
    fail(graph, node, msg, fix, UnsupportedOpError)


def out_tensor(graph: Graph, node: Node):
    return graph.tensors[node.outputs[0]]


def in_tensor(graph: Graph, node: Node, k: int = 0):
    name = node.inputs[k] if k < len(node.inputs) else ""
    return graph.tensors[name] if name else None


# -- formatting and shape-only edits (analysis) ---------------------------------------------------

def n(x) -> str:
    """An integer with thousands separators."""
    return f"{int(x):,}"


def dims(shape) -> str:
    return "×".join(n(d) for d in shape)


def resize(t, shape) -> None:
    """Give a parameter tensor a new shape and drop its values (what-if analyses count shapes only);
    per-channel quantization follows the new channel count."""
    from tinyopt.graph.ir import QuantParams

    t.shape = tuple(int(d) for d in shape)
    t.data = None
    q = t.quant
    if q is not None and q.per_channel:
        ch = t.shape[q.axis or 0]
        t.quant = QuantParams(np.ones(ch, np.float32), np.zeros(ch, np.int64), q.axis)


# -- geometry -----------------------------------------------------------------------------------------

def conv_output_size(size: int, kernel: int, stride: int, dilation: int, padding: str) -> int:
    """TFLite's rule: SAME → ceil(size / stride); VALID → ceil((size - effective_kernel + 1) / stride)."""
    eff = (kernel - 1) * dilation + 1
    if padding == "SAME":
        return math.ceil(size / stride)
    return math.ceil((size - eff + 1) / stride)


def same_padding(size: int, kernel: int, stride: int, dilation: int, out: int) -> tuple[int, int]:
    """(before, after) padding for SAME, as TFLite computes it (the extra pixel goes after)."""
    eff = (kernel - 1) * dilation + 1
    total = max((out - 1) * stride + eff - size, 0)
    return total // 2, total - total // 2


def window_output_hw(x_shape, kh: int, kw: int, attrs: dict, fail_) -> tuple[int, int]:
    """Output (H, W) of a windowed op (conv, depthwise, pooling) on an NHWC input, checked."""
    if len(x_shape) != 4:
        fail_(f"expects a 4-D NHWC input, got shape {list(x_shape)}",
              "add a reshape to [1, H, W, C] before this layer")
    sh, sw = attrs.get("stride", (1, 1))
    dh, dw = attrs.get("dilation", (1, 1))
    pad = attrs.get("padding", "VALID")
    if min(sh, sw, dh, dw, kh, kw) <= 0:
        fail_(f"kernel {kh}x{kw}, stride {sh}x{sw} and dilation {dh}x{dw} must be positive",
              "use sizes of at least 1")
    _, h, w, _ = x_shape
    if pad == "VALID" and ((kh - 1) * dh + 1 > h or (kw - 1) * dw + 1 > w):
        fail_(f"kernel {kh}x{kw} is larger than its {h}x{w} input",
              "use a smaller kernel, padding 'same', or fewer pooling layers before it")
    return conv_output_size(h, kh, sh, dh, pad), conv_output_size(w, kw, sw, dw, pad)


@dataclass(kw_only=True)
class Geometry:
    """A window's walk over the input, as TFLM's ``ComputePaddingHeightWidth`` gives it."""

    stride_h: int
    stride_w: int
    dilation_h: int
    dilation_w: int
    filter_h: int
    filter_w: int
    padding_h: int          # padding before the first row/column (TFLM padding_values)
    padding_w: int
    padding_h_offset: int   # the extra padding row/column after (SAME with an odd total)
    padding_w_offset: int
    out_h: int
    out_w: int
    padding: str            # "SAME" or "VALID", as in the node


def geometry(graph: Graph, node: Node, x_shape, kh: int, kw: int) -> dict:
    """The Geometry fields of a windowed node (checked)."""
    a = node.attrs
    sh, sw = (int(v) for v in a.get("stride", (1, 1)))
    dh, dw = (int(v) for v in a.get("dilation", (1, 1)))
    pad = a.get("padding", "VALID")
    if pad not in ("SAME", "VALID"):
        fail(graph, node, f"padding '{pad}' is not SAME or VALID", "re-export with SAME or VALID padding")
    if min(sh, sw, dh, dw, kh, kw) <= 0:
        fail(graph, node, f"stride {sh}x{sw}, dilation {dh}x{dw}, kernel {kh}x{kw} must be positive",
             "use sizes of at least 1")
    _, h, w, _ = x_shape
    out_h = conv_output_size(h, kh, sh, dh, pad)
    out_w = conv_output_size(w, kw, sw, dw, pad)
    if out_h <= 0 or out_w <= 0:
        fail(graph, node, f"kernel {kh}x{kw} does not fit the {h}x{w} input", "use SAME padding")

    def before(stride, dil, size, k, out):
        total = max((out - 1) * stride + (k - 1) * dil + 1 - size, 0)
        return total // 2, total % 2

    ph, ph_off = before(sh, dh, h, kh, out_h)
    pw, pw_off = before(sw, dw, w, kw, out_w)
    return dict(stride_h=sh, stride_w=sw, dilation_h=dh, dilation_w=dw, filter_h=kh, filter_w=kw,
                padding_h=ph, padding_w=pw, padding_h_offset=ph_off, padding_w_offset=pw_off, out_h=out_h,
                out_w=out_w, padding=pad)


# -- quantization parameters --------------------------------------------------------------------------

def tensor_qparams(graph: Graph, node: Node, name: str, per_channel: bool = False):
    """(scale float32 array, zero_point int64 array) of an int8/int32 tensor, checked."""
    t = graph.tensors[name]
    q = t.quant
    if q is None or q.scale.size == 0:
        fail(graph, node, f"{t.dtype} tensor '{name}' has no quantization parameters",
             "quantize the model with scale and zero point on every integer tensor")
    scale = q.scale.astype(np.float32)
    if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
        fail(graph, node, f"tensor '{name}' has an invalid scale {scale[:4].tolist()}",
             "every scale must be a positive finite number; re-quantize the model")
    if not per_channel and scale.size != 1:
        unsupported(graph, node,
                    f"tensor '{name}' has {scale.size} scales; this operator needs one per tensor",
                    "quantize activations per tensor")
    return scale, q.zero_point.astype(np.int64)


def scalar_qparams(graph: Graph, node: Node, name: str) -> tuple[np.float32, int]:
    s, z = tensor_qparams(graph, node, name)
    return np.float32(s[0]), int(z[0])


def activation_range_quantized(activation: str, scale: np.float32, zero_point: int,
                               qmin: int = INT8_MIN, qmax: int = INT8_MAX) -> tuple[int, int]:
    """``CalculateActivationRangeQuantized``: quantize 0/6/±1 with float32 division, within the output
    dtype's [qmin, qmax] (int8 by default; int16 for the 16x8 kernels)."""
    def q(f):
        return zero_point + int(round_half_away(np.float32(f) / np.float32(scale)))

    if activation in (None, "NONE"):
        return qmin, qmax
    if activation == "RELU":
        return max(qmin, q(0.0)), qmax
    if activation == "RELU6":
        return max(qmin, q(0.0)), min(qmax, q(6.0))
    if activation == "RELU_N1_TO_1":
        return max(qmin, q(-1.0)), min(qmax, q(1.0))
    raise ValueError(activation)


def activation_range_float(activation: str) -> tuple[float, float]:
    return {None: (-np.inf, np.inf), "NONE": (-np.inf, np.inf), "RELU": (0.0, np.inf), "RELU6": (0.0, 6.0),
            "RELU_N1_TO_1": (-1.0, 1.0)}[activation]


@dataclass(kw_only=True)
class ActivationRange:
    """The clamp of the fused activation, in the output's integer domain (float32 bounds for float nodes)."""

    output_activation_min: float
    output_activation_max: float
    activation: str


def output_range(graph: Graph, node: Node, is_int: bool) -> dict:
    """ActivationRange fields of a node with a fused activation (checked)."""
    act = node.attrs.get("activation", "NONE") or "NONE"
    if act not in INTEGER_ACTIVATIONS:
        unsupported(graph, node, f"fused activation {act} is not supported by the integer kernels",
                    "use NONE, RELU, RELU6 or RELU_N1_TO_1")
    lo: float  # int on the integer path, ±inf possible on the float one
    hi: float
    if is_int:
        s, z = scalar_qparams(graph, node, node.outputs[0])
        wide = graph.tensors[node.outputs[0]].dtype == "int16"  # the 16x8 kernels clamp to int16
        lo, hi = activation_range_quantized(act, s, z,
                                            *((INT16_MIN, INT16_MAX) if wide else (INT8_MIN, INT8_MAX)))
    else:
        lo, hi = activation_range_float(act)
    return dict(output_activation_min=lo, output_activation_max=hi, activation=act)


# -- numpy kernel helpers -----------------------------------------------------------------------------

def requantize(acc, p) -> np.ndarray:
    """acc (int64) -> int8: per-channel multiply, add the output zero point, clamp to the activation."""
    out = multiply_by_quantized_multiplier(acc, p.output_multiplier, p.output_shift) + p.output_offset
    return np.clip(out, p.output_activation_min, p.output_activation_max).astype(np.int8)


def clamp_float(x, p) -> np.ndarray:
    lo, hi = p.output_activation_min, p.output_activation_max
    if np.isfinite(lo) or np.isfinite(hi):
        x = np.clip(x, lo, hi)
    return x.astype(np.float32)


def pad_spatial(x: np.ndarray, p: Geometry, value) -> np.ndarray:
    """Pad NHWC so that every window of the output grid lies inside (before = padding_h/_w)."""
    _, h, w, _ = x.shape
    need_h = (p.out_h - 1) * p.stride_h + (p.filter_h - 1) * p.dilation_h + 1
    need_w = (p.out_w - 1) * p.stride_w + (p.filter_w - 1) * p.dilation_w + 1
    ph, pw = p.padding_h, p.padding_w
    after_h, after_w = max(need_h - h - ph, 0), max(need_w - w - pw, 0)
    if ph == pw == after_h == after_w == 0:
        return x
    return np.pad(x, ((0, 0), (ph, after_h), (pw, after_w), (0, 0)), constant_values=value)


def window(xp: np.ndarray, p: Geometry, i: int, j: int) -> np.ndarray:
    """The input pixels that kernel tap (i, j) sees for every output position: (N, OH, OW, C)."""
    r0, c0 = i * p.dilation_h, j * p.dilation_w
    return xp[:, r0: r0 + (p.out_h - 1) * p.stride_h + 1: p.stride_h,
              c0: c0 + (p.out_w - 1) * p.stride_w + 1: p.stride_w, :]


def const_ints(graph: Graph, node: Node, k: int, what: str) -> list[int]:
    """A constant integer operand (axes, paddings, shape) as a flat list, or a clear failure."""
    t = in_tensor(graph, node, k)
    if t is None or t.data is None:
        fail(graph, node, f"has no constant {what}", f"give the {what} as a constant tensor")
    return [int(v) for v in np.asarray(t.data).ravel()]


__all__ = ["ACTIVATIONS", "ActivationRange", "Geometry", "INT16_MAX", "INT16_MIN", "INT8_MAX", "INT8_MIN",
           "OpData", "activation_range_float", "activation_range_quantized", "clamp_float",
           "conv_output_size", "geometry", "output_range", "pad_spatial", "requantize", "same_padding",
           "scalar_qparams", "tensor_qparams", "window", "window_output_hw"]
