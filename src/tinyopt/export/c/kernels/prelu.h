/* PRELU, int8: alpha per element of the input's trailing axes (see prelu.c). */
#ifndef TINYOPT_PRELU_H
#define TINYOPT_PRELU_H

#include <stdint.h>

typedef struct {
    int outer, alpha_size;              /* the input is outer blocks of alpha_size values */
    int32_t input_offset, alpha_offset, output_offset;
    int32_t output_multiplier_1;        /* s_in / s_out, for x >= 0 */
    int output_shift_1;
    int32_t output_multiplier_2;        /* s_in * s_alpha / s_out, for x < 0 */
    int output_shift_2;
    const int8_t *alpha;                /* alpha_size values (per channel: C) */
} tinyopt_prelu_params;

void tinyopt_prelu(const tinyopt_prelu_params *p, const int8_t *in, int8_t *out);

#endif
