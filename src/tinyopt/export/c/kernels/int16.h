/* What the 16x8 kernels (int16 activations, int8 weights) share: TFLM's 64-bit requantization and the
 * int16 clamp. The kernels themselves are in conv_int16.c, fully_connected_int16.c, pool_int16.c,
 * elementwise_int16.c, softmax_int16.c and quantize_int16.c. */
#ifndef TINYOPT_INT16_H
#define TINYOPT_INT16_H

#include <stdint.h>

/* TFLM's MultiplyByQuantizedMultiplier(int64_t x, ...) of the 16x8 conv, depthwise and dense kernels: the
 * Q31 multiplier rounded to 15 bits (held at 0x7FFF), x * that + 2^(14 - shift), shifted right by
 * 15 - shift, cut to int32 as the reference's int32_t result is. |x| < 2^47 keeps the product in 64 bits. */
int32_t tinyopt_mbqm64(int64_t x, int32_t multiplier, int shift);

static inline int16_t tinyopt_clamp16(int32_t v, int32_t lo, int32_t hi)
{
    return (int16_t)(v < lo ? lo : (v > hi ? hi : v));
}

#endif
