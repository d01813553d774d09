/* ADD, int8, same shapes: both inputs are brought to a common scale with 20 bits of headroom, summed,
 * then requantized to the output (TFLM's reference). Element i is read before it is written, so the
 * output may alias either input. */
#include <string.h>

#include "tinyopt_fixedpoint.h"
#include "tinyopt_kernels.h"

/* tinyopt_mbqm for |x| < 2^30 and shift <= 0: tinyopt_mbqm_small, or for shift 0 its multiply alone. */
TINYOPT_INLINE int32_t scale_small(int32_t x, int32_t multiplier, int shift)
{
    return shift < 0 ? tinyopt_mbqm_small(x, multiplier, shift) : tinyopt_mbqm_small_noshift(x, multiplier);
}

int8_t tinyopt_add_one(const tinyopt_add_params *p, int32_t in1, int32_t in2)
{
    const int32_t a = (int32_t)((uint32_t)(p->input1_offset + in1) << p->left_shift);
    const int32_t b = (int32_t)((uint32_t)(p->input2_offset + in2) << p->left_shift);
    int32_t raw;
    if (p->small) {
        raw = scale_small(scale_small(a, p->input1_multiplier, p->input1_shift) +
                              scale_small(b, p->input2_multiplier, p->input2_shift),
                          p->output_multiplier, p->output_shift);
    } else {
        raw = tinyopt_mbqm(tinyopt_mbqm(a, p->input1_multiplier, p->input1_shift) +
                               tinyopt_mbqm(b, p->input2_multiplier, p->input2_shift),
                           p->output_multiplier, p->output_shift);
    }
    return tinyopt_clamp8(raw + p->output_offset, p->output_activation_min, p->output_activation_max);
}

void tinyopt_add(const tinyopt_add_params *p, const int8_t *in1, const int8_t *in2, int8_t *out)
{
    int i;
    for (i = 0; i < p->size; ++i) {
        out[i] = tinyopt_add_one(p, in1[i], in2[i]);
    }
}

void tinyopt_store_row(const tinyopt_conv_params *p, const int8_t *row, const int8_t *other, int8_t *dst,
                       int n)
{
    int i;
    if (p->add == NULL) {
        if (dst != row) {
            memcpy(dst, row, (size_t)n);
        }
        return;
    }
    for (i = 0; i < n; ++i) { /* other[i] is read before dst[i] is written: they may be the same byte */
        dst[i] = p->add_conv_first ? tinyopt_add_one(p->add, row[i], other[i])
                                   : tinyopt_add_one(p->add, other[i], row[i]);
    }
}
