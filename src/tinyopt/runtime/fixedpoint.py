"""Fixed-point arithmetic of TFLM's integer kernels, vectorised over numpy int64 arrays.

Every function computes exactly what the C reference computes on int32 values (TFLM's ``common.h`` and
gemmlowp's ``fixedpoint.h``): results are int64 arrays holding int32 values. The installed TFLM is
built without ``TFLITE_SINGLE_ROUNDING``, so ``multiply_by_quantized_multiplier`` rounds twice
(rounding-doubling high multiply, then a rounding right shift); the single-rounding variant is kept as
``multiply_by_quantized_multiplier_single_round`` and a test pins which one TFLM uses.

The gemmlowp ``FixedPoint<int32, I>`` type is represented by its raw int32 value; the number of integer
bits ``I`` is a Python int carried by the caller, as in the C templates.
"""

from __future__ import annotations

import math

import numpy as np

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


def round_half_away(x):
    """C's ``std::round`` / ``TfLiteRound``: halves go away from zero (numpy's ``round`` goes to even)."""
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def _wrap32(x: np.ndarray) -> np.ndarray:
    """Two's complement wrap of int64 values to int32, as C's int32 arithmetic does in practice."""
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


# -- multipliers (Prepare) ---------------------------------------------------------------------------
def quantize_multiplier(real: float) -> tuple[int, int]:
    """``QuantizeMultiplier``: ``real ≈ multiplier * 2^(shift - 31)`` with multiplier in [2^30, 2^31).

    Zero gives (0, 0); a multiplier below ~2^-31 is flushed to (0, 0) as TFLM does.
    """
    real = float(real)
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = int(round_half_away(q * (1 << 31)))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift, q_fixed = 0, 0
    return q_fixed, shift


def quantize_multipliers(reals) -> tuple[np.ndarray, np.ndarray]:
    """``quantize_multiplier`` over an array: (multipliers int32, shifts int32)."""
    pairs = [quantize_multiplier(r) for r in np.asarray(reals, dtype=np.float64).ravel()]
    return (np.array([p[0] for p in pairs], dtype=np.int32), np.array([p[1] for p in pairs], dtype=np.int32))


def frexp_multiplier(real: float) -> tuple[int, int]:
    """LOGISTIC/TANH Prepare: ``frexp`` then round, without QuantizeMultiplier's overflow fix-up."""
    q, shift = math.frexp(float(real))
    return int(round_half_away(q * (1 << 31))), shift


def calculate_input_radius(input_integer_bits: int, input_left_shift: int,
                           total_signed_bits: int = 31) -> int:
    """``CalculateInputRadius``: the largest input difference whose rescaled value does not saturate."""
    max_input_rescaled = (1.0 * ((1 << input_integer_bits) - 1)
                          * (1 << (total_signed_bits - input_integer_bits))
                          / (1 << input_left_shift))
    return int(math.floor(max_input_rescaled))


# -- the two roundings (Eval) ------------------------------------------------------------------------
def saturating_rounding_doubling_high_mul(a, b) -> np.ndarray:
    """gemmlowp ``SaturatingRoundingDoublingHighMul``: (a*b + nudge) / 2^31 with C's truncating division,
    nudge = 2^30 for a*b >= 0 and 1 - 2^30 otherwise; the one overflow case (MIN * MIN) gives INT32_MAX.

    For negative a*b, trunc((ab + 1 - 2^30) / 2^31) = floor((ab + 2^30) / 2^31) since ab is an integer,
    so both branches are one arithmetic shift of ab + 2^30 (ties round towards +inf).
    """
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    res = (a * b + (1 << 30)) >> 31
    if np.any(b == INT32_MIN):
        res = np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, res)
    return res


def rounding_divide_by_pot(x, exponent) -> np.ndarray:
    """gemmlowp ``RoundingDivideByPOT``: arithmetic right shift rounding half away from zero.

    gemmlowp adds one when the remainder exceeds (2^e - 1) / 2 (plus one for negative x); that is
    floor((x + 2^(e-1) - [x < 0]) / 2^e) for e >= 1, and x itself for e = 0.
    """
    x = np.asarray(x, dtype=np.int64)
    exponent = np.asarray(exponent, dtype=np.int64)
    nudge = (np.int64(1) << exponent) >> 1
    if np.any(exponent == 0):
        return (x + nudge - ((x < 0) & (exponent > 0))) >> exponent
    return (x + nudge - (x < 0)) >> exponent


