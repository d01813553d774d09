"""RELU6: int8 clamps in the input's domain between quantized 0 and 6, no requantization (TFLM
``Relu6Quantized``: input and output share parameters); float clamps to [0, 6]."""

from __future__ import annotations

import numpy as np


def run(p: dict, inputs: list) -> np.ndarray:
    x = inputs[0]
    if p["dtype"] != "int8":
        return np.clip(x.astype(np.float32), 0.0, 6.0).astype(np.float32)
    return np.clip(x, p["zero"], p["six"]).astype(np.int8)
