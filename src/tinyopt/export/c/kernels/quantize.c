/* QUANTIZE int8 -> int8: TFLM's Requantize, (x - input zero point) times input scale / output scale as a
 * fixed-point multiplier, plus the output zero point, saturated. Element i is written after it is read,
 * so the output may overlap its dying input. */
#include "tinyopt_fixedpoint.h"
#include "tinyopt_quantize.h"

void tinyopt_quantize(const tinyopt_quantize_params *p, const int8_t *in, int8_t *out)
{
    int i;
    for (i = 0; i < p->size; ++i) {
        const int32_t v = tinyopt_mbqm(in[i] - p->input_zero_point, p->multiplier, p->shift);
        out[i] = tinyopt_clamp8(v + p->output_zero_point, -128, 127);
    }
}
