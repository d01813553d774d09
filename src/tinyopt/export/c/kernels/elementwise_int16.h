/* Element-wise 16x8 operators (elementwise_int16.c): ADD, SUB and MUL with broadcasting or a constant
 * operand (TFLM's int16 AddElementwise / SubElementwise / MulElementwise: left shift 15 for ADD/SUB), and
 * LOGISTIC / TANH by TFLM's interpolated 256-entry sigmoid table (reference_integer_ops::Logistic/Tanh). */
#ifndef TINYOPT_ELEMENTWISE_INT16_H
#define TINYOPT_ELEMENTWISE_INT16_H

#include <stdint.h>

typedef struct {
    int32_t op;                 /* 0 ADD, 1 SUB, 2 MUL */
    int32_t input1_offset, input2_offset, output_offset, left_shift;
    int32_t input1_multiplier, input2_multiplier, output_multiplier;
    int32_t input1_shift, input2_shift, output_shift;
    int32_t output_activation_min, output_activation_max;
    /* the output walked as 4 dimensions (row-major); each input's stride per dimension, 0 where it is
     * broadcast. A constant operand is input1/input2 (else NULL: the next of the node's data inputs). */
    const int32_t *dims, *strides1, *strides2;
    const int16_t *input1, *input2;
} tinyopt_arithmetic16_params;

void tinyopt_arithmetic_s16(const tinyopt_arithmetic16_params *p, const int16_t *const *in,
                            int16_t *const *out);

typedef struct {
    int32_t size;
    int32_t tanh;               /* 0 LOGISTIC (Q0.15 out), 1 TANH */
    int32_t input_multiplier;   /* 0: the power-of-two case, 3 << input_left_shift */
    int32_t input_left_shift;
    const uint16_t *table;      /* sigmoid(i / 24) in 0.16 fixed point, i = 0..255 */
} tinyopt_sigmoid16_params;

/* Safe in place (out == in): element i is written after it is read. */
void tinyopt_sigmoid_s16(const tinyopt_sigmoid16_params *p, const int16_t *in, int16_t *out);

#endif