def multiply_by_quantized_multiplier(x, multiplier, shift) -> np.ndarray:
    """TFLM ``MultiplyByQuantizedMultiplier(int32 x, int32 multiplier, int shift)`` (double rounding).

    ``multiplier`` and ``shift`` broadcast against ``x`` (per-channel arrays on the last axis).
    """
    x = np.asarray(x, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    if np.any(shift > 0):
        x = _wrap32(x << np.maximum(shift, 0))
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x, multiplier), np.maximum(-shift, 0))


def multiply_by_quantized_multiplier_single_round(x, multiplier, shift) -> np.ndarray:
    """The ``TFLITE_SINGLE_ROUNDING`` variant: one rounding of ``x * m / 2^(31 - shift)`` (half up)."""
    x = np.asarray(x, dtype=np.int64)
    total = 31 - np.asarray(shift, dtype=np.int64)
    return (x * np.asarray(multiplier, dtype=np.int64) + (np.int64(1) << (total - 1))) >> total


def multiply_by_quantized_multiplier_greater_than_one(x, multiplier, left_shift) -> np.ndarray:
    """``MultiplyByQuantizedMultiplierGreaterThanOne``: left shift then high multiply (softmax input)."""
    x = np.asarray(x, dtype=np.int64)
    return saturating_rounding_doubling_high_mul(_wrap32(x << np.asarray(left_shift, dtype=np.int64)),
                                                 multiplier)


# -- gemmlowp FixedPoint<int32, I> helpers -----------------------------------------------------------
def fp_mul(a, b) -> np.ndarray:
    """FixedPoint<I1> * FixedPoint<I2> -> FixedPoint<I1+I2>: the raw product is the high multiply."""
    return saturating_rounding_doubling_high_mul(a, b)


def saturating_rounding_multiply_by_pot(x, exponent: int) -> np.ndarray:
    """gemmlowp ``SaturatingRoundingMultiplyByPOT<exponent>``: saturating left shift, or rounding right."""
    x = np.asarray(x, dtype=np.int64)
    if exponent == 0:
        return x
    if exponent < 0:
        return rounding_divide_by_pot(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    return np.where(x > threshold, INT32_MAX, np.where(x < -threshold, INT32_MIN, x << exponent))


def rescale(x, src_integer_bits: int, dst_integer_bits: int) -> np.ndarray:
    """gemmlowp ``Rescale<dst>``: change the number of integer bits of a FixedPoint value."""
    return saturating_rounding_multiply_by_pot(x, src_integer_bits - dst_integer_bits)


def rounding_half_sum(a, b) -> np.ndarray:
    """gemmlowp ``RoundingHalfSum`` for int32: (a + b ± 1) / 2 with C's truncating division."""
    s = np.asarray(a, dtype=np.int64) + np.asarray(b, dtype=np.int64)
    t = s + np.where(s >= 0, 1, -1)
    return np.where(t >= 0, t // 2, -((-t) // 2))


def exp_on_interval_between_negative_one_quarter_and_0_excl(a) -> np.ndarray:
    """exp(a) for a in [-1/4, 0) (FixedPoint<0>) by a 4th-order Taylor expansion around -1/8."""
    constant_term = 1895147668  # exp(-1/8) in Q0.31
    constant_1_over_3 = 715827883
    x = _wrap32(np.asarray(a, dtype=np.int64) + (1 << 28))  # a + 1/8
    x2 = fp_mul(x, x)
    x3 = fp_mul(x2, x)
    x4 = fp_mul(x2, x2)
    x4_over_4 = saturating_rounding_multiply_by_pot(x4, -2)
    poly = saturating_rounding_multiply_by_pot(_wrap32(fp_mul(_wrap32(x4_over_4 + x3),
                                                              constant_1_over_3) + x2), -1)
    return _wrap32(constant_term + fp_mul(constant_term, _wrap32(x + poly)))


_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308), (2, 39332535),
               (3, 720401), (4, 242))


