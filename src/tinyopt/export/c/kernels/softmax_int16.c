/* 16x8 SOFTMAX (see softmax_int16.h). The exp values wait in the output row, as in the reference. */
#include "tinyopt_fixedpoint.h"
#include "tinyopt_softmax_int16.h"

/* TFLM's LUTLookup for int16: the top 9 bits index, the low 7 interpolate. */
static int16_t lookup(int16_t value, const int16_t *lut)
{
    const int32_t index = 256 + (value >> 7);
    const int32_t offset = value & 0x7f;
    const int32_t base = lut[index];
    const int32_t slope = (int16_t)(lut[index + 1] - lut[index]);
    return (int16_t)(base + ((slope * offset + 64) >> 7));
}

static int16_t sat16(int32_t v)
{
    return (int16_t)(v < -32768 ? -32768 : (v > 32767 ? 32767 : v));
}

static int leading_zeros(uint32_t x)
{
    int n = 0;
    while (n < 32 && !(x & 0x80000000u)) {
        x <<= 1;
        ++n;
    }
    return n;
}

void tinyopt_softmax_s16(const tinyopt_softmax16_params *p, const int16_t *in, int16_t *out)
{
    int32_t r, c;
    for (r = 0; r < p->rows; ++r, in += p->depth, out += p->depth) {
        int16_t max = -32768;
        int32_t sum = 0, shifted;
        int head, right;
        int16_t recip;
        for (c = 0; c < p->depth; ++c) {
            max = in[c] > max ? in[c] : max;
        }
        for (c = 0; c < p->depth; ++c) {
            const int32_t scaled = tinyopt_mbqm(in[c] - max, p->input_multiplier, p->input_left_shift);
            out[c] = lookup(sat16(scaled + 32767), p->exp_lut);
            sum += out[c];
        }
        head = leading_zeros((uint32_t)sum);
        shifted = (int32_t)((((int64_t)sum << (head - 1)) + (1 << 13)) >> 14);
        recip = lookup(sat16(shifted - (1 << 15) - (1 << 16)), p->recip_lut);
        right = 31 - head;
        for (c = 0; c < p->depth; ++c) {
            const int32_t v = (int32_t)(((int64_t)out[c] * recip + ((int64_t)1 << (right - 1))) >> right);
            out[c] = (int16_t)(v < 0 ? 0 : (v > 32767 ? 32767 : v));
        }
    }
}
