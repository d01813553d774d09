/* FULLY_CONNECTED with int16 activations and int8 weights (fully_connected_int16.c), as TFLM's
 * reference_integer_ops::FullyConnected(PerChannel) for int16: sum (w + weights_offset)(x + input_offset)
 * in int64 (an int64 bias, or none) or int32 (an int32 bias, wrapping), requantized per output, plus the
 * output offset. */
#ifndef TINYOPT_FULLY_CONNECTED_INT16_H
#define TINYOPT_FULLY_CONNECTED_INT16_H

#include <stdint.h>

typedef struct {
    int32_t batches, accum_depth, out_c;
    int32_t input_offset, weights_offset, output_offset;
    int32_t wide;               /* 1: int64 accumulator; 0: int32 (an int32 bias) */
    int32_t output_activation_min, output_activation_max;
    const int8_t *weights;      /* [O][accum_depth] */
    const int64_t *bias;        /* [O], or NULL */
    const int32_t *multiplier;  /* [O] (one scale per tensor repeated) */
    const int32_t *shift;       /* [O] */
} tinyopt_fc16_params;

void tinyopt_fully_connected_s16(const tinyopt_fc16_params *p, const int16_t *in, int16_t *out);

#endif
