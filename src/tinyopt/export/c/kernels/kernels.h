/* Parameter blocks and entry points of the kernels. Every field is an integer computed at
 * generation time; nothing here is float. */
#ifndef TINYOPT_KERNELS_H
#define TINYOPT_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* The Cortex-M4 assembly loops (simd.h): Thumb-2 with the DSP extension, GCC-compatible inline asm,
 * optimized build. The generated model.c tests the same macro to store the conv layers' requantization
 * constants in the packed form those loops read (and only that form). */
#if defined(__GNUC__) && defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && defined(__thumb2__) && \
    defined(__OPTIMIZE__)
#define TINYOPT_HAVE_MM2X2_ASM 1
#endif
/* Widest conv whose fused residual ADD still takes the asm path (a pixel pair's outputs on the stack). */
#define TINYOPT_FUSED_MAX_C 256

/* int8 constant arrays start on a word: the Cortex-M4 loops read them with LDRD, which must not be
 * unaligned. Other compilers take the portable C path, which reads bytes. */
#if defined(__GNUC__)
#define TINYOPT_ALIGN4 __attribute__((aligned(4)))
#else
#define TINYOPT_ALIGN4
#endif

typedef struct {
    int size, left_shift;
    int32_t input1_offset, input2_offset, output_offset;
    int32_t input1_multiplier, input2_multiplier, output_multiplier;
    int input1_shift, input2_shift, output_shift;
    int32_t output_activation_min, output_activation_max;
    int small;                  /* 1: |operands| < 2^30 and shifts <= 0: the short requantization (add.c) */
} tinyopt_add_params;

typedef struct {
    int in_h, in_w, in_c, out_h, out_w, out_c, filter_h, filter_w;
    int stride_h, stride_w, dilation_h, dilation_w, padding_h, padding_w, depth_multiplier;
    int patch;                  /* conv: KH*KW*I rounded up to a multiple of 4 (weights zero-padded) */
    int small_acc;              /* 1: |accumulator| < 2^30 and every shift <= 0 (tinyopt_mbqm_small) */
    int twin_row;               /* conv with wpairs: bytes per kernel row of the twin layout (filter_w * in_c
                                 * rounded up to a word, zero weights after), or 0: patches gathered */
    int row_pairs;              /* conv with wpairs and an odd row width: two rows at a time (pixel pairs across
                                 * their boundary; a 2-row scratch in place) */
    int dw_pairs;               /* depthwise on the M4: lanes and rq are the pair loop's (two output rows at once,
                                 * see pack_depthwise_pairs; a 2-row scratch in place, a band in col) */
    int32_t input_zero_point, output_offset, output_activation_min, output_activation_max;
    const int8_t *weights;      /* conv [O][patch]; depthwise [O][KH*KW] */
    const int32_t *bias;        /* bias + input_offset * sum(weights), per output channel */
    const int32_t *multiplier;
    const int32_t *shift;
    const int8_t *pad_row;      /* depthwise: in_c bytes of the input zero point, fed at padded taps */
    const int32_t *lanes;       /* depthwise pair loop: [C/4][9][2] words of two doubled int16 weights
                                 * (w_c | w_c+2 << 16, w_c+1 | w_c+3 << 16), or NULL */
    const int32_t *rq;          /* the M4 loop's requantization, or NULL: conv (with wpairs) 16 words per
                                 * group of 4 filters (pack_conv_twins), depthwise 16 per 4 channels
                                 * (pack_depthwise_pairs) */
    const int32_t *wpairs;      /* conv on the M4: twin weight words of the 2-pixel x 4-filter loop (see
                                 * pack_twins), or NULL */
    const tinyopt_add_params *add; /* fused residual ADD applied to each output, or NULL */
    int add_conv_first;         /* 1: the conv output is the ADD's first operand */
} tinyopt_conv_params;

typedef struct {
    int batches, accum_depth, out_c, small_acc;
    int32_t output_offset, output_activation_min, output_activation_max;
    const int8_t *weights;      /* [O][accum_depth] */
    const int32_t *bias;
    const int32_t *multiplier;
    const int32_t *shift;
    const int32_t *wpairs;      /* M4 loops: twin words, groups of 6 filters then pairs (pack_twin_groups in
                                 * ops/fully_connected.py), or NULL */
    const int32_t *rq;          /* their packed requantization, or NULL */
} tinyopt_fc_params;

