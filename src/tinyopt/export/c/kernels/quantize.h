/* QUANTIZE int8 -> int8: a requantization to other parameters. */
#ifndef TINYOPT_QUANTIZE_H
#define TINYOPT_QUANTIZE_H

#include <stdint.h>

typedef struct {
    int size;
    int32_t input_zero_point, output_zero_point, multiplier;
    int shift;                  /* TFLM's sign: positive = left */
} tinyopt_quantize_params;

void tinyopt_quantize(const tinyopt_quantize_params *p, const int8_t *in, int8_t *out);

#endif
