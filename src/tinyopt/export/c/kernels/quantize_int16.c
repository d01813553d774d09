/* int16 requantizations (see quantize_int16.h). */
#include "tinyopt_fixedpoint.h"
#include "tinyopt_int16.h"
#include "tinyopt_quantize_int16.h"

static int32_t requantize(const tinyopt_requantize16_params *p, int32_t x)
{
    return tinyopt_mbqm(x - p->input_zero_point, p->multiplier, p->shift) + p->output_zero_point;
}

void tinyopt_requantize_s16_s16(const tinyopt_requantize16_params *p, const int16_t *in, int16_t *out)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        out[i] = tinyopt_clamp16(requantize(p, in[i]), -32768, 32767);
    }
}

void tinyopt_requantize_s16_s8(const tinyopt_requantize16_params *p, const int16_t *in, int8_t *out)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        out[i] = tinyopt_clamp8(requantize(p, in[i]), -128, 127);
    }
}

void tinyopt_requantize_s8_s16(const tinyopt_requantize16_params *p, const int8_t *in, int16_t *out)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        out[i] = tinyopt_clamp16(requantize(p, in[i]), -32768, 32767);
    }
}
