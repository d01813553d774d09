/* SOFTMAX with int16 input and output (softmax_int16.c), as TFLM's reference_ops::SoftmaxInt16: the
 * differences to the row maximum rescaled so that 65535 steps are 10.0, exp from an interpolated 513-entry
 * table, the sum normalised and its reciprocal from a second table (1 / (1 + x)); output Q0.15. */
#ifndef TINYOPT_SOFTMAX_INT16_H
#define TINYOPT_SOFTMAX_INT16_H

#include <stdint.h>

typedef struct {
    int32_t rows, depth;
    int32_t input_multiplier, input_left_shift;
    const int16_t *exp_lut;     /* 513 entries: exp on [-10, 0] */
    const int16_t *recip_lut;   /* 513 entries: 1 / (1 + x) on [0, 1] */
} tinyopt_softmax16_params;

void tinyopt_softmax_s16(const tinyopt_softmax16_params *p, const int16_t *in, int16_t *out);

#endif
