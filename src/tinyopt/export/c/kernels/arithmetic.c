/* ADD, SUB, MUL with broadcasting, int8 (see arithmetic.h). */
#include "tinyopt_arithmetic.h"
#include "tinyopt_fixedpoint.h"

static int8_t arithmetic_one(const tinyopt_arithmetic_params *p, int32_t a, int32_t b)
{
    int32_t raw;
    if (p->op == 2) {
        raw = tinyopt_mbqm((a + p->input1_offset) * (b + p->input2_offset), p->output_multiplier,
                           p->output_shift);
    } else {
        const int32_t sa = tinyopt_mbqm((a + p->input1_offset) * (1 << p->left_shift), p->input1_multiplier,
                                        p->input1_shift);
        const int32_t sb = tinyopt_mbqm((b + p->input2_offset) * (1 << p->left_shift), p->input2_multiplier,
                                        p->input2_shift);
        raw = tinyopt_mbqm(p->op == 0 ? sa + sb : sa - sb, p->output_multiplier, p->output_shift);
    }
    return tinyopt_clamp8(raw + p->output_offset, p->output_activation_min, p->output_activation_max);
}

void tinyopt_arithmetic(const tinyopt_arithmetic_params *p, const int8_t *const *in, int8_t *const *out)
{
    const int8_t *a = p->input1 ? p->input1 : in[0];
    const int8_t *b = p->input2 ? p->input2 : in[p->input1 ? 0 : 1];
    const int32_t *d = p->dims, *sa = p->strides1, *sb = p->strides2;
    int8_t *y = out[0];
    int32_t i0, i1, i2, i3;
    for (i0 = 0; i0 < d[0]; ++i0) {
        for (i1 = 0; i1 < d[1]; ++i1) {
            for (i2 = 0; i2 < d[2]; ++i2) {
                const int8_t *pa = a + i0 * sa[0] + i1 * sa[1] + i2 * sa[2];
                const int8_t *pb = b + i0 * sb[0] + i1 * sb[1] + i2 * sb[2];
                for (i3 = 0; i3 < d[3]; ++i3, pa += sa[3], pb += sb[3]) {
                    *y++ = arithmetic_one(p, *pa, *pb);
                }
            }
        }
    }
}
