/* The strided walk (see tinyopt_strided_slice.h): TFLM's StridedSlice loops with the steps precomputed at
 * generation time. A contiguous innermost run is one memmove: a slice may run in place over its dying
 * input, whose bytes it reads at or after the place it writes them. */
#include <string.h>

#include "tinyopt_strided_slice.h"

void tinyopt_strided_slice(const tinyopt_strided_slice_params *p, const int8_t *in, int8_t *out)
{
    const int32_t *n = p->count, *s = p->step;
    int32_t i0, i1, i2, i3, i4;
    for (i0 = 0; i0 < n[0]; ++i0) {
        for (i1 = 0; i1 < n[1]; ++i1) {
            for (i2 = 0; i2 < n[2]; ++i2) {
                for (i3 = 0; i3 < n[3]; ++i3) {
                    const int8_t *src = in + p->start + i0 * s[0] + i1 * s[1] + i2 * s[2] + i3 * s[3];
                    if (s[4] == 1) {
                        memmove(out, src, (size_t)n[4]);
                        out += n[4];
                    } else {
                        for (i4 = 0; i4 < n[4]; ++i4) {
                            *out++ = src[i4 * s[4]];
                        }
                    }
                }
            }
        }
    }
}
