/* 16x8 MEAN (see reduce_int16.h). */
#include "tinyopt_fixedpoint.h"
#include "tinyopt_int16.h"
#include "tinyopt_reduce_int16.h"

/* Advance an odometer over dims[0..n) (last fastest) and return how far the offset moves. */
static int32_t step(int32_t *idx, const int32_t *dims, const int32_t *strides, int32_t n)
{
    int32_t delta = 0, i;
    for (i = n - 1; i >= 0; --i) {
        delta += strides[i];
        if (++idx[i] < dims[i]) {
            return delta;
        }
        idx[i] = 0;
        delta -= dims[i] * strides[i];
    }
    return delta;
}

void tinyopt_mean_s16(const tinyopt_mean16_params *p, const int16_t *in, int16_t *out)
{
    int32_t kept[4] = {0, 0, 0, 0};
    int32_t base = 0, o, r;
    for (o = 0; o < p->outer; ++o) {
        int32_t idx[4] = {0, 0, 0, 0};
        int32_t off = base, sum;
        int64_t acc = 0;
        for (r = 0; r < p->count; ++r) {
            acc += in[off];
            off += step(idx, p->reduce_dims, p->reduce_strides, p->reduce_rank);
        }
        sum = (int32_t)(uint32_t)(uint64_t)(acc - (int64_t)p->input_zero_point * p->count);
        out[o] = tinyopt_clamp16(tinyopt_mbqm(sum, p->multiplier, p->shift) + p->output_zero_point, -32768, 32767);
        base += step(kept, p->kept_dims, p->kept_strides, p->kept_rank);
    }
}
