/* HARD_SWISH, int8: x * relu6(x + 3) / 6 as TFLM's reference computes it, in 16-bit fixed point. The input
 * goes to a "high-resolution" scale (x 2^7); one multiplier takes it to the output scale, another maps
 * [-3, 3] onto int16 (saturating outside), and that "reluish" value, moved into [0, 1], scales the first.
 * Every value fits int16; the helpers are gemmlowp's int16 versions, computed in int32. Element i is
 * read before it is written, so the output may overlap the input. */
#include "tinyopt_hard_swish.h"

/* (a * b + 2^14) >> 15: the rounding doubling high multiply (its truncating division with a +/-nudge
 * equals this floor); only -32768 * -32768 saturates. */
static int32_t srdhm16(int32_t a, int32_t b)
{
    if (a == -32768 && b == -32768) {
        return 32767;
    }
    return (a * b + (1 << 14)) >> 15;
}

/* a * b / 2^15 rounded towards zero (no rounding nudge: it cancels the bias of the rounding above). */
static int32_t sdhm16(int32_t a, int32_t b)
{
    const int32_t ab = a * b;
    return ab >= 0 ? ab >> 15 : -((-ab) >> 15);
}

/* x / 2^e rounded half away from zero, with gemmlowp's int16 mask: from e = 16 on the mask 2^e - 1 is
 * int16 -1 (every bit), so the remainder is x itself and the threshold -1 + (x < 0). */
static int32_t rdbpot16(int32_t x, int e)
{
    const int32_t mask = e >= 16 ? -1 : (1 << e) - 1;
    const int32_t threshold = (e >= 16 ? -1 : mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> e) + ((x & mask) > threshold ? 1 : 0);
}

/* x * 2^amount clamped to int16; from 2^15 on every nonzero int16 saturates, so the shift is capped. */
static int32_t saturating_left_shift16(int32_t x, int amount)
{
    const int32_t v = x * (1 << (amount < 15 ? amount : 15));
    return v > 32767 ? 32767 : (v < -32768 ? -32768 : v);
}

void tinyopt_hard_swish(const tinyopt_hard_swish_params *p, const int8_t *in, int8_t *out)
{
    const int exp = p->reluish_multiplier_exponent;
    int i;
    for (i = 0; i < p->size; ++i) {
        const int32_t hires = (in[i] - p->input_zero_point) * (1 << 7);
        const int32_t preshift_output = srdhm16(hires, p->output_multiplier_fixedpoint_int16);
        int32_t reluish = hires;
        int32_t v;
        if (exp > 0) { /* all but the last bit of the left shift, so saturation happens at the end */
            reluish = saturating_left_shift16(reluish, exp - 1);
        }
        reluish = srdhm16(reluish, p->reluish_multiplier_fixedpoint_int16);
        if (exp > 0) {
            reluish = saturating_left_shift16(reluish, 1);
        } else if (exp < 0) {
            reluish = rdbpot16(reluish, -exp);
        }
        reluish = (reluish + (1 << 15)) >> 1; /* [-1, 1] -> [0, 1] */
        v = rdbpot16(sdhm16(reluish, preshift_output), -p->output_multiplier_exponent) + p->output_zero_point;
        out[i] = (int8_t)(v < -128 ? -128 : (v > 127 ? 127 : v));
    }
}
