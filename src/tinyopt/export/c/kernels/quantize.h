/* QUANTIZE int8 -> int8 (or uint8, a model's output): a requantization to other parameters. */
#ifndef TINYOPT_QUANTIZE_H
#define TINYOPT_QUANTIZE_H

#include <stdint.h>

typedef struct {
    int size;
    int32_t input_zero_point, output_zero_point, multiplier;
    int shift;                  /* TFLM's sign: positive = left */
    int32_t output_min, output_max;  /* the output type's range: -128..127, or 0..255 for uint8 */
} tinyopt_quantize_params;

void tinyopt_quantize(const tinyopt_quantize_params *p, const int8_t *in, int8_t *out);

#endif
