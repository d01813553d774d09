/* QUANTIZE between int16 and int8/int16 (quantize_int16.c): TFLM's Requantize, (x - input zero point)
 * times input scale / output scale as a fixed-point multiplier, plus the output zero point, saturated to
 * the output's type. The edges and requantizations of a 16x8 model; with a narrower clamp, int16 RELU
 * (TFLM's ReluQuantized) and RELU6 (the identity multiplier 2^30, shift 1, clamped to [zero, six]). */
#ifndef TINYOPT_QUANTIZE_INT16_H
#define TINYOPT_QUANTIZE_INT16_H

#include <stdint.h>

typedef struct {
    int32_t size;
    int32_t input_zero_point, output_zero_point, multiplier;
    int32_t shift;              /* TFLM's sign: positive = left */
    int32_t output_activation_min, output_activation_max;  /* within the output type's range */
} tinyopt_requantize16_params;

/* Element i is written after it is read: int16 -> int16 and int16 -> int8 may run in place. */
void tinyopt_requantize_s16_s16(const tinyopt_requantize16_params *p, const int16_t *in, int16_t *out);
void tinyopt_requantize_s16_s8(const tinyopt_requantize16_params *p, const int16_t *in, int8_t *out);
void tinyopt_requantize_s8_s16(const tinyopt_requantize16_params *p, const int8_t *in, int16_t *out);

#endif
