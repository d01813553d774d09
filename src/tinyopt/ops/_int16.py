"""What the 16x8 kernels share (int16 activations, int8 weights, TFLite's "16x8" quantization): TFLM's
64-bit requantization, the checks its Prepare makes on int16 tensors, and the int16 clamp.

TFLM's 16x8 conv, depthwise and dense kernels accumulate in int64 when the bias is int64 and requantize
with ``MultiplyByQuantizedMultiplier(int64_t x, ...)``: the 31-bit multiplier rounded to 15 bits, then
one rounding shift. With an int32 bias (CONV_2D and FULLY_CONNECTED accept one) the accumulator is int32
and the requantization the int8 kernels' double-rounding one. Nothing here names an operator.
"""

from __future__ import annotations

import numpy as np

from tinyopt.errors import UnsupportedOpError
from tinyopt.graph.ir import Graph, Node
from tinyopt.ops import _common as c
from tinyopt.runtime.fixedpoint import _wrap32, multiply_by_quantized_multiplier

INT16_MIN, INT16_MAX = c.INT16_MIN, c.INT16_MAX


def reduced_multiplier(multiplier) -> np.ndarray:
    """The 31-bit multiplier rounded to 15 bits, as the int64 ``MultiplyByQuantizedMultiplier`` does
    (saturating at 0x7FFF: a rounding up to 2^15 would not fit).

    >>> reduced_multiplier(np.array([1 << 30, 0x7FFF0000, (1 << 31) - 1])).tolist()
    [16384, 32767, 32767]
    """
    m = np.asarray(multiplier, np.int64)
    return np.where(m < 0x7FFF0000, (m + (1 << 15)) >> 16, 0x7FFF)


def multiply_by_quantized_multiplier_64(x, multiplier, shift) -> np.ndarray:
    """TFLM's ``MultiplyByQuantizedMultiplier(int64_t x, int32 multiplier, int shift)``: one rounding of
    ``x * reduced / 2^(15 - shift)``, the result truncated to int32 as its ``int32_t result = x >> s`` does.

    >>> multiply_by_quantized_multiplier_64(np.array([1000, -1000, 3]), 1 << 30, -1).tolist()  # x / 4
    [250, -250, 1]
    """
    total = 15 - np.asarray(shift, np.int64)
    acc = np.asarray(x, np.int64) * reduced_multiplier(multiplier) + (np.int64(1) << (total - 1))
    return _wrap32(acc >> total)


def requantize_acc(acc, p) -> np.ndarray:
    """A 16x8 layer's accumulator (int64 array) → int16 output: int64 requantization (``p.wide``) or, for an
    int32 bias, the int32 accumulator wrapped as C's int32 adds do and the int8 kernels' requantization;
    the output offset (0 under the 16x8 scheme; CONV_2D's kernel adds none, ``p.output_offset`` None) and the
    fused activation's clamp."""
    if p.wide:
        y = multiply_by_quantized_multiplier_64(acc, p.output_multiplier, p.output_shift)
    else:
        y = multiply_by_quantized_multiplier(_wrap32(np.asarray(acc, np.int64)), p.output_multiplier,
                                             p.output_shift)
    if p.output_offset:
        y = y + p.output_offset
    return np.clip(y, p.output_activation_min, p.output_activation_max).astype(np.int16)


def zero_points_zero(graph: Graph, node: Node, names, why: str) -> None:
    """TFLite's 16x8 scheme: int16 tensors are symmetric. A kernel that ignores (or TFLM refuses) zero
    points is refused a tensor with another one, instead of computing something else."""
    for name in names:
        if name and graph.tensors[name].dtype == "int16":
            _, z = c.scalar_qparams(graph, node, name)
            if z != 0:
                c.fail(graph, node, f"int16 tensor '{name}' has zero point {z}; {why}",
                       "quantize int16 activations symmetrically (zero point 0), as tinyopt convert "
                       "--activations int16 does", cls=UnsupportedOpError)


def bias_kind(graph: Graph, node: Node, allowed: tuple[str, ...]) -> bool:
    """True for an int64 bias (or none: TFLM then accumulates in int64), False for an int32 one; a bias of
    another dtype is refused by name."""
    b = c.in_tensor(graph, node, 2)
    if b is None:
        return True
    if b.dtype not in allowed:
        c.fail(graph, node,
               f"a 16x8 layer with a {b.dtype} bias (TFLM's kernel takes {' or '.join(allowed)})",
               "quantize the bias to int64 (tinyopt convert --activations int16 does)",
               cls=UnsupportedOpError)
    return b.dtype == "int64"


def int_dtype(graph: Graph, node: Node, is_int: bool) -> str:
    """The OpData dtype of a kernel that moves values unchanged: its input's integer dtype (int8, int16)."""
    if not is_int:
        return "float32"
    return "int16" if graph.tensors[node.inputs[0]].dtype == "int16" else "int8"


def checked_log2(x: float | np.floating) -> tuple[bool, int]:
    """TFLM's ``CheckedLog2``: (x is a power of two within 1e-3 in log2, log2(x) rounded), in float32.

    >>> checked_log2(1 / 32768), checked_log2(0.001)
    ((True, -15), (False, -10))
    """
    v = np.float32(np.log(np.float32(x))) * np.float32(1.0 / np.log(np.float32(2.0)))
    r = np.float32(np.sign(v) * np.floor(np.abs(v) + np.float32(0.5)))
    return bool(abs(np.float32(v - r)) < np.float32(1e-3)), int(r)
