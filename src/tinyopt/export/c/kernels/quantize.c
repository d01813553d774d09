/* QUANTIZE int8 -> int8 or uint8: TFLM's Requantize, (x - input zero point) times input scale / output scale
 * as a fixed-point multiplier, plus the output zero point, saturated to the output type's range and stored as
 * its byte (a uint8 value's low 8 bits). Element i is written after it is read, so the output may overlap
 * its dying input. */
#include "tinyopt_fixedpoint.h"
#include "tinyopt_quantize.h"

void tinyopt_quantize(const tinyopt_quantize_params *p, const int8_t *in, int8_t *out)
{
    int i;
    for (i = 0; i < p->size; ++i) {
        const int32_t v = tinyopt_mbqm(in[i] - p->input_zero_point, p->multiplier, p->shift);
        int32_t q = v + p->output_zero_point;
        q = q < p->output_min ? p->output_min : q > p->output_max ? p->output_max : q;
        ((uint8_t *)(void *)out)[i] = (uint8_t)(q & 0xFF);
    }
}