def exp_on_negative_values(a, integer_bits: int) -> np.ndarray:
    """gemmlowp ``exp_on_negative_values``: FixedPoint<integer_bits> a <= 0 -> FixedPoint<0> exp(a)."""
    a = np.asarray(a, dtype=np.int64)
    fractional_bits = 31 - integer_bits
    one_quarter = 1 << (fractional_bits - 2)
    mask = one_quarter - 1
    a_mod_quarter_minus_one_quarter = _wrap32((a & mask) - one_quarter)
    result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        rescale(a_mod_quarter_minus_one_quarter, integer_bits, 0))
    remainder = _wrap32(a_mod_quarter_minus_one_quarter - a)
    for exponent, multiplier in _EXP_BARREL:
        if integer_bits > exponent:
            bit = 1 << (fractional_bits + exponent)
            result = np.where((remainder & bit) != 0, fp_mul(result, multiplier), result)
    if integer_bits > 5:
        clamp = -(1 << (36 - integer_bits))
        result = np.where(a < clamp, 0, result)
    return np.where(a == 0, INT32_MAX, result)


def _newton_reciprocal_half(a) -> np.ndarray:
    """Shared core of gemmlowp's ``one_over_one_plus_x`` / ``one_minus_x_over_one_plus_x``: returns x in
    FixedPoint<2> with x ≈ 1 / ((1 + a) / 2) after three Newton-Raphson steps."""
    half_denominator = rounding_half_sum(a, INT32_MAX)
    x = _wrap32(1515870810 + fp_mul(half_denominator, -1010580540))  # 48/17 - 32/17 * d
    one_f2 = 1 << 29
    for _ in range(3):
        half_denominator_times_x = fp_mul(half_denominator, x)
        one_minus = _wrap32(one_f2 - half_denominator_times_x)
        x = _wrap32(x + rescale(fp_mul(x, one_minus), 4, 2))
    return x


def one_over_one_plus_x_for_x_in_0_1(a) -> np.ndarray:
    """gemmlowp: 1 / (1 + a) for FixedPoint<0> a in [0, 1)."""
    x = _newton_reciprocal_half(a)
    return rescale(x, 1, 0)  # ExactMulByPot<-1>: same raw, one integer bit less


def one_minus_x_over_one_plus_x_for_x_in_0_1(a) -> np.ndarray:
    """gemmlowp: (1 - a) / (1 + a) for FixedPoint<0> a in [0, 1)."""
    x = _newton_reciprocal_half(a)
    return rescale(_wrap32(x - (1 << 29)), 2, 0)


def count_leading_zeros32(x) -> np.ndarray:
    """Leading zero bits of a uint32 value (32 for zero); frexp is exact on integers below 2^53."""
    x = np.asarray(x, dtype=np.int64) & 0xFFFFFFFF
    _, bit_length = np.frexp(x.astype(np.float64))
    return np.where(x == 0, 32, 32 - bit_length.astype(np.int64))


def get_reciprocal(x, x_integer_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """TFLM ``GetReciprocal``: (FixedPoint<0> 1/x scaled, num_bits_over_unit) for positive x."""
    x = np.asarray(x, dtype=np.int64)
    headroom_plus_one = count_leading_zeros32(x)
    num_bits_over_unit = x_integer_bits - headroom_plus_one
    shifted_sum_minus_one = _wrap32(((x << headroom_plus_one) & 0xFFFFFFFF) - (1 << 31))
    return one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one), num_bits_over_unit


def logistic_fixed(a, integer_bits: int) -> np.ndarray:
    """gemmlowp ``logistic``: FixedPoint<integer_bits> -> FixedPoint<0> sigmoid(a)."""
    a = np.asarray(a, dtype=np.int64)
    positive = a > 0
    abs_input = np.where(positive, a, -a)
    result_if_positive = one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(-abs_input, integer_bits))
    result_if_negative = INT32_MAX - result_if_positive
    out = np.where(positive, result_if_positive, result_if_negative)
    return np.where(a == 0, 1 << 30, out)


def tanh_fixed(a, integer_bits: int) -> np.ndarray:
    """gemmlowp ``tanh``: FixedPoint<integer_bits> -> FixedPoint<0> tanh(a)."""
    a = np.asarray(a, dtype=np.int64)
    negative = a < 0
    n = np.where(negative, a, -a)
    # ExactMulByPot<1>: the same raw value read with one more integer bit, i.e. exp(2n).
    t = one_minus_x_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(n, integer_bits + 1))
    return np.where(a == 0, 0, np.where(negative, -t, t))
