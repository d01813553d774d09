/* SPLIT / SPLIT_V / UNPACK, int8: TFLM's SplitImpl copies, for each outer index, output i's
 * run of bytes from where the previous one ended. */
#include <string.h>

#include "tinyopt_split.h"

void tinyopt_split(const tinyopt_split_params *p, const int8_t *const *in, int8_t *const *out)
{
    const int8_t *src = in[0];
    int k, i;
    for (k = 0; k < p->outer; ++k) {
        for (i = 0; i < p->parts; ++i) {
            memcpy(out[i] + (size_t)k * (size_t)p->run[i], src, (size_t)p->run[i]);
            src += p->run[i];
        }
    }
}
