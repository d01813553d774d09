/* SOFTMAX, int8 in, int8 out (scale 1/256, zero point -128): TFLM's reference fixed-point softmax.
 * exp() of the scaled difference to the row maximum in Q5.26 -> Q0.31, the sum in Q12.19, its
 * reciprocal by Newton-Raphson, all with gemmlowp's rounding. */
#include "tinyopt_fixedpoint.h"
#include "tinyopt_kernels.h"

/* x * 2^e with saturation (e > 0). */
static int32_t sat_shl(int32_t x, int e)
{
    const int32_t threshold = (int32_t)(((uint32_t)1 << (31 - e)) - 1u);
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return (int32_t)((uint32_t)x << e);
}

/* exp(a) for a in [-1/4, 0), a and the result in Q0.31: Taylor series around -1/8. */
static int32_t exp_quarter(int32_t a)
{
    const int32_t constant_term = 1895147668;
    const int32_t one_third = 715827883;
    const int32_t x = a + (1 << 28);
    const int32_t x2 = tinyopt_srdhm(x, x);
    const int32_t x3 = tinyopt_srdhm(x2, x);
    const int32_t x4 = tinyopt_srdhm(x2, x2);
    const int32_t x4_over_4 = tinyopt_rdbpot(x4, 2);
    const int32_t poly = tinyopt_rdbpot(tinyopt_srdhm(x4_over_4 + x3, one_third) + x2, 1);
    return constant_term + tinyopt_srdhm(constant_term, x + poly);
}

/* exp(a) for a <= 0 in Q5.26, result in Q0.31. */
static int32_t exp_negative(int32_t a)
{
    static const int32_t multipliers[7] = {1672461947, 1302514674, 790015084, 290630308, 39332535,
                                           720401, 242};
    const int32_t quarter = 1 << 24;
    const int32_t a_mod_quarter_minus_quarter = (a & (quarter - 1)) - quarter;
    int32_t result = exp_quarter(sat_shl(a_mod_quarter_minus_quarter, 5));
    const int32_t remainder = a_mod_quarter_minus_quarter - a;
    int k;
    for (k = 0; k < 7; ++k) {
        if (remainder & (1 << (24 + k))) {
            result = tinyopt_srdhm(result, multipliers[k]);
        }
    }
    return a == 0 ? INT32_MAX : result;
}

/* 1 / (1 + x) for x in [0, 1) in Q0.31; the result in Q0.31 is half the true value's Q1.30. */
static int32_t one_over_one_plus_x(int32_t a)
{
    const int64_t sum = (int64_t)a + INT32_MAX;
    const int32_t half_denominator = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
    const int32_t c48_17 = 1515870810, cneg32_17 = -1010580540;
    int32_t x = c48_17 + tinyopt_srdhm(half_denominator, cneg32_17);
    int i;
    for (i = 0; i < 3; ++i) {
        const int32_t hdx = tinyopt_srdhm(half_denominator, x);
        const int32_t one_minus = (1 << 29) - hdx;
        x = x + sat_shl(tinyopt_srdhm(x, one_minus), 2);
    }
    return sat_shl(x, 1);
}

static int count_leading_zeros(uint32_t x)
{
    int n = 0;
    if (x == 0) {
        return 32;
    }
    while (!(x & 0x80000000u)) {
        x <<= 1;
        ++n;
    }
    return n;
}

void tinyopt_softmax(const tinyopt_softmax_params *p, const int8_t *in, int8_t *out)
{
    int r, c;
    for (r = 0; r < p->rows; ++r) {
        const int8_t *x = in + r * p->depth;
        int8_t *y = out + r * p->depth;
        int32_t max_in_row = -128, sum_of_exps = 0, shifted_scale;
        int headroom_plus_one, num_bits_over_unit;
        for (c = 0; c < p->depth; ++c) {
            max_in_row = x[c] > max_in_row ? x[c] : max_in_row;
        }
        for (c = 0; c < p->depth; ++c) {
            const int32_t diff = (int32_t)x[c] - max_in_row;
            if (diff >= p->diff_min) {
                const int32_t scaled = tinyopt_srdhm((int32_t)((uint32_t)diff << p->input_left_shift),
                                                     p->input_multiplier);
                sum_of_exps += tinyopt_rdbpot(exp_negative(scaled), 12);
            }
        }
        headroom_plus_one = count_leading_zeros((uint32_t)sum_of_exps);
        num_bits_over_unit = 12 - headroom_plus_one;
        shifted_scale = one_over_one_plus_x(
            (int32_t)(((uint32_t)sum_of_exps << headroom_plus_one) - ((uint32_t)1 << 31)));
        for (c = 0; c < p->depth; ++c) {
            const int32_t diff = (int32_t)x[c] - max_in_row;
            if (diff >= p->diff_min) {
                const int32_t scaled = tinyopt_srdhm((int32_t)((uint32_t)diff << p->input_left_shift),
                                                     p->input_multiplier);
                const int32_t e = exp_negative(scaled);
                const int32_t unsat = tinyopt_rdbpot(tinyopt_srdhm(shifted_scale, e),
                                                     num_bits_over_unit + 31 - 8);
                y[c] = tinyopt_clamp8(unsat - 128, -128, 127);
            } else {
                y[c] = -128;
            }
        }
    }
}
