"""DEPTHWISE_CONV_2D: output channel ``ic * depth_multiplier + m`` sees input channel ``ic`` only.

Integer path as TFLM's ``DepthwiseConvPerChannel``; accumulation is tap by tap in int64 (exact).
"""

from __future__ import annotations

import numpy as np

from tinyopt.runtime.ops._common import clamp_float, pad_spatial, requantize, window


def run(p: dict, inputs: list) -> np.ndarray:
    x, w = inputs[0], inputs[1]
    bias = inputs[2] if len(inputs) > 2 else None
    m = p["depth_multiplier"]
    is_int = p["dtype"] == "int8"
    if is_int:
        xs = x.astype(np.int32) + np.int32(p["input_offset"])
        acc_dtype, pad_value = np.int64, 0
    else:
        xs, acc_dtype, pad_value = x.astype(np.float32), np.float32, 0.0
    if m > 1:
        xs = np.repeat(xs, m, axis=-1)
    xp = pad_spatial(xs, p, pad_value)
    wk = w.reshape(w.shape[1], w.shape[2], w.shape[3]).astype(acc_dtype)
    acc = np.zeros((x.shape[0], p["out_h"], p["out_w"], w.shape[3]), dtype=acc_dtype)
    for i in range(p["filter_h"]):
        for j in range(p["filter_w"]):
            acc += window(xp, p, i, j) * wk[i, j]
    if bias is not None:
        acc = acc + bias.astype(acc_dtype)
    return requantize(acc, p) if is_int else clamp_float(acc, p)
