"""RELU: int8 requantizes to the output parameters then clamps at the output's zero (TFLM
``ReluQuantized``); float is max(x, 0)."""

from __future__ import annotations

import numpy as np

from tinyopt.runtime.fixedpoint import multiply_by_quantized_multiplier


def run(p: dict, inputs: list) -> np.ndarray:
    x = inputs[0]
    if p["dtype"] != "int8":
        return np.maximum(x.astype(np.float32), np.float32(0))
    out = p["output_offset"] + multiply_by_quantized_multiplier(x.astype(np.int64) - p["input_offset"],
                                                                p["output_multiplier"], p["output_shift"])
    return np.clip(out, p["output_activation_min"], p["output_activation_max"]).astype(np.int8)
