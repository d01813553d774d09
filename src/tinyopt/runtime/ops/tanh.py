"""TANH, int8 as TFLM's ``reference_integer_ops::Tanh``: like LOGISTIC but gemmlowp's fixed-point tanh
and an output on the 1/128 grid with zero point 0."""

from __future__ import annotations

import numpy as np

from tinyopt.runtime import fixedpoint as fp


def run(p: dict, inputs: list) -> np.ndarray:
    x = inputs[0]
    if p["dtype"] != "int8":
        return np.tanh(x.astype(np.float32)).astype(np.float32)
    d = x.astype(np.int64) - p["input_zero_point"]
    radius = p["input_range_radius"]
    inner = np.clip(d, -radius + 1, radius - 1)
    q4 = fp.multiply_by_quantized_multiplier(inner, p["input_multiplier"], p["input_left_shift"])
    q0 = fp.tanh_fixed(q4, 4)
    out = np.clip(fp.rounding_divide_by_pot(q0, 31 - 7), -128, 127)
    out = np.where(d <= -radius, -128, np.where(d >= radius, 127, out))
    return out.astype(np.int8)
