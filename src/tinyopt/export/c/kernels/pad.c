/* PAD / PADV2, int8: TFLM's Pad writes the value outside the input's box and the input inside; here the
 * whole output takes the value first and each input row is then copied to its place. */
#include <string.h>

#include "tinyopt_pad.h"

void tinyopt_pad(const tinyopt_pad_params *p, const int8_t *in, int8_t *out)
{
    const int32_t *n = p->count, *s = p->step;
    int32_t i0, i1, i2, i3;
    memset(out, (int)(uint8_t)(int8_t)p->value, (size_t)p->out_size);
    for (i0 = 0; i0 < n[0]; ++i0) {
        for (i1 = 0; i1 < n[1]; ++i1) {
            for (i2 = 0; i2 < n[2]; ++i2) {
                for (i3 = 0; i3 < n[3]; ++i3) {
                    memcpy(out + p->start + i0 * s[0] + i1 * s[1] + i2 * s[2] + i3 * s[3], in, (size_t)n[4]);
                    in += n[4];
                }
            }
        }
    }
}
