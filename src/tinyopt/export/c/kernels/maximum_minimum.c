/* MAXIMUM and MINIMUM, int8, as TFLM's MaximumMinimumBroadcastSlow: the raw values compared (both
 * inputs and the output share one scale and zero point), el1 > el2 ? el1 : el2 (or <). */
#include "tinyopt_maximum_minimum.h"

void tinyopt_maximum_minimum(const tinyopt_maximum_minimum_params *p, const int8_t *const *in,
                             int8_t *const *out)
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
                    if (p->is_max) {
                        *y++ = *pa > *pb ? *pa : *pb;
                    } else {
                        *y++ = *pa < *pb ? *pa : *pb;
                    }
                }
            }
        }
    }
}
