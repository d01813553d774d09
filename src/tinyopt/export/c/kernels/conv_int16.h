/* CONV_2D and DEPTHWISE_CONV_2D with int16 activations and int8 weights (conv_int16.c), as TFLM's
 * reference_integer_ops::ConvPerChannel / DepthwiseConvPerChannel for int16: no offsets (the 16x8 scheme
 * is symmetric; padded taps add nothing), an int64 accumulator and bias requantized by tinyopt_mbqm64, or,
 * for a conv with an int32 bias, an int32 accumulator (wrapping) and tinyopt_mbqm. */
#ifndef TINYOPT_CONV_INT16_H
#define TINYOPT_CONV_INT16_H

#include <stdint.h>

typedef struct {
    int32_t in_h, in_w, in_c, out_h, out_w, out_c, filter_h, filter_w;
    int32_t stride_h, stride_w, dilation_h, dilation_w, padding_h, padding_w, depth_multiplier;
    int32_t wide;               /* 1: int64 accumulator (int64 bias, or none); 0: int32 (an int32 conv bias) */
    int32_t output_activation_min, output_activation_max;
    const int8_t *weights;      /* conv [O][KH][KW][I]; depthwise [KH][KW][O], as TFLite stores them */
    const int64_t *bias;        /* [O] (int32 values when !wide), or NULL */
    const int32_t *multiplier;  /* [O] */
    const int32_t *shift;       /* [O], TFLM's sign: positive = left */
} tinyopt_conv16_params;

void tinyopt_conv2d_s16(const tinyopt_conv16_params *p, const int16_t *in, int16_t *out);
void tinyopt_depthwise_conv2d_s16(const tinyopt_conv16_params *p, const int16_t *in, int16_t *out);

#endif
