/* Parameter blocks and entry points of the kernels. Every field is an integer computed at
 * generation time; nothing here is float. */
#ifndef TINYOPT_KERNELS_H
#define TINYOPT_KERNELS_H

#include <stdint.h>

typedef struct {
    int in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w;
    int stride_h, stride_w, dil_h, dil_w, pad_h, pad_w, depth_multiplier;
    int32_t input_zp, output_offset, act_min, act_max;
    const int8_t *weights;      /* conv [O][KH][KW][I]; depthwise [KH][KW][O] */
    const int32_t *bias;        /* bias + input_offset * sum(weights), per output channel */
    const int32_t *multiplier;
    const int32_t *shift;
} tinyopt_conv_params;

typedef struct {
    int batches, accum_depth, out_c;
    int32_t output_offset, act_min, act_max;
    const int8_t *weights;      /* [O][accum_depth] */
    const int32_t *bias;
    const int32_t *multiplier;
    const int32_t *shift;
} tinyopt_fc_params;

typedef struct {
    int in_h, in_w, channels, out_h, out_w, f_h, f_w, stride_h, stride_w, pad_h, pad_w;
    int32_t act_min, act_max;
} tinyopt_pool_params;

typedef struct {
    int size, left_shift;
    int32_t input1_offset, input2_offset, output_offset;
    int32_t input1_multiplier, input2_multiplier, output_multiplier;
    int input1_shift, input2_shift, output_shift;
    int32_t act_min, act_max;
} tinyopt_add_params;

typedef struct {
    int rows, depth;
    int32_t input_multiplier;
    int input_left_shift;
    int32_t diff_min;
} tinyopt_softmax_params;

/* Row-wise kernels: output rows are produced in order (reverse = bottom-up). With a scratch row the
 * row is finished before it is stored, which lets the planner overlap output and input. */
void tinyopt_conv2d(const tinyopt_conv_params *p, const int8_t *in, int8_t *out, int8_t *scratch,
                    int reverse);
void tinyopt_depthwise_conv2d(const tinyopt_conv_params *p, const int8_t *in, int8_t *out,
                              int8_t *scratch, int reverse);
void tinyopt_fully_connected(const tinyopt_fc_params *p, const int8_t *in, int8_t *out);
void tinyopt_average_pool2d(const tinyopt_pool_params *p, const int8_t *in, int8_t *out);
void tinyopt_max_pool2d(const tinyopt_pool_params *p, const int8_t *in, int8_t *out);
void tinyopt_add(const tinyopt_add_params *p, const int8_t *in1, const int8_t *in2, int8_t *out);
void tinyopt_softmax(const tinyopt_softmax_params *p, const int8_t *in, int8_t *out);

#endif
