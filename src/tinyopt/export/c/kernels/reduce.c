/* MEAN, SUM and REDUCE_MAX over any axes, int8, as TFLM's reduce_common.cc: the sum in int32 minus
 * input_zero_point * count, requantized by one multiplier (MEAN: 1/count folded in), plus the output
 * zero point; or the maximum of the raw values (input and output share their quantization). */
#include "tinyopt_fixedpoint.h"
#include "tinyopt_reduce.h"

/* Advance an odometer over dims[0..n) (last fastest) and return how far the offset moves. */
static int32_t walk_step(int32_t *idx, const int32_t *dims, const int32_t *strides, int n)
{
    int32_t delta = 0;
    int i;
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

void tinyopt_reduce(const tinyopt_reduce_params *p, const int8_t *in, int8_t *out)
{
    /* the innermost reduced group is a plain strided loop; the others step an odometer */
    const int inner_rank = p->reduce_rank > 0 ? p->reduce_rank - 1 : 0;
    const int32_t inner_n = p->reduce_rank > 0 ? p->reduce_dims[inner_rank] : 1;
    const int32_t inner_stride = p->reduce_rank > 0 ? p->reduce_strides[inner_rank] : 1;
    const int32_t runs = p->count / inner_n;
    int32_t kept[4] = {0, 0, 0, 0};
    int32_t base = 0, o, r;
    for (o = 0; o < p->outer; ++o) {
        int32_t idx[4] = {0, 0, 0, 0};
        int32_t off = base, acc = p->op ? -128 : 0;
        for (r = 0; r < runs; ++r) {
            const int8_t *q = in + off;
            const int8_t *const end = q + inner_n * inner_stride;
            if (p->op) {
                for (; q != end; q += inner_stride) {
                    acc = *q > acc ? *q : acc;
                }
            } else {
                for (; q != end; q += inner_stride) {
                    acc += *q;
                }
            }
            off += walk_step(idx, p->reduce_dims, p->reduce_strides, inner_rank);
        }
        if (!p->op) {
            acc = tinyopt_mbqm(acc - p->input_zero_point * p->count, p->multiplier, p->shift)
                  + p->output_zero_point;
            acc = tinyopt_clamp8(acc, -128, 127);
        }
        out[o] = (int8_t)acc;
        base += walk_step(kept, p->kept_dims, p->kept_strides, p->kept_rank);
    }
}

/* A streamed MEAN or SUM over height and width (export/c/stream.py): per channel the int32 sum of its
 * count inputs, added row by row, requantized as above. */
void tinyopt_reduce_sums(const tinyopt_reduce_params *p, const int32_t *sums, int8_t *out)
{
    int32_t o;
    for (o = 0; o < p->outer; ++o) {
        const int32_t acc = tinyopt_mbqm(sums[o] - p->input_zero_point * p->count, p->multiplier, p->shift)
                            + p->output_zero_point;
        out[o] = (int8_t)tinyopt_clamp8(acc, -128, 127);
    }
}