typedef struct {
    int in_h, in_w, channels, out_h, out_w, filter_h, filter_w, stride_h, stride_w, padding_h, padding_w;
    int32_t output_activation_min, output_activation_max;
} tinyopt_pool_params;

/* The part of pooling window (oy, ox) inside the input: filter rows [fy0, fy1) and columns [fx0, fx1),
 * the filter's top-left tap being input pixel (y0, x0); count = the taps inside. */
typedef struct {
    int y0, x0, fy0, fy1, fx0, fx1, count;
} tinyopt_window;

static inline tinyopt_window tinyopt_pool_window(const tinyopt_pool_params *p, int oy, int ox)
{
    tinyopt_window w;
    w.y0 = oy * p->stride_h - p->padding_h;
    w.x0 = ox * p->stride_w - p->padding_w;
    w.fy0 = w.y0 < 0 ? -w.y0 : 0;
    w.fx0 = w.x0 < 0 ? -w.x0 : 0;
    w.fy1 = p->filter_h < p->in_h - w.y0 ? p->filter_h : p->in_h - w.y0;
    w.fx1 = p->filter_w < p->in_w - w.x0 ? p->filter_w : p->in_w - w.x0;
    w.count = (w.fy1 - w.fy0) * (w.fx1 - w.fx0);
    return w;
}

typedef struct {
    int rows, depth;
    int32_t input_multiplier;
    int input_left_shift;
    int32_t diff_min;
} tinyopt_softmax_params;

/* Row-wise kernels: output rows are produced in order (reverse = bottom-up). With a scratch row the
 * row is finished before it is stored, which lets the planner overlap output and input (the depthwise
 * pair loop finishes two rows at once: its scratch holds two). ``col`` holds a pixel pair's widened
 * patches (conv) or the pair loop's band of input words (depthwise), or is NULL. ``other`` is the second
 * operand of a fused ADD (same shape as the output), or NULL. */
void tinyopt_conv2d(const tinyopt_conv_params *p, const int8_t *in, int8_t *out, int8_t *scratch,
                    int8_t *col, int reverse, const int8_t *other);
/* CONV_2D for layers of odd output width: a lone pixel (an odd row's or band's last) runs on the Cortex-M4
 * single-pixel loop of conv2d_lone.c instead of as a pair with itself. tinyopt_conv2d_run is the body of
 * both entries: `single` runs a lone pixel's twin-loop pass, NULL pairs it with itself. */
typedef void (*tinyopt_conv_single)(const void *args);
void tinyopt_conv2d_lone(const tinyopt_conv_params *p, const int8_t *in, int8_t *out, int8_t *scratch,
                         int8_t *col, int reverse, const int8_t *other);
void tinyopt_conv2d_run(const tinyopt_conv_params *p, const int8_t *in, int8_t *out, int8_t *scratch,
                        int8_t *col, int reverse, const int8_t *other, tinyopt_conv_single single);
void tinyopt_depthwise_conv2d(const tinyopt_conv_params *p, const int8_t *in, int8_t *out, int8_t *scratch,
                              int8_t *col, int reverse, const int8_t *other);
int8_t tinyopt_add_one(const tinyopt_add_params *p, int32_t a, int32_t b);
/* out[i] = ADD(a[i], b[i]) for i < n; out may be a or b (each element is read before it is written). */
void tinyopt_add_run(const tinyopt_add_params *p, const int8_t *a, const int8_t *b, int8_t *out, int n);
/* Store a finished row: through the fused ADD when there is one, else a copy. */
void tinyopt_store_row(const tinyopt_conv_params *p, const int8_t *row, const int8_t *other, int8_t *dst,
                       int n);
void tinyopt_fully_connected(const tinyopt_fc_params *p, const int8_t *in, int8_t *out);
void tinyopt_average_pool2d(const tinyopt_pool_params *p, const int8_t *in, int8_t *out);
void tinyopt_sum_rows(const int8_t *in, int pixels, int channels, int32_t *sums);
void tinyopt_average_pool2d_sums(const tinyopt_pool_params *p, const int32_t *sums, int8_t *out);
void tinyopt_max_pool2d(const tinyopt_pool_params *p, const int8_t *in, int8_t *out);
void tinyopt_add(const tinyopt_add_params *p, const int8_t *in1, const int8_t *in2, int8_t *out);
void tinyopt_softmax(const tinyopt_softmax_params *p, const int8_t *in, int8_t *out);

#endif
