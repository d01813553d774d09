"""SOFTMAX over the last axis, int8 in and out, as TFLM's reference ``Softmax`` (gemmlowp fixed point):
differences to the row maximum are rescaled into Q5.26, exponentiated, summed in Q12.19, inverted with
``GetReciprocal`` and scaled to the output's 1/256 grid with zero point -128."""

from __future__ import annotations

import numpy as np

from tinyopt.runtime import fixedpoint as fp

_SCALED_DIFF_INTEGER_BITS = 5
_ACCUMULATION_INTEGER_BITS = 12


def run(p: dict, inputs: list) -> np.ndarray:
    x = inputs[0]
    if p["dtype"] != "int8":
        z = (x.astype(np.float32) - x.max(axis=-1, keepdims=True).astype(np.float32)) * np.float32(p["beta"])
        e = np.exp(z)
        return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)
    xi = x.astype(np.int64)
    diff = xi - xi.max(axis=-1, keepdims=True)
    valid = diff >= p["diff_min"]
    rescaled = fp.multiply_by_quantized_multiplier_greater_than_one(diff, p["input_multiplier"],
                                                                    p["input_left_shift"])
    exp_q0 = fp.exp_on_negative_values(rescaled, _SCALED_DIFF_INTEGER_BITS)
    terms = fp.rescale(exp_q0, 0, _ACCUMULATION_INTEGER_BITS)
    sum_of_exps = np.sum(np.where(valid, terms, 0), axis=-1, keepdims=True)
    shifted_scale, num_bits_over_unit = fp.get_reciprocal(sum_of_exps, _ACCUMULATION_INTEGER_BITS)
    unsat = fp.rounding_divide_by_pot(fp.fp_mul(shifted_scale, exp_q0), num_bits_over_unit + 31 - 8)
    out = np.clip(unsat - 128, -128, 127)
    return np.where(valid, out, -128).astype(np.int8)
