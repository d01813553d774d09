/* TRANSPOSE_CONV: the transpose of a 2-D convolution (each input pixel scattered through the kernel). */
#ifndef TINYOPT_TRANSPOSE_CONV_H
#define TINYOPT_TRANSPOSE_CONV_H

#include <stdint.h>

typedef struct {
    int in_h, in_w, in_c, out_h, out_w, out_c, filter_h, filter_w;
    int tap_y0, tap_y1, tap_x0, tap_x1; /* kernel rows [tap_y0, tap_y1) and columns hold the non-zero weights */
    int stride_h, stride_w, padding_h, padding_w;
    int32_t input_offset, output_offset, output_activation_min, output_activation_max;
    const int8_t *weights;      /* [O][KH][KW][I], as in the model */
    const int32_t *bias;        /* per output channel (zeros without a bias) */
    const int32_t *multiplier;
    const int32_t *shift;
} tinyopt_transpose_conv_params;

/* in[0]: the NHWC input (the model's third operand; the output shape and weights are in the struct). */
void tinyopt_transpose_conv(const tinyopt_transpose_conv_params *p, const int8_t *const *in,
                            int8_t *const *out);

#endif
