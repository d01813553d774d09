"""ADD (and SUB, which differs only in the sign of the second operand), as TFLM's integer ``Add``:
both operands are shifted left by ``left_shift`` (20), rescaled to twice the larger input scale, summed,
then rescaled to the output. Operands broadcast with numpy rules."""

from __future__ import annotations

import numpy as np

from tinyopt.runtime.fixedpoint import multiply_by_quantized_multiplier
from tinyopt.runtime.ops._common import clamp_float


def scaled_operands(p: dict, a, b) -> tuple[np.ndarray, np.ndarray]:
    a1 = (a.astype(np.int64) + p["input1_offset"]) << p["left_shift"]
    b1 = (b.astype(np.int64) + p["input2_offset"]) << p["left_shift"]
    return (multiply_by_quantized_multiplier(a1, p["input1_multiplier"], p["input1_shift"]),
            multiply_by_quantized_multiplier(b1, p["input2_multiplier"], p["input2_shift"]))


def finish(p: dict, raw) -> np.ndarray:
    out = multiply_by_quantized_multiplier(raw, p["output_multiplier"], p["output_shift"]) + p["output_offset"]
    return np.clip(out, p["output_activation_min"], p["output_activation_max"]).astype(np.int8)


def run(p: dict, inputs: list, sign: int = 1) -> np.ndarray:
    a, b = inputs[0], inputs[1]
    if p["dtype"] != "int8":
        return clamp_float(a.astype(np.float32) + sign * b.astype(np.float32), p)
    sa, sb = scaled_operands(p, a, b)
    return finish(p, sa + sign * sb)
