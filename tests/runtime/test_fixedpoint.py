"""Fixed-point helpers against scalar transcriptions of the C semantics (Python ints, no numpy), hand
values, and TFLM itself for which rounding variant it is built with."""

from __future__ import annotations

import math

import numpy as np
import pytest

from runtime._reference import qtensor, run_tflm
from tinyopt.export.tflite import graph_to_tflite_bytes, single_op_model
from tinyopt.runtime import fixedpoint as fp

I32_MIN, I32_MAX = -(2**31), 2**31 - 1


def srdhm_ref(a: int, b: int) -> int:
    if a == b == I32_MIN:
        return I32_MAX
    ab = a * b
    t = ab + ((1 << 30) if ab >= 0 else 1 - (1 << 30))
    return t // (1 << 31) if t >= 0 else -((-t) // (1 << 31))  # C division truncates towards zero


def rdbpot_ref(x: int, e: int) -> int:
    mask = (1 << e) - 1
    rem = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> e) + (1 if rem > threshold else 0)


def int32_samples(rng, n):
    v = rng.integers(I32_MIN, I32_MAX, size=n, endpoint=True)
    v[:8] = [I32_MIN, I32_MAX, 0, 1, -1, 1 << 30, -(1 << 30), I32_MIN + 1]
    return v


def test_saturating_rounding_doubling_high_mul_matches_scalar_c():
    rng = np.random.default_rng(0)
    a, b = int32_samples(rng, 5000), int32_samples(rng, 5000)
    b[8] = I32_MIN  # a[8] is random; pair (MIN, MIN) is a[0], b[0]
    got = fp.saturating_rounding_doubling_high_mul(a, b)
    assert got.tolist() == [srdhm_ref(int(x), int(y)) for x, y in zip(a, b)]


def test_rounding_divide_by_pot_matches_scalar_c():
    rng = np.random.default_rng(1)
    x = int32_samples(rng, 4000)
    e = rng.integers(0, 32, size=4000)
    got = fp.rounding_divide_by_pot(x, e)
    assert got.tolist() == [rdbpot_ref(int(a), int(b)) for a, b in zip(x, e)]
    # Hand values: 5/2 = 2.5 -> 3, -5/2 = -2.5 -> -3 (away from zero), 7/4 = 1.75 -> 2, -6/4 -> -2.
    assert fp.rounding_divide_by_pot(np.array([5, -5, 7, -6]),
                                     np.array([1, 1, 2, 2])).tolist() == [3, -3, 2, -2]


@pytest.mark.parametrize("real,expected", [
    (0.0, (0, 0)),
    (0.5, (1 << 30, 0)),          # frexp(0.5) = 0.5 * 2^0
    (1.0, (1 << 30, 1)),          # 0.5 * 2^1
    (0.75, (3 << 29, 0)),
    (1 - 2.0**-40, (1 << 30, 1)),  # q rounds up to 2^31: halved, shift + 1
    (2.0**-33, (0, 0)),           # shift -32 < -31: flushed to zero
    (3.0, (3 << 29, 2)),
])
def test_quantize_multiplier_hand_values(real, expected):
    assert fp.quantize_multiplier(real) == expected


def test_quantize_multiplier_reconstructs_the_real():
    rng = np.random.default_rng(2)
    for real in 2.0 ** rng.uniform(-30, 10, 500):
        m, s = fp.quantize_multiplier(real)
        assert (1 << 30) <= m < (1 << 31)
        assert math.isclose(m * 2.0 ** (s - 31), real, rel_tol=2**-30)


def test_multiply_by_quantized_multiplier_hand_values():
    # 100 * 0.5 = 50; 3 * 0.5 = 1.5 -> 2 (the high multiply rounds ties up); -3 * 0.5 = -1.5 -> -1;
    # 5 * 0.75 / 4 = 0.9375 -> 1; 7 * 0.5 * 2^3 = 28 (left shift first).
    x = np.array([100, 3, -3, 5, 7])
    m = np.array([1 << 30, 1 << 30, 1 << 30, 3 << 29, 1 << 30])
    s = np.array([0, 0, 0, -2, 3])
    assert fp.multiply_by_quantized_multiplier(x, m, s).tolist() == [50, 2, -1, 1, 28]


def test_tflm_rounds_twice_not_once():
    """1 × 0.25: double rounding gives round(round(0.5) / 2) = 1, single rounding gives round(0.25) = 0.
    A requantizing QUANTIZE with scale ratio 1/4 shows which one the installed TFLM computes."""
    assert fp.multiply_by_quantized_multiplier(1, 1 << 30, -1) == 1
    assert fp.multiply_by_quantized_multiplier_single_round(1, 1 << 30, -1) == 0
    g = single_op_model("QUANTIZE", [qtensor("a", (1, 4), 0.25, 0)], qtensor("b", (1, 4), 1.0, 0))
    x = np.array([[1, 3, -1, 2]], np.int8)
    ref = run_tflm(graph_to_tflite_bytes(g), [x], 1)[0]
    assert ref.tolist() == [fp.multiply_by_quantized_multiplier(x.astype(np.int64), 1 << 30, -1).tolist()[0]]
    # 3/4: high multiply 1.5 -> 2, then 2/2 -> 1; -1/4: high multiply -0.5 -> 0 (ties up), 0/2 -> 0.
    assert ref.tolist() == [[1, 1, 0, 1]]


def test_exp_and_reciprocal_against_float():
    # exp_on_negative_values in Q5.26 and 1/(1+x) in Q0.31 agree with float math to ~1e-8.
    a = np.array([0, -1, -(1 << 26), -(5 << 25), -(31 << 26)])  # 0, ~0, -1, -2.5, -31
    got = fp.exp_on_negative_values(a, 5) / 2.0**31
    np.testing.assert_allclose(got, np.exp(a / 2.0**26), atol=1e-6)  # gemmlowp exp is accurate to ~3e-7
    x = np.array([0, 1 << 29, 1 << 30, I32_MAX - 5])
    np.testing.assert_allclose(fp.one_over_one_plus_x_for_x_in_0_1(x) / 2.0**31, 1 / (1 + x / 2.0**31),
                               atol=1e-6)
    np.testing.assert_allclose(fp.logistic_fixed(np.array([0, 1 << 27, -(3 << 27)]), 4) / 2.0**31,
                               1 / (1 + np.exp(-np.array([0.0, 1.0, -3.0]))), atol=1e-6)
    np.testing.assert_allclose(fp.tanh_fixed(np.array([0, 1 << 27, -(1 << 26)]), 4) / 2.0**31,
                               np.tanh([0.0, 1.0, -0.5]), atol=1e-6)


def test_count_leading_zeros():
    x = np.array([0, 1, 2, 3, (1 << 31) - 1, 1 << 31, 0xFFFFFFFF, (1 << 24) - 1, 1 << 24])
    assert fp.count_leading_zeros32(x).tolist() == [32, 31, 30, 30, 1, 0, 0, 8, 7]
