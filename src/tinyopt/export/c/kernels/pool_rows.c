/* A streamed global average pool or MEAN (export/c/stream.py): rows of the input are added into int32
 * channel sums (zeroed when the segment starts) as they are computed, then divided once (the MEAN's
 * requantization is in reduce.c). The sums are the whole-image kernels' integers, rounded as
 * average_pool2d.c rounds them, so the result is the same. A file of its own: only a library that
 * streams into a global pool carries it. */
#include "tinyopt_fixedpoint.h"
#include "tinyopt_kernels.h"

/* Four channels at a time, their sums held in registers over the band's pixels (the sums are not reloaded
 * and stored per pixel), then any channels left one by one. */
void tinyopt_sum_rows(const int8_t *in, int pixels, int channels, int32_t *sums)
{
    int i, c;
    for (c = 0; c + 4 <= channels; c += 4) {
        int32_t s0 = sums[c], s1 = sums[c + 1], s2 = sums[c + 2], s3 = sums[c + 3];
        const int8_t *x = in + c;
        for (i = 0; i < pixels; ++i, x += channels) {
            s0 += x[0];
            s1 += x[1];
            s2 += x[2];
            s3 += x[3];
        }
        sums[c] = s0;
        sums[c + 1] = s1;
        sums[c + 2] = s2;
        sums[c + 3] = s3;
    }
    for (; c < channels; ++c) {
        const int8_t *x = in + c;
        for (i = 0; i < pixels; ++i, x += channels) {
            sums[c] += *x;
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
