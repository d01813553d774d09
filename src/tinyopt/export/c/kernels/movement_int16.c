/* int16 data movement (see movement_int16.h). */
#include <string.h>

#include "tinyopt_movement_int16.h"

void tinyopt_concatenation_s16(const tinyopt_concat16_params *p, const int16_t *const *in, int16_t *const *out)
{
    int16_t *dst = out[0];
    int32_t k, i;
    for (k = 0; k < p->outer; ++k) {
        for (i = 0; i < p->parts; ++i) {
            memcpy(dst, in[i] + (size_t)k * (size_t)p->run[i], (size_t)p->run[i] * sizeof(int16_t));
            dst += p->run[i];
        }
    }
}

void tinyopt_pad_s16(const tinyopt_pad16_params *p, const int16_t *in, int16_t *out)
{
    const int32_t *n = p->count, *s = p->step;
    int32_t i, i0, i1, i2, i3;
    for (i = 0; i < p->out_size; ++i) {
        out[i] = (int16_t)p->value;
    }
    for (i0 = 0; i0 < n[0]; ++i0) {
        for (i1 = 0; i1 < n[1]; ++i1) {
            for (i2 = 0; i2 < n[2]; ++i2) {
                for (i3 = 0; i3 < n[3]; ++i3) {
                    memcpy(out + p->start + i0 * s[0] + i1 * s[1] + i2 * s[2] + i3 * s[3], in,
                           (size_t)n[4] * sizeof(int16_t));
                    in += n[4];
                }
            }
        }
    }
}
