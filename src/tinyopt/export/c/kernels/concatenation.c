/* CONCATENATION / PACK, int8: TFLM's Concatenation copies, for each outer index, input i's run of bytes
 * after the previous one; the inputs carry the output's scale and zero point, nothing is rescaled. */
#include <string.h>

#include "tinyopt_concatenation.h"

void tinyopt_concatenation(const tinyopt_concatenation_params *p, const int8_t *const *in, int8_t *const *out)
{
    int8_t *dst = out[0];
    int k, i;
    for (k = 0; k < p->outer; ++k) {
        for (i = 0; i < p->parts; ++i) {
            memcpy(dst, in[i] + (size_t)k * (size_t)p->run[i], (size_t)p->run[i]);
            dst += p->run[i];
        }
    }
}
