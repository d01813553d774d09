/* MIRROR_PAD, int8 (see mirror_pad.h). */
#include "tinyopt_mirror_pad.h"

static int32_t mirror_pad_source(const tinyopt_mirror_pad_params *p, int32_t o, int axis)
{
    const int32_t n = p->in_dims[axis];
    int32_t i = o - p->before[axis];
    if (i < 0) {
        i = p->mode == 0 ? -i : -i - 1;
    } else if (i >= n) {
        i = p->mode == 0 ? 2 * n - 2 - i : 2 * n - 1 - i;
    }
    return i;
}

void tinyopt_mirror_pad(const tinyopt_mirror_pad_params *p, const int8_t *in, int8_t *out)
{
    const int32_t *d = p->out_dims, *n = p->in_dims;
    int32_t o0, o1, o2, o3;
    for (o0 = 0; o0 < d[0]; ++o0) {
        const int32_t i0 = mirror_pad_source(p, o0, 0);
        for (o1 = 0; o1 < d[1]; ++o1) {
            const int32_t i1 = mirror_pad_source(p, o1, 1) + n[1] * i0;
            for (o2 = 0; o2 < d[2]; ++o2) {
                const int8_t *row = in + (mirror_pad_source(p, o2, 2) + n[2] * i1) * n[3];
                for (o3 = 0; o3 < d[3]; ++o3) {
                    *out++ = row[mirror_pad_source(p, o3, 3)];
                }
            }
        }
    }
}
