"""Integer building blocks of TFLM's LSTM kernel (``lstm_eval``), shared by the numpy runtime and the C
generator: the 16-bit sigmoid/tanh of ``reference_integer_ops`` (a 256-entry table of sigmoid(i/24) in
0.16 fixed point, linearly interpolated), the int16-output gate products and the int64 requantization of
the 16x8 kernels.

Gate pre-activations are int16 at scale 2^-12 (Q3.12), gate outputs int16 at 2^-15 (Q0.15); the cell state
is int16 at a power-of-two scale 2^cell_state_scale_power.
"""

from __future__ import annotations

import numpy as np

from tinyopt.ops._int16 import multiply_by_quantized_multiplier_64
from tinyopt.runtime.fixedpoint import multiply_by_quantized_multiplier

INT16_MIN, INT16_MAX = -32768, 32767
GATE_INPUT_SCALE = 2.0 ** -12   # the fully connected gates' int16 output (the nonlinearity's input)
GATE_OUTPUT_SCALE = 2.0 ** -15  # sigmoid/tanh int16 output

# TFLM's table holds sigmoid(i/24) * 2^16 for i = 0..255; it is one above the rounded value at these
# entries (the table was not produced by round-to-nearest), and its last entry saturates at 65535.
_TABLE_PLUS_ONE = (4, 8, 12, 14, 15, 16, 17, 19, 20, 21, 22, 25, 27, 28, 29, 30, 31, 33, 34, 35, 37, 39, 40,
                   41, 43, 44, 45, 46, 49, 50, 54, 62, 63, 64, 66, 82, 86, 93, 100, 103, 112, 116, 135, 255)


def sigmoid_table() -> np.ndarray:
    """``sigmoid_table_uint16``: 256 uint16 values of sigmoid(i / 24) in 0.16 fixed point."""
    i = np.arange(256, dtype=np.float64)
    t = np.round(65536.0 / (1.0 + np.exp(-i / 24.0))).astype(np.int64)
    t[list(_TABLE_PLUS_ONE)] += 1
    return np.minimum(t, 65535)


SIGMOID_TABLE = sigmoid_table()


def _scaled_input(x, input_multiplier: int, input_left_shift: int) -> np.ndarray:
    """The table index domain: ``(x * multiplier + round) >> shift``; a zero multiplier means the
    power-of-two case, 3 << shift (the 3/4 range expansion folded in)."""
    if input_multiplier == 0:
        input_multiplier, input_left_shift = 3 << input_left_shift, 0
    rnd = (1 << (input_left_shift - 1)) if input_left_shift > 0 else 0
    return (np.asarray(x, np.int64) * input_multiplier + rnd) >> input_left_shift


def logistic16(x, input_multiplier: int = 0, input_left_shift: int = 0) -> np.ndarray:
    """``reference_integer_ops::Logistic`` on int16: Q3.12 in, Q0.15 out (9 fractional index bits)."""
    v = _scaled_input(x, input_multiplier, input_left_shift)
    a = np.abs(v)
    uh = a >> 9
    idx = np.minimum(uh, 254)
    ua, ub = SIGMOID_TABLE[idx], SIGMOID_TABLE[idx + 1]
    res = np.where(uh >= 255, 0x7FFF << 10, (ua << 9) + (a & 0x1FF) * (ub - ua))
    res = np.where(v >= 0, res + (1 << 9), (1 << 25) - res + (1 << 9) - 1)
    return (res >> 10).astype(np.int16)


def tanh16(x, input_multiplier: int, input_left_shift: int) -> np.ndarray:
    """``reference_integer_ops::Tanh`` on int16 via tanh(x) = 2 sigmoid(2x) - 1 (8 fractional index bits)."""
    v = _scaled_input(x, input_multiplier, input_left_shift)
    a = np.abs(v)
    uh = a >> 8
    idx = np.minimum(uh, 254)
    ua, ub = SIGMOID_TABLE[idx], SIGMOID_TABLE[idx + 1]
    res = np.where(uh >= 255, 0xFFFF << 8, (ua << 8) + (a & 0xFF) * (ub - ua))
    res = np.where(v >= 0, res - (1 << 23) + (1 << 7), -res + (1 << 23) + (1 << 7) - 1)
    return (res >> 8).astype(np.int16)


def tanh_params(cell_state_scale_power: int) -> tuple[int, int]:
    """``lstm_internal::Tanh``: (input_multiplier, input_left_shift) for an int16 input at
    2^cell_state_scale_power; the gate pre-activations use power -12 (multiplier 3, shift 0)."""
    shift = 15 + cell_state_scale_power - 3
    if shift < 0:
        return 3, -shift
    return 0, shift


def requantize(acc, multiplier: int, shift: int, wide: bool) -> np.ndarray:
    """An accumulator scaled by (multiplier, shift): int32 arithmetic, or int64 (``wide``: 16x8)."""
    if wide:
        return multiply_by_quantized_multiplier_64(acc, multiplier, shift)
    return multiply_by_quantized_multiplier(acc, multiplier, shift)


def mul_elementwise(a, b, multiplier: int, shift: int, offset: int, lo: int, hi: int) -> np.ndarray:
    """``reference_integer_ops::MulElementwise`` of two symmetric int16 operands (offsets 0)."""
    prod = np.asarray(a, np.int64) * np.asarray(b, np.int64)
    return np.clip(multiply_by_quantized_multiplier(prod, multiplier, shift) + offset, lo, hi)


def checked_log2(x: float | np.floating) -> int:
    """``CheckedLog2``'s result: log2(x) rounded, computed in float32 as TFLM does."""
    v = np.float32(np.log(np.float32(x))) * np.float32(1.0 / np.log(np.float32(2.0)))
    r = np.float32(np.sign(v) * np.floor(np.abs(v) + np.float32(0.5)))
    return int(r)


def is_power_of_two(x: float) -> bool:
    v = float(np.log2(np.float64(np.float32(x))))
    return abs(v - round(v)) < 1e-3
