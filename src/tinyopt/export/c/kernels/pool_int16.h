/* MAX_POOL_2D and AVERAGE_POOL_2D on int16 (pool_int16.c), as TFLM's reference_integer_ops::MaxPool /
 * AveragePool for int16: windows clipped to the input, the average rounded half away from zero over the
 * taps inside, the fused activation's clamp. */
#ifndef TINYOPT_POOL_INT16_H
#define TINYOPT_POOL_INT16_H

#include <stdint.h>

typedef struct {
    int32_t in_h, in_w, channels, out_h, out_w, filter_h, filter_w, stride_h, stride_w, padding_h, padding_w;
    int32_t output_activation_min, output_activation_max;
} tinyopt_pool16_params;

void tinyopt_max_pool2d_s16(const tinyopt_pool16_params *p, const int16_t *in, int16_t *out);
void tinyopt_average_pool2d_s16(const tinyopt_pool16_params *p, const int16_t *in, int16_t *out);

#endif
