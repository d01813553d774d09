/* 16x8 element-wise operators (see elementwise_int16.h). */
#include "tinyopt_elementwise_int16.h"
#include "tinyopt_fixedpoint.h"
#include "tinyopt_int16.h"

static int16_t arithmetic_one(const tinyopt_arithmetic16_params *p, int32_t a, int32_t b)
{
    int32_t raw;
    if (p->op == 2) {  /* |a * b| <= 2^30 with symmetric operands */
        raw = tinyopt_mbqm((a + p->input1_offset) * (b + p->input2_offset), p->output_multiplier,
                           p->output_shift);
    } else {  /* 65535 << 15 still fits: the scaled operands and their sum stay in int32 */
        const int32_t sa = tinyopt_mbqm((a + p->input1_offset) * (1 << p->left_shift), p->input1_multiplier,
                                        p->input1_shift);
        const int32_t sb = tinyopt_mbqm((b + p->input2_offset) * (1 << p->left_shift), p->input2_multiplier,
                                        p->input2_shift);
        raw = tinyopt_mbqm(p->op == 0 ? sa + sb : sa - sb, p->output_multiplier, p->output_shift);
    }
    return tinyopt_clamp16(raw + p->output_offset, p->output_activation_min, p->output_activation_max);
}

void tinyopt_arithmetic_s16(const tinyopt_arithmetic16_params *p, const int16_t *const *in,
                            int16_t *const *out)
{
    const int16_t *a = p->input1 ? p->input1 : in[0];
    const int16_t *b = p->input2 ? p->input2 : in[p->input1 ? 0 : 1];
    const int32_t *d = p->dims, *sa = p->strides1, *sb = p->strides2;
    int16_t *y = out[0];
    int32_t i0, i1, i2, i3;
    for (i0 = 0; i0 < d[0]; ++i0) {
        for (i1 = 0; i1 < d[1]; ++i1) {
            for (i2 = 0; i2 < d[2]; ++i2) {
                const int16_t *pa = a + i0 * sa[0] + i1 * sa[1] + i2 * sa[2];
                const int16_t *pb = b + i0 * sb[0] + i1 * sb[1] + i2 * sb[2];
                for (i3 = 0; i3 < d[3]; ++i3, pa += sa[3], pb += sb[3]) {
                    *y++ = arithmetic_one(p, *pa, *pb);
                }
            }
        }
    }
}

/* LOGISTIC interpolates the table with 9 fractional index bits (Q3.12 in after the 3/4 range expansion),
 * TANH with 8 (tanh(x) = 2 sigmoid(2x) - 1); both on |x|, mirrored for negative inputs. */
void tinyopt_sigmoid_s16(const tinyopt_sigmoid16_params *p, const int16_t *in, int16_t *out)
{
    int32_t multiplier = p->input_multiplier, shift = p->input_left_shift, i;
    const int frac = p->tanh ? 8 : 9;
    int32_t round;
    if (multiplier == 0) {  /* power-of-two input scale */
        multiplier = 3 << shift;
        shift = 0;
    }
    round = shift > 0 ? 1 << (shift - 1) : 0;
    for (i = 0; i < p->size; ++i) {
        const int32_t v = (in[i] * multiplier + round) >> shift;
        const uint32_t a = (uint32_t)(v < 0 ? -v : v);
        const uint32_t uh = a >> frac;
        int32_t r;
        if (uh >= 255) {
            r = p->tanh ? 0xFFFF << 8 : 0x7FFF << 10;
        } else {
            const uint32_t ua = p->table[uh], ub = p->table[uh + 1];
            r = (int32_t)((ua << frac) + (a & ((1u << frac) - 1u)) * (ub - ua));
        }
        if (p->tanh) {
            r = v >= 0 ? r - (1 << 23) + (1 << 7) : -r + (1 << 23) + (1 << 7) - 1;
            out[i] = (int16_t)(r >> 8);
        } else {
            r = v >= 0 ? r + (1 << 9) : (1 << 25) - r + (1 << 9) - 1;
            out[i] = (int16_t)(r >> 10);
        }
    }
}
