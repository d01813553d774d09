/* 16x8 FULLY_CONNECTED (see fully_connected_int16.h). */
#include "tinyopt_fixedpoint.h"
#include "tinyopt_fully_connected_int16.h"
#include "tinyopt_int16.h"

void tinyopt_fully_connected_s16(const tinyopt_fc16_params *p, const int16_t *in, int16_t *out)
{
    int32_t b, c, d;
    for (b = 0; b < p->batches; ++b) {
        const int16_t *x = in + (int64_t)b * p->accum_depth;
        for (c = 0; c < p->out_c; ++c) {
            const int8_t *w = p->weights + (int64_t)c * p->accum_depth;
            int64_t acc = 0;
            int32_t y;
            for (d = 0; d < p->accum_depth; ++d) {
                acc += (w[d] + p->weights_offset) * (x[d] + p->input_offset);
            }
            if (p->bias) {
                acc += p->bias[c];
            }
            if (p->wide) {
                y = tinyopt_mbqm64(acc, p->multiplier[c], p->shift[c]);
            } else {  /* the reference's int32 accumulator: the same sum cut to 32 bits */
                y = tinyopt_mbqm((int32_t)(uint32_t)(uint64_t)acc, p->multiplier[c], p->shift[c]);
            }
            *out++ = tinyopt_clamp16(y + p->output_offset, p->output_activation_min, p->output_activation_max);
        }
    }
}
