/* DEPTHWISE_CONV_2D, int8 per-channel: TFLM's reference integer depthwise arithmetic. Output channel
 * oc = ic * depth_multiplier + m reads input channel ic. Input offset folded into the bias as in
 * conv2d.c. For each output pixel the taps are resolved once to row pointers (a padded tap points at a
 * row of input zero points), then every channel runs its taps with no bounds checks; weights are stored
 * channel-major [O][KH*KW] so a channel's taps are adjacent. */
/* On a host without the Arm DSP path the int8 dot products are plain loops: let GCC vectorize them even
 * when the library is built with -O2 (its -O2 cost model leaves such loops scalar). */
#if defined(__GNUC__) && !defined(__clang__) && !(defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP)
#pragma GCC optimize("O3")
#endif
#include "tinyopt_fixedpoint.h"
#include "tinyopt_kernels.h"
#include "tinyopt_simd.h"

#define TINYOPT_DW_MAX_TAPS 64

#if defined(TINYOPT_HAVE_MM2X2_ASM)
/* One output pixel of a 3x3 layer with packed lanes, 'small' accumulators and no fused ADD (layers
 * whose requantization the packed asm path cannot take: a narrowed clamp, a long shift). */
TINYOPT_INLINE void dw_pixel_fast(const tinyopt_conv_params *p, const int8_t *const *tap, int8_t *d)
{
    const int32_t *bias = p->bias, *mult = p->multiplier, *shift = p->shift, *lanes = p->lanes;
    const int32_t offset = p->output_offset, lo = p->output_activation_min, hi = p->output_activation_max;
    const int c_n = p->in_c;
    int g;
    for (g = 0; g < c_n; g += 4, d += 4, lanes += 18, bias += 4, mult += 4, shift += 4) {
        int32_t acc[4];
        acc[0] = bias[0];
        acc[1] = bias[1];
        acc[2] = bias[2];
        acc[3] = bias[3];
        tinyopt_dw9x4_asm(tap, g, lanes, acc);
        d[0] = tinyopt_clamp8(tinyopt_mbqm_small(acc[0], mult[0], shift[0]) + offset, lo, hi);
        d[1] = tinyopt_clamp8(tinyopt_mbqm_small(acc[1], mult[1], shift[1]) + offset, lo, hi);
        d[2] = tinyopt_clamp8(tinyopt_mbqm_small(acc[2], mult[2], shift[2]) + offset, lo, hi);
        d[3] = tinyopt_clamp8(tinyopt_mbqm_small(acc[3], mult[3], shift[3]) + offset, lo, hi);
    }
}
#endif

