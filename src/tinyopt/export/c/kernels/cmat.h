/* Layers whose weights stay compressed in flash: conv, dense and depthwise kernels that compute from
 * packed 4- and 2-bit values, codebook indices or index-coded sparse rows directly, with no decompressed
 * copy of the weights anywhere (tinyopt.export.c.compressed packs them and says which file runs which).
 *
 * A conv or dense layer is a matrix of O filters by K weights (a conv filter's K = KH*KW*I in the
 * patch order of its [O][KH][KW][I] weight). A layout file (cmat_<layout>.c) walks that matrix in its
 * own format and multiplies it with up to TINYOPT_CMAT_TILE input vectors at once (im2col patches, or
 * rows of a dense layer's input); cmat.c gathers the patches, adds nothing else and requantizes, as
 * TFLM's reference kernels do: acc = bias + sum w * (x + input_offset), with the input offset folded into
 * the bias at generation time and the input zero point fed at padded taps. */
#ifndef TINYOPT_CMAT_H
#define TINYOPT_CMAT_H

#include <stdint.h>

#include "tinyopt_fixedpoint.h"

#define TINYOPT_CMAT_TILE 4 /* input vectors per pass: a layout decodes its weights once for all of them */

typedef struct {
    const void *weights;        /* the layout's stream (see each cmat_<layout>.c) */
    const uint8_t *deltas;      /* sparse: column steps, one per stored entry */
    const uint16_t *counts;     /* sparse: stored entries per filter */
    const int8_t *table;        /* codebook values: one table, or one per channel (table_stride apart) */
    const int32_t *bias;        /* bias + input_offset * sum(weights), per output channel */
    const int32_t *multiplier;  /* per output channel, or one (per_channel 0) */
    const int8_t *shift;
    const int8_t *pad_row;      /* depthwise: in_c bytes of the input zero point, read at padded taps */
    int32_t depth;              /* K: weights per filter (conv: KH*KW*I; depthwise: KH*KW) */
    int32_t row_stride;         /* bytes per filter in the weights stream (depthwise: per tap) */
    int32_t batches;            /* dense: input rows */
    int32_t table_stride;       /* 0: one table for every filter */
    int32_t input_zero_point, output_offset, output_activation_min, output_activation_max;
    /* geometry, checked to fit 16 bits at generation */
    int16_t in_h, in_w, in_c, out_h, out_w, out_c, filter_h, filter_w;
    int16_t stride_h, stride_w, dilation_h, dilation_w, padding_h, padding_w, depth_multiplier;
    int8_t small_acc;           /* 1: |accumulator| < 2^30 and every shift <= -1 (tinyopt_mbqm_small) */
    int8_t per_channel;         /* 1: one multiplier and shift per output channel; 0: one for all */
    int8_t bits;                /* codebook index width; sparse and depthwise: value width (4 or 8) */
    int8_t tile;                /* input vectors per pass (TINYOPT_CMAT_TILE, or fewer dense-layer rows) */
} tinyopt_cmat_params;

/* The layout's matrix times n <= tile vectors, requantized: output o of vector i goes to
 * out[i * ostride + o]. The vectors are x + i * xstride (K int8 each), or, as the layout asks the driver
 * (its form): 16-bit lanes on the Cortex-M4 (form 1, see below; xstride 0) or, for several vectors,
 * transposed, x[k * TINYOPT_CMAT_TILE + i] (form 2; xstride TINYOPT_CMAT_TILE). dec: decoding room. */
typedef void (*tinyopt_cmat_rows)(const tinyopt_cmat_params *p, const int8_t *x, int xstride, int n,
                                  int8_t *out, int ostride, int8_t *dec);

/* Requantize and store n accumulators of output channel o. */
void tinyopt_cmat_store(const tinyopt_cmat_params *p, int o, const int32_t *acc, int n, int8_t *out,
                        int ostride);
/* acc[i] = bias + sum_k w[k] * x[i * xstride + k], for a decoded int8 filter w of K weights. */
void tinyopt_cmat_dot(const tinyopt_cmat_params *p, const int8_t *w, int o, const int8_t *x, int xstride,
                      int n, int32_t *acc);

