/* ADD, SUB and MUL with broadcasting or a constant operand, int8 (arithmetic.c), as TFLM's
 * AddElementwise / SubElementwise / MulElementwise per element (same-shape ADDs take add.c's path). */
#ifndef TINYOPT_ARITHMETIC_H
#define TINYOPT_ARITHMETIC_H

#include <stdint.h>

typedef struct {
    int op;                   /* 0 ADD, 1 SUB, 2 MUL */
    int32_t input1_offset, input2_offset, output_offset;
    int left_shift;           /* ADD/SUB: inputs scaled up before requantization */
    int32_t input1_multiplier, input2_multiplier, output_multiplier;
    int input1_shift, input2_shift, output_shift;
    int32_t output_activation_min, output_activation_max;
    /* the output walked as 4 dimensions (row-major); each input's stride per dimension, 0 where it is
     * broadcast. A constant operand is input1/input2 (else NULL: the next of the node's data inputs). */
    const int32_t *dims, *strides1, *strides2;
    const int8_t *input1, *input2;
} tinyopt_arithmetic_params;

void tinyopt_arithmetic(const tinyopt_arithmetic_params *p, const int8_t *const *in, int8_t *const *out);

#endif
