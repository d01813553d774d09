"""DEQUANTIZE: int8 -> float32, ``float(double(scale) * (q - zero_point))`` as TFLM computes it."""

from __future__ import annotations

import numpy as np


def run(p: dict, inputs: list) -> np.ndarray:
    q = inputs[0].astype(np.int64) - p["zero_point"]
    return (np.float64(p["scale"]) * q).astype(np.float32)
