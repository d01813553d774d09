/* Element-wise int8 operators by table lookup (see lut.h): one load per element. */
#include "tinyopt_lut.h"

void tinyopt_lut(const tinyopt_lut_params *p, const int8_t *in, int8_t *out)
{
    const int8_t *t = p->table + 128;
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        out[i] = t[in[i]];
    }
}