/* The drivers, called by each layout's entry points with its form (0 plain, 1 lanes, 2 transposed).
 * col (word-aligned): a conv's patches (TILE * Ka bytes, Ka = K rounded up to 4; transposed in form 2),
 * then, in form 1, the lanes (tile * K16 * 2 bytes, K16 = K rounded up to 16), then K16 bytes of decoding
 * room for a codebook layout. scratch/reverse: the in-place row contract of the conv kernels (an output
 * row is stored once computed, rows top-down or bottom-up). */
void tinyopt_cmat_conv(const tinyopt_cmat_params *p, tinyopt_cmat_rows rows, int form, const int8_t *in,
                       int8_t *out, int8_t *scratch, int8_t *col, int reverse);
void tinyopt_cmat_fc(const tinyopt_cmat_params *p, tinyopt_cmat_rows rows, int form, const int8_t *in,
                     int8_t *out, int8_t *col);

/* Entry points: conv (CONV_2D) and fc (FULLY_CONNECTED) per layout, and the depthwise kernel. */
#define TINYOPT_CMAT_ENTRIES(layout) \
    void tinyopt_cconv_##layout(const tinyopt_cmat_params *p, const int8_t *in, int8_t *out, int8_t *scratch, \
                                int8_t *col, int reverse, const int8_t *other); \
    void tinyopt_cfc_##layout(const tinyopt_cmat_params *p, const int8_t *in, int8_t *out, int8_t *scratch, \
                              int8_t *col, int reverse, const int8_t *other);
TINYOPT_CMAT_ENTRIES(i8)
TINYOPT_CMAT_ENTRIES(p4)
TINYOPT_CMAT_ENTRIES(p2)
TINYOPT_CMAT_ENTRIES(lut)
TINYOPT_CMAT_ENTRIES(sparse)

/* DEPTHWISE_CONV_2D with weights [KH*KW][C*M] (tap-major) as int8 (bits 8) or signed nibbles (bits 4). */
void tinyopt_cdw(const tinyopt_cmat_params *p, const int8_t *in, int8_t *out, int8_t *scratch, int reverse,
                 const int8_t *other);

#if defined(__GNUC__) && defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && defined(__thumb2__)
/* The Cortex-M4 path: the input vectors of a pass are widened once into 16-bit lanes, four words per 8
 * values, (x0, x2) (x1, x3) (x4, x6) (x5, x7), interleaved as lanes[(group * tile + vector) * 4 + j],
 * zero-padded to whole 16-value blocks; every filter is then multiplied with SMLAD on them. */
#define TINYOPT_CMAT_DSP 1
static inline uint32_t tinyopt_cm_sxtb16(uint32_t x)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1" : "=r"(r) : "r"(x));
    return r;
}
static inline int32_t tinyopt_cm_smlabb(uint32_t a, int32_t b, int32_t acc)
{
    int32_t r;
    __asm__("smlabb %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
}
static inline int32_t tinyopt_cm_smlatt(uint32_t a, uint32_t b, int32_t acc)
{
    int32_t r;
    __asm__("smlatt %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
}
static inline int32_t tinyopt_cm_smlatb(uint32_t a, int32_t b, int32_t acc)
{
    int32_t r;
    __asm__("smlatb %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
}
static inline uint32_t tinyopt_cm_sxtb16_ror8(uint32_t x)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}
static inline int32_t tinyopt_cm_smlad(uint32_t a, uint32_t b, int32_t acc)
{
    int32_t r;
    __asm__("smlad %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
}
/* One group of 8 weights, as lane pairs (w0, w2) (w1, w3) (w4, w6) (w5, w7), against vector lanes x. */
static inline int32_t tinyopt_cm_group(uint32_t l0, uint32_t l1, uint32_t l2, uint32_t l3, const uint32_t *x,
                                       int32_t a)
{
    a = tinyopt_cm_smlad(l0, x[0], a);
    a = tinyopt_cm_smlad(l1, x[1], a);
    a = tinyopt_cm_smlad(l2, x[2], a);
    return tinyopt_cm_smlad(l3, x[3], a);
}
#endif

#endif
