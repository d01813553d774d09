/* SQUARED_DIFFERENCE with broadcasting, int8 (squared_difference.c). */
#ifndef TINYOPT_SQUARED_DIFFERENCE_H
#define TINYOPT_SQUARED_DIFFERENCE_H

#include <stdint.h>

/* The output walked as 4 dimensions (see maximum_minimum.h); a constant operand is input1/input2. */
typedef struct {
    int32_t input1_offset, input2_offset, output_offset;
    int left_shift;
    int32_t input1_multiplier, input2_multiplier, output_multiplier;
    int input1_shift, input2_shift, output_shift;
    const int32_t *dims, *strides1, *strides2;
    const int8_t *input1, *input2;
} tinyopt_squared_difference_params;

void tinyopt_squared_difference(const tinyopt_squared_difference_params *p, const int8_t *const *in,
                                int8_t *const *out);

#endif
