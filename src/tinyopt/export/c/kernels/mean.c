/* MEAN over the spatial axes of an NHWC tensor, int8: TFLM's QuantizedMeanOrSum. The raw sum minus
 * zero_point * count, times (input scale / output scale / count) folded into one multiplier, plus the
 * output zero point. */
#include "tinyopt_fixedpoint.h"
#include "tinyopt_kernels.h"

void tinyopt_mean(const tinyopt_mean_params *p, const int8_t *in, int8_t *out)
{
    int c, i;
    for (c = 0; c < p->channels; ++c) {
        int32_t sum = 0;
        for (i = 0; i < p->count; ++i) {
            sum += in[i * p->channels + c];
        }
        sum -= p->input_zero_point * p->count;
        sum = tinyopt_mbqm(sum, p->multiplier, p->shift) + p->output_zero_point;
        out[c] = tinyopt_clamp8(sum, -128, 127);
    }
}
