"""Fixed-point routines that only the math operators need (RSQRT, L2_NORMALIZATION, DIV, LOG_SOFTMAX):
TFLM's ``GetInvSqrtQuantizedMultiplierExp``, ``log_x_for_x_greater_than_or_equal_to_1`` and
``CountLeadingSignBits``, vectorised over int64 arrays holding int32 values like ``runtime.fixedpoint``
(whose helpers they build on). gemmlowp's ``+``/``-`` on FixedPoint values wrap; ``*`` is the
rounding-doubling high multiply.
"""

from __future__ import annotations

import numpy as np

from tinyopt.runtime.fixedpoint import (
    INT32_MAX,
    INT32_MIN,
    count_leading_zeros32,
    fp_mul,
    one_over_one_plus_x_for_x_in_0_1,
    rescale,
    rounding_divide_by_pot,
    rounding_half_sum,
)


def wrap32(x) -> np.ndarray:
    """int32 two's complement wrap (gemmlowp's non-saturating add and subtract)."""
    return ((np.asarray(x, dtype=np.int64) + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def saturate32(x) -> np.ndarray:
    return np.clip(np.asarray(x, dtype=np.int64), INT32_MIN, INT32_MAX)


def count_leading_sign_bits(x) -> np.ndarray:
    """GCC's ``__builtin_clrsb`` on int32, which TFLM's ``CountLeadingSignBits`` uses (31 for 0 and -1)."""
    x = np.asarray(x, dtype=np.int64)
    return count_leading_zeros32(np.where(x < 0, ~x, x)) - 1


def shift_left_saturating(x, exponent) -> np.ndarray:
    """``SaturatingRoundingMultiplyByPOTParam`` for exponent >= 0 (a per-element exponent)."""
    x = np.asarray(x, dtype=np.int64)
    exponent = np.asarray(exponent, dtype=np.int64)
    threshold = (np.int64(1) << (31 - exponent)) - 1
    out = np.where(x > threshold, INT32_MAX, np.where(x < -threshold, INT32_MIN, x << exponent))
    return np.where(exponent == 0, x, out)


def inv_sqrt_multiplier_exp(x, reverse_shift: int) -> tuple[np.ndarray, np.ndarray]:
    """``GetInvSqrtQuantizedMultiplierExp``: (multiplier, shift) with 1/sqrt(x) ~ multiplier * 2^shift / 2^31
    for x >= 0 (0 and 1 give (INT32_MAX, 0)); five Newton-Raphson steps in Q3.28."""
    x = np.asarray(x, dtype=np.int64)
    small = x <= 1
    x = np.where(small, 2, x)
    shift = np.full(x.shape, 11, np.int64)
    while np.any(x >= 1 << 29):
        big = x >= 1 << 29
        x = np.where(big, x // 4, x)
        shift = shift + big
    left_pairs = (count_leading_zeros32(x) - 1) // 2 - 1
    shift = shift - left_pairs
    x = x << (2 * left_pairs)
    fixed_input = x >> 1                                   # FixedPoint<3>
    half_input = rounding_divide_by_pot(fixed_input, 1)
    half_three = (1 << 28) + (1 << 27)                     # 1.5 in Q3.28
    y = np.full(x.shape, 1 << 28, np.int64)                # 1.0 in Q3.28
    for _ in range(5):
        y3 = rescale(fp_mul(fp_mul(y, y), y), 9, 3)
        y = rescale(wrap32(fp_mul(half_three, y) - fp_mul(half_input, y3)), 6, 3)
    y = fp_mul(y, 1518500250)                              # * sqrt(2) / 2 in Q0.31
    negative = shift < 0
    y = np.where(negative, y << np.where(negative, -shift, 0), y)
    shift = np.where(negative, 0, shift)
    y = np.where(small, INT32_MAX, y)
    shift = np.where(small, 0, shift)
    return wrap32(y), shift * reverse_shift


def log_x_for_x_greater_than_or_equal_to_1(x, input_integer_bits: int,
                                           output_integer_bits: int) -> np.ndarray:
    """TFLM's ``log_x_for_x_greater_than_or_equal_to_1_impl``: FixedPoint<input bits> x >= 1 ->
    FixedPoint<output bits> log(x), by a rational approximation around a power of sqrt(2)."""
    accum = output_integer_bits + 1
    log_2, sqrt_sqrt_half, sqrt_half = 1488522236, 1805811301, 1518500250
    alpha_n, alpha_d, alpha_i, alpha_f = 117049297, 127690142, 1057819769, 638450708
    shifted_quarter = rescale(np.int64(536870912), 0, accum)

    z_a = np.asarray(x, dtype=np.int64)
    z_a_headroom_plus_1 = count_leading_zeros32(z_a)
    r_a_tmp = shift_left_saturating(z_a, z_a_headroom_plus_1 - 1)
    r_a_raw = shift_left_saturating(fp_mul(r_a_tmp, sqrt_half), 1)
    z_a_pow_2_adj = saturate32(shift_left_saturating(input_integer_bits - z_a_headroom_plus_1, 31 - accum)
                               + shifted_quarter)
    z_b = fp_mul(z_a, sqrt_half)
    z_b_headroom = count_leading_zeros32(z_b) - 1
    r_b_raw = shift_left_saturating(z_a, z_b_headroom)
    z_b_pow_2_adj = saturate32(shift_left_saturating(input_integer_bits - z_b_headroom, 31 - accum)
                               - shifted_quarter)
    r = np.minimum(r_a_raw, r_b_raw)
    z_pow_2_adj = np.maximum(z_a_pow_2_adj, z_b_pow_2_adj)

    p = rounding_half_sum(r, sqrt_sqrt_half)
    q = wrap32(r - sqrt_sqrt_half)
    q = wrap32(q + q)
    common_sq = fp_mul(q, q)
    num = wrap32(fp_mul(q, r) + fp_mul(fp_mul(q, common_sq), alpha_n))
    denom_minus_one = wrap32(fp_mul(p, wrap32(alpha_i + q + fp_mul(alpha_d, common_sq))) + fp_mul(alpha_f, q))
    recip_denom = one_over_one_plus_x_for_x_in_0_1(denom_minus_one)
    num_scaled = rescale(num, 0, accum)
    total = wrap32(fp_mul(z_pow_2_adj, log_2) + fp_mul(num_scaled, recip_denom))
    return rescale(total, accum, output_integer_bits)


def rounding_divide_by_pot_wide(x, exponent) -> np.ndarray:
    """gemmlowp ``RoundingDivideByPOT`` also for exponents of 32 and more, as TFLM's x86 build computes them.

    C leaves a shift by 32 or more undefined; gemmlowp only asserts ``exponent <= 31`` in debug builds.
    The release build keeps the low 32 bits of the mask ``(1ll << e) - 1`` (all ones) and x86 shifts by
    the count mod 32, so the result is ``(x >> (e % 32)) + (x >= 0)``. TFLM's int8 DIV reaches this for
    numerators near their zero point (see div.py); we reproduce it to stay equal to the reference.
    """
    x = np.asarray(x, dtype=np.int64)
    exponent = np.asarray(exponent, dtype=np.int64)
    wide = exponent > 31
    normal = rounding_divide_by_pot(x, np.clip(exponent, 0, 31))
    if not np.any(wide):
        return normal
    return np.where(wide, (x >> (exponent & 31)) + (x >= 0), normal)
