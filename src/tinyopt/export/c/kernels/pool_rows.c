/* A streamed global average pool or MEAN (export/c/stream.py): rows of the input are added into int32
 * channel sums (zeroed when the segment starts) as they are computed, then divided once (the MEAN's
 * requantization is in reduce.c). The sums are the whole-image kernels' integers, rounded as
 * average_pool2d.c rounds them, so the result is the same. A file of its own: only a library that
 * streams into a global pool carries it. */
#include "tinyopt_fixedpoint.h"
#include "tinyopt_kernels.h"

void tinyopt_sum_rows(const int8_t *in, int pixels, int channels, int32_t *sums)
{
    int i, c;
    for (i = 0; i < pixels; ++i, in += channels) {
        for (c = 0; c < channels; ++c) {
            sums[c] += in[c];
        }
    }
}

void tinyopt_average_pool2d_sums(const tinyopt_pool_params *p, const int32_t *sums, int8_t *out)
{
    const int32_t count = p->in_h * p->in_w;
    int c;
    for (c = 0; c < p->channels; ++c) {
        const int32_t acc = sums[c] > 0 ? (sums[c] + count / 2) / count : (sums[c] - count / 2) / count;
        out[c] = tinyopt_clamp8(acc, p->output_activation_min, p->output_activation_max);
    }
}
