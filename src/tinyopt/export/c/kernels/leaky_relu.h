/* LEAKY_RELU, int8: two requantizations of x - input zero point (see leaky_relu.c). */
#ifndef TINYOPT_LEAKY_RELU_H
#define TINYOPT_LEAKY_RELU_H

#include <stdint.h>

typedef struct {
    int size;
    int32_t input_zero_point, output_zero_point;
    int32_t output_multiplier_identity; /* s_in / s_out, for x >= 0 */
    int output_shift_identity;
    int32_t output_multiplier_alpha;    /* |s_in * alpha / s_out|, for x < 0 */
    int output_shift_alpha;
    int alpha_negative;                 /* 1: alpha < 0, the scaled value is negated */
} tinyopt_leaky_relu_params;

void tinyopt_leaky_relu(const tinyopt_leaky_relu_params *p, const int8_t *in, int8_t *out);

#endif