static void depthwise_row(const tinyopt_conv_params *p, const int8_t *in, int oy, int8_t *dst,
                          const int8_t *other)
{
    const int taps = p->filter_h * p->filter_w, dm = p->depth_multiplier, c_n = p->in_c, small = p->small_acc;
    /* read once: int8 stores may alias *p, so fields used in the loop would be reloaded per store */
    const int32_t *bias = p->bias, *mult = p->multiplier, *shift = p->shift;
    const int32_t offset = p->output_offset, lo = p->output_activation_min, hi = p->output_activation_max;
    const int8_t *tap[TINYOPT_DW_MAX_TAPS];
    int off[TINYOPT_DW_MAX_TAPS]; /* each tap's byte offset from the window's top-left input pixel */
    const int y0 = oy * p->stride_h - p->padding_h;
    const int rows_inside = y0 >= 0 && y0 + (p->filter_h - 1) * p->dilation_h < p->in_h;
    int ox, ky, kx, c, m, t;
    for (ky = 0, t = 0; ky < p->filter_h; ++ky) {
        for (kx = 0; kx < p->filter_w; ++kx, ++t) {
            off[t] = (ky * p->dilation_h * p->in_w + kx * p->dilation_w) * c_n;
        }
    }
    for (ox = 0; ox < p->out_w; ++ox) {
        const int x0 = ox * p->stride_w - p->padding_w;
        int8_t *d = dst + ox * p->out_c;
        const int8_t *o = other != NULL ? other + ox * p->out_c : NULL;
        if (rows_inside && x0 >= 0 && x0 + (p->filter_w - 1) * p->dilation_w < p->in_w) { /* no tap in the padding */
            const int8_t *base = in + (y0 * p->in_w + x0) * c_n;
            for (t = 0; t < taps; ++t) {
                tap[t] = base + off[t];
            }
        } else {
            for (ky = 0, t = 0; ky < p->filter_h; ++ky) {
                const int iy = y0 + ky * p->dilation_h;
                for (kx = 0; kx < p->filter_w; ++kx, ++t) {
                    const int ix = x0 + kx * p->dilation_w;
                    tap[t] = (iy < 0 || iy >= p->in_h || ix < 0 || ix >= p->in_w)
                                 ? p->pad_row : in + (iy * p->in_w + ix) * c_n;
                }
            }
        }
#if defined(TINYOPT_HAVE_MM2X2_ASM)
        if (p->rq != NULL && o == NULL) { /* lanes, full int8 clamp, packed requantization: all in asm */
            tinyopt_dw9q_asm(tap, c_n, p->lanes, p->rq, d);
            continue;
        }
        if (p->lanes != NULL) { /* 3x3, multiplier 1, channels % 4 == 0 */
            int g, j;
            if (o == NULL && small) { /* the common case: requantize without per-output branches */
                dw_pixel_fast(p, tap, d);
                continue;
            }
            for (g = 0; g < c_n; g += 4) {
                int32_t acc[4];
                acc[0] = bias[g];
                acc[1] = bias[g + 1];
                acc[2] = bias[g + 2];
                acc[3] = bias[g + 3];
                tinyopt_dw9x4_asm(tap, g, p->lanes + g / 2 * 9, acc);
                for (j = 0; j < 4; ++j) {
                    int32_t v = (small ? tinyopt_mbqm_small(acc[j], mult[g + j], shift[g + j])
                                       : tinyopt_mbqm(acc[j], mult[g + j], shift[g + j])) + offset;
                    v = v < lo ? lo : (v > hi ? hi : v);
                    d[g + j] = o != NULL ? (p->add_conv_first ? tinyopt_add_one(p->add, v, o[g + j])
                                                              : tinyopt_add_one(p->add, o[g + j], v))
                                         : (int8_t)v;
                }
            }
            continue;
        }
#endif
        if (taps == 9 && dm == 1) {
            const int8_t *t0 = tap[0], *t1 = tap[1], *t2 = tap[2], *t3 = tap[3], *t4 = tap[4];
            const int8_t *t5 = tap[5], *t6 = tap[6], *t7 = tap[7], *t8 = tap[8];
            const int8_t *w = p->weights;
            for (c = 0; c < c_n; ++c, w += 9) {
                int32_t acc = bias[c];
                acc += t0[c] * w[0] + t1[c] * w[1] + t2[c] * w[2] + t3[c] * w[3] + t4[c] * w[4];
                acc += t5[c] * w[5] + t6[c] * w[6] + t7[c] * w[7] + t8[c] * w[8];
                acc = (small ? tinyopt_mbqm_small(acc, mult[c], shift[c]) : tinyopt_mbqm(acc, mult[c], shift[c]))
                      + offset;
                acc = acc < lo ? lo : (acc > hi ? hi : acc);
                d[c] = o != NULL ? (p->add_conv_first ? tinyopt_add_one(p->add, acc, o[c])
                                                      : tinyopt_add_one(p->add, o[c], acc))
                                 : (int8_t)acc;
            }
            continue;
        }
        for (c = 0; c < c_n; ++c) {
            for (m = 0; m < dm; ++m) {
                const int oc = c * dm + m;
                const int8_t *w = p->weights + oc * taps;
                int32_t acc = p->bias[oc];
                for (t = 0; t < taps; ++t) {
                    acc += tap[t][c] * w[t];
                }
                acc = (small ? tinyopt_mbqm_small(acc, p->multiplier[oc], p->shift[oc])
                             : tinyopt_mbqm(acc, p->multiplier[oc], p->shift[oc])) + p->output_offset;
                acc = acc < p->output_activation_min ? p->output_activation_min : (acc > p->output_activation_max ? p->output_activation_max : acc);
                d[oc] = o != NULL ? (p->add_conv_first ? tinyopt_add_one(p->add, acc, o[oc])
                                                       : tinyopt_add_one(p->add, o[oc], acc))
                                  : (int8_t)acc;
            }
        }
    }
}

void tinyopt_depthwise_conv2d(const tinyopt_conv_params *p, const int8_t *in, int8_t *out,
                              int8_t *scratch, int reverse, const int8_t *other)
{
    const int row_bytes = p->out_w * p->out_c;
    int k;
    for (k = 0; k < p->out_h; ++k) {
        const int oy = reverse ? p->out_h - 1 - k : k;
        const int8_t *other_row = other != NULL ? other + oy * row_bytes : NULL;
        if (scratch != NULL) {
            depthwise_row(p, in, oy, scratch, NULL);
            tinyopt_store_row(p, scratch, other_row, out + oy * row_bytes, row_bytes);
        } else {
            depthwise_row(p, in, oy, out + oy * row_bytes, other_row);
        }
    }
}
