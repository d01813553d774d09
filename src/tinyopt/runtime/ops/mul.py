"""MUL: out = MBQM((a + o1)(b + o2), s1·s2/so) + zo, clamped (TFLM's integer ``Mul``)."""

from __future__ import annotations

import numpy as np

from tinyopt.runtime.fixedpoint import multiply_by_quantized_multiplier
from tinyopt.runtime.ops._common import clamp_float


def run(p: dict, inputs: list) -> np.ndarray:
    a, b = inputs[0], inputs[1]
    if p["dtype"] != "int8":
        return clamp_float(a.astype(np.float32) * b.astype(np.float32), p)
    prod = (a.astype(np.int64) + p["input1_offset"]) * (b.astype(np.int64) + p["input2_offset"])
    out = multiply_by_quantized_multiplier(prod, p["output_multiplier"], p["output_shift"]) + p["output_offset"]
    return np.clip(out, p["output_activation_min"], p["output_activation_max"]).astype(np.int8)
