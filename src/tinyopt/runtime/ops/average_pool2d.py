"""AVERAGE_POOL_2D: mean over the in-bounds part of each window (padding is not counted).

Integer path as TFLM: sum the raw int8 values, divide by the count rounding half away from zero, clamp
to the activation range; no requantization (input and output share scale and zero point).
"""

from __future__ import annotations

import numpy as np

from tinyopt.runtime.ops._common import clamp_float, pad_spatial, window


def run(p: dict, inputs: list) -> np.ndarray:
    x = inputs[0]
    is_int = p["dtype"] == "int8"
    dtype = np.int64 if is_int else np.float32
    xp = pad_spatial(x.astype(dtype), p, 0)
    ones = pad_spatial(np.ones((1, x.shape[1], x.shape[2], 1), dtype=np.int64), p, 0)
    total = np.zeros((x.shape[0], p["out_h"], p["out_w"], x.shape[3]), dtype=dtype)
    count = np.zeros((1, p["out_h"], p["out_w"], 1), dtype=np.int64)
    for i in range(p["filter_h"]):
        for j in range(p["filter_w"]):
            total += window(xp, p, i, j)
            count += window(ones, p, i, j)
    if not is_int:
        return clamp_float(total / count.astype(np.float32), p)
    avg = np.sign(total) * ((np.abs(total) + count // 2) // count)
    return np.clip(avg, p["output_activation_min"], p["output_activation_max"]).astype(np.int8)
