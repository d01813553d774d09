/* HARD_SWISH, int8: TFLM's 16-bit fixed-point hard swish (see hard_swish.c). */
#ifndef TINYOPT_HARD_SWISH_H
#define TINYOPT_HARD_SWISH_H

#include <stdint.h>

typedef struct {
    int size;
    int32_t input_zero_point, output_zero_point;
    int32_t reluish_multiplier_fixedpoint_int16; /* input x 2^7 -> [-3, 3] spread over int16 */
    int reluish_multiplier_exponent;
    int32_t output_multiplier_fixedpoint_int16;  /* input x 2^7 -> output scale */
    int output_multiplier_exponent;              /* <= 0 */
} tinyopt_hard_swish_params;

void tinyopt_hard_swish(const tinyopt_hard_swish_params *p, const int8_t *in, int8_t *out);

#endif
