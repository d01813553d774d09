/* GATHER, int8: TFLM's Gather loops (batch, outer, coordinate) copying `inner` bytes from the indexed
 * slice. A single byte (a channel permutation: inner = 1) is a plain load. */
#include <string.h>

#include "tinyopt_gather.h"

void tinyopt_gather(const tinyopt_gather_params *p, const int8_t *in, int8_t *out)
{
    int b, o, k;
    for (b = 0; b < p->batches; ++b) {
        const int32_t *index = p->index + b * p->coords;
        for (o = 0; o < p->outer; ++o) {
            const int8_t *src = in + ((size_t)b * p->outer + o) * (size_t)p->axis_size * (size_t)p->inner;
            if (p->inner == 1) {
                for (k = 0; k < p->coords; ++k) {
                    out[k] = src[index[k]];
                }
                out += p->coords;
                continue;
            }
            for (k = 0; k < p->coords; ++k) {
                memcpy(out, src + (size_t)index[k] * (size_t)p->inner, (size_t)p->inner);
                out += p->inner;
            }
        }
    }
}
