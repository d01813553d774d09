"""QUANTIZE: float32 -> int8 as TFLM's ``AffineQuantize`` (float32 division, round half away from zero),
or int8 -> int8 requantization with a fixed-point multiplier."""

from __future__ import annotations

import numpy as np

from tinyopt.runtime.fixedpoint import multiply_by_quantized_multiplier, round_half_away


def run(p: dict, inputs: list) -> np.ndarray:
    x = inputs[0]
    if "input_multiplier" in p:
        out = multiply_by_quantized_multiplier(x.astype(np.int64) - p["input_zero_point"], p["input_multiplier"],
                                               p["input_shift"]) + p["zero_point"]
    else:
        q = round_half_away(x.astype(np.float32) / np.float32(p["scale"]))
        out = np.clip(q, -(1 << 31), (1 << 31) - 1).astype(np.int64) + p["zero_point"]
    return np.clip(out, -128, 127).astype(np.int8)
