/* MEAN over any axes with int16 input and output (reduce_int16.c), as TFLM's QuantizedMeanOrSum for int16:
 * the int32 sum (wrapping, as the reference's int32 accumulator does) minus input_zero_point * count,
 * requantized by one multiplier with 1/count folded in, plus the output zero point, clamped to int16. */
#ifndef TINYOPT_REDUCE_INT16_H
#define TINYOPT_REDUCE_INT16_H

#include <stdint.h>

/* The input walked as groups of kept and of reduced axes (size, stride in elements), as reduce.h. */
typedef struct {
    int32_t outer, count;       /* output elements; input elements averaged into each */
    int32_t kept_rank, reduce_rank;
    const int32_t *kept_dims, *kept_strides, *reduce_dims, *reduce_strides;
    int32_t input_zero_point, output_zero_point, multiplier, shift;
} tinyopt_mean16_params;

void tinyopt_mean_s16(const tinyopt_mean16_params *p, const int16_t *in, int16_t *out);

#endif
