"""MEAN: TFLM's ``QuantizedMeanOrSum``: sum the raw values, subtract zero_point·count, multiply by
(input scale / output scale / count) folded into one multiplier, add the output zero point, clamp.

The batch axis (graph axis 0, size 1) is never reduced across rows.
"""

from __future__ import annotations

import numpy as np

from tinyopt.runtime.fixedpoint import multiply_by_quantized_multiplier


def run(p: dict, inputs: list) -> np.ndarray:
    x = inputs[0]
    axes = tuple(a for a in p["axes"] if a != 0)
    keep = p["keep_dims"]
    if p["dtype"] != "int8":
        return np.mean(x.astype(np.float32), axis=axes, keepdims=keep).astype(np.float32)
    total = np.sum(x.astype(np.int64), axis=axes, keepdims=keep)
    count = p["num_elements_in_axis"]
    shifted = total - p["input_zero_point"] * count
    out = multiply_by_quantized_multiplier(shifted, p["mean_multiplier"], p["mean_shift"]) + p["output_zero_point"]
    return np.clip(out, -128, 127).astype(np.int8)
