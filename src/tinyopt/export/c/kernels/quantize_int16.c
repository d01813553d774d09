/* int16 requantizations (see quantize_int16.h). */
#include "tinyopt_fixedpoint.h"
#include "tinyopt_quantize_int16.h"

static int32_t requantize(const tinyopt_requantize16_params *p, int32_t x)
{
    const int32_t v = tinyopt_mbqm(x - p->input_zero_point, p->multiplier, p->shift) + p->output_zero_point;
    return v < p->output_activation_min ? p->output_activation_min
                                        : (v > p->output_activation_max ? p->output_activation_max : v);
}

void tinyopt_requantize_s16_s16(const tinyopt_requantize16_params *p, const int16_t *in, int16_t *out)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        out[i] = (int16_t)requantize(p, in[i]);
    }
}

void tinyopt_requantize_s16_s8(const tinyopt_requantize16_params *p, const int16_t *in, int8_t *out)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        out[i] = (int8_t)requantize(p, in[i]);
    }
}

void tinyopt_requantize_s8_s16(const tinyopt_requantize16_params *p, const int8_t *in, int16_t *out)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        out[i] = (int16_t)requantize(p, in[i]);
    }
}
