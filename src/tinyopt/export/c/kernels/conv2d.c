/* CONV_2D, int8 with per-channel requantization: the arithmetic of TFLM's reference integer conv.
 * The input offset is folded into the bias at generation time (sum w*(x+off) = sum w*x + off*sum w),
 * so a padded tap feeds the input zero point, which contributes exactly 0 as in the reference.
 * Each output pixel's input patch is gathered once (im2col, two pixels at a time) and multiplied by
 * two filters at once, so every load feeds two or four multiply-accumulates. */
/* On a host without the Arm DSP path the int8 dot products are plain loops: let GCC vectorize them even
 * when the library is built with -O2 (its -O2 cost model leaves such loops scalar). */
#if defined(__GNUC__) && !defined(__clang__) && !(defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP)
#pragma GCC optimize("O3")
#endif
#include <string.h>

#include "tinyopt_fixedpoint.h"
#include "tinyopt_kernels.h"
#include "tinyopt_simd.h"

static int is_direct(const tinyopt_conv_params *p)
{
    return p->filter_h == 1 && p->filter_w == 1 && p->padding_h == 0 && p->padding_w == 0 && p->patch == p->in_c;
}

/* The input patch of output pixel (oy, ox) in weight order [KH][KW][I], zero-padded to p->patch. */
static const int8_t *patch_of(const tinyopt_conv_params *p, const int8_t *in, int oy, int ox, int8_t *buf)
{
    const int y0 = oy * p->stride_h - p->padding_h, x0 = ox * p->stride_w - p->padding_w;
    const int seg = p->filter_w * p->in_c;
    int8_t *d = buf;
    int ky, kx;
    if (is_direct(p)) {
        return in + (y0 * p->in_w + x0) * p->in_c;
    }
    for (ky = 0; ky < p->filter_h; ++ky, d += seg) {
        const int iy = y0 + ky * p->dilation_h;
        if (iy < 0 || iy >= p->in_h) {
            memset(d, p->input_zero_point, (size_t)seg);
        } else if (p->dilation_w == 1 && x0 >= 0 && x0 + p->filter_w <= p->in_w) {
            memcpy(d, in + (iy * p->in_w + x0) * p->in_c, (size_t)seg);
        } else if (p->dilation_w == 1) { /* a run of padding, the taps inside in one copy, padding again */
            /* taps [lo, hi) are inside; padding wider than the kernel leaves none */
            const int lo = x0 >= 0 ? 0 : (-x0 < p->filter_w ? -x0 : p->filter_w);
            const int right = p->in_w - x0 < p->filter_w ? p->in_w - x0 : p->filter_w, hi = right > lo ? right : lo;
            memset(d, p->input_zero_point, (size_t)(lo * p->in_c));
            if (hi > lo) {
                memcpy(d + lo * p->in_c, in + (iy * p->in_w + x0 + lo) * p->in_c, (size_t)((hi - lo) * p->in_c));
            }
            memset(d + hi * p->in_c, p->input_zero_point, (size_t)((p->filter_w - hi) * p->in_c));
        } else {
            for (kx = 0; kx < p->filter_w; ++kx) {
                const int ix = x0 + kx * p->dilation_w;
                if (ix < 0 || ix >= p->in_w) {
                    memset(d + kx * p->in_c, p->input_zero_point, (size_t)p->in_c);
                } else {
                    memcpy(d + kx * p->in_c, in + (iy * p->in_w + ix) * p->in_c, (size_t)p->in_c);
                }
            }
        }
    }
    if (p->patch > p->filter_h * seg) {
        memset(d, 0, (size_t)(p->patch - p->filter_h * seg)); /* meets zero weights */
    }
    return buf;
}

/* Requantization constants read once per row: stores through int8 pointers may alias anything, so
 * fields read from *p inside the loop would be reloaded after every store. */
typedef struct {
    const int32_t *mult, *shift;
    int32_t offset, lo, hi;
    int small;
    const tinyopt_add_params *add;
    int conv_first;
} requant_t;

TINYOPT_INLINE void put(const requant_t *q, int8_t *dst, const int8_t *other, int i, int32_t acc, int oc)
{
    acc = (q->small ? tinyopt_mbqm_small(acc, q->mult[oc], q->shift[oc])
                    : tinyopt_mbqm(acc, q->mult[oc], q->shift[oc])) + q->offset;
    acc = acc < q->lo ? q->lo : (acc > q->hi ? q->hi : acc);
    if (other != NULL) { /* fused residual ADD: other[i] is read before dst[i] (maybe the same byte) */
        dst[i] = q->conv_first ? tinyopt_add_one(q->add, acc, other[i]) : tinyopt_add_one(q->add, other[i], acc);
    } else {
        dst[i] = (int8_t)acc;
    }
}

#if defined(TINYOPT_HAVE_MM2X2_ASM)
/* Two pixels' int8 values, 4 at a time (block i at a + i * step and b + i * step), sign-extended into
 * 16-bit lanes and interleaved per block [a even, a odd, b even, b odd]: the layout of the M4 loops.
 * Written front to back, so xw may lie over a and b as long as block i's reads precede its writes. */
static void widen_two(const int8_t *a, const int8_t *b, int step, int blocks, uint32_t *xw)
{
    int i;
    for (i = 0; i < blocks; ++i, a += step, b += step, xw += 4) {
        const uint32_t u = tinyopt_ld4(a), v = tinyopt_ld4(b);
        xw[0] = tinyopt_sxtb16(u);
        xw[1] = tinyopt_sxtb16_ror8(u);
        xw[2] = tinyopt_sxtb16(v);
        xw[3] = tinyopt_sxtb16_ror8(v);
    }
}

static int window_inside(const tinyopt_conv_params *p, int oy, int ox)
{
    const int y0 = oy * p->stride_h - p->padding_h, x0 = ox * p->stride_w - p->padding_w;
    return y0 >= 0 && y0 + (p->filter_h - 1) * p->dilation_h < p->in_h && x0 >= 0 && x0 + p->filter_w <= p->in_w;
}

/* The patches of pixels (oy, ox0) and (oy, ox1) in the layout of the M4 loops, in col (4P bytes for a
 * patch of P). A 1x1 layer's patches are its input pixels, widened from where they are. Otherwise each
 * patch is gathered into the lower half of col (or read as whole words straight from the input rows),
 * the two are interleaved per 4 bytes into the upper half, and that is widened front to back over col
 * (block i reads bytes 2P + 8i.. and writes 16i..16i + 16 <= 2P + 8i + 8: nothing unread is lost). */
static const uint32_t *widen_pair(const tinyopt_conv_params *p, const int8_t *in, int oy, int ox0, int ox1,
                                  int8_t *col)
{
    const int n = p->patch, blocks = n / 4, seg = p->filter_w * p->in_c;
    uint32_t *mix = (uint32_t *)(void *)(col + 2 * n), *slot = (uint32_t *)(void *)col;
    int i;
    if (is_direct(p)) {
        const int8_t *a = in + (oy * p->stride_h * p->in_w + ox0 * p->stride_w) * n;
        widen_two(a, a + (ox1 - ox0) * p->stride_w * n, 4, blocks, slot);
        return slot;
    }
    if (seg % 4 == 0 && p->dilation_w == 1 && window_inside(p, oy, ox0) && window_inside(p, oy, ox1)) {
        /* both windows inside the input, rows of whole words: read the words straight from the rows */
        const int row_step = p->dilation_h * p->in_w * p->in_c, words = seg / 4;
        const int8_t *a = in + ((oy * p->stride_h - p->padding_h) * p->in_w + ox0 * p->stride_w - p->padding_w) * p->in_c;
        const int8_t *b = a + (ox1 - ox0) * p->stride_w * p->in_c;
        uint32_t *m = mix;
        int ky;
        for (ky = 0; ky < p->filter_h; ++ky, a += row_step, b += row_step) {
            for (i = 0; i < words; ++i, m += 2) {
                m[0] = tinyopt_ld4(a + 4 * i);
                m[1] = tinyopt_ld4(b + 4 * i);
            }
        }
    } else {
        const int8_t *a = patch_of(p, in, oy, ox0, col), *b = patch_of(p, in, oy, ox1, col + n);
        for (i = 0; i < blocks; ++i) {
            mix[2 * i] = tinyopt_ld4(a + 4 * i);
            mix[2 * i + 1] = tinyopt_ld4(b + 4 * i);
        }
    }
    widen_two((const int8_t *)mix, (const int8_t *)mix + 4, 8, blocks, slot);
    return slot;
}

/* A pixel pair (or a lone pixel) through tinyopt_mmq_asm into d0.. (the pixels' outputs are adjacent).
 * With a fused ADD the outputs go to a stack buffer first and are then added to o0.. element by
 * element (o0[i] is read before d0[i] is written: they may be the same bytes). */
static void mmq_pixels(const tinyopt_conv_params *p, const uint32_t *xw, int8_t *d0, int lone, const int8_t *o0)
{
    const int oc_n = p->out_c, blocks = p->patch / 4;
    int8_t tmp[2 * TINYOPT_FUSED_MAX_C];
    int i;
    if (o0 == NULL) {
        tinyopt_mmq_asm(xw, p->weights, blocks, p->rq, d0, lone ? d0 : d0 + oc_n, oc_n / 2);
        return;
    }
    tinyopt_mmq_asm(xw, p->weights, blocks, p->rq, tmp, lone ? tmp : tmp + oc_n, oc_n / 2);
    for (i = 0; i < (lone ? oc_n : 2 * oc_n); ++i) {
        d0[i] = p->add_conv_first ? tinyopt_add_one(p->add, tmp[i], o0[i]) : tinyopt_add_one(p->add, o0[i], tmp[i]);
    }
}
#endif

/* Two pixels times a filter pair stored interleaved per 4 values (acc as in tinyopt_mm2x2_c): on the
 * asm build from the widened pair xw (widen_pair), elsewhere from the int8 patches x0 and x1. */
TINYOPT_INLINE void pair_dot(const uint32_t *xw, const int8_t *x0, const int8_t *x1, const int8_t *w, int n,
                             int32_t *acc)
{
#if defined(TINYOPT_HAVE_MM2X2_ASM)
    (void)x0;
    (void)x1;
    tinyopt_mm2x2_asm(xw, w, n / 4, acc);
#else
    (void)xw;
    tinyopt_mm2x2_c(x0, x1, w, n, acc);
#endif
}

/* The filter pairs of a pixel pair (d1 NULL: a lone last pixel, computed twice and stored once) for a
 * layer with 'small' accumulators and no fused ADD: each filter's multiplier and shift are read once for
 * both pixels, no per-output branch. Returns the first channel not done (the odd last filter). */
TINYOPT_INLINE int pixel_pairs(const tinyopt_conv_params *p, const requant_t *q, const uint32_t *xw,
                               const int8_t *x0, const int8_t *x1, int8_t *d0, int8_t *d1)
{
    const int n = p->patch, oc_n = p->out_c;
    const int8_t *weights = p->weights;
    const int32_t *bias = p->bias, *mult = q->mult, *shift = q->shift;
    const int32_t offset = q->offset, lo = q->lo, hi = q->hi;
    int oc;
    for (oc = 0; oc + 1 < oc_n; oc += 2) {
        const int32_t m0 = mult[oc], m1 = mult[oc + 1], s0 = shift[oc], s1 = shift[oc + 1];
        int32_t acc[4];
        acc[0] = acc[1] = bias[oc];
        acc[2] = acc[3] = bias[oc + 1];
        pair_dot(xw, x0, x1, weights + oc * n, n, acc);
        d0[oc] = tinyopt_clamp8(tinyopt_mbqm_small(acc[0], m0, s0) + offset, lo, hi);
        d0[oc + 1] = tinyopt_clamp8(tinyopt_mbqm_small(acc[2], m1, s1) + offset, lo, hi);
        if (d1 != NULL) {
            d1[oc] = tinyopt_clamp8(tinyopt_mbqm_small(acc[1], m0, s0) + offset, lo, hi);
            d1[oc + 1] = tinyopt_clamp8(tinyopt_mbqm_small(acc[3], m1, s1) + offset, lo, hi);
        }
    }
    return oc;
}

/* Output row oy, two pixels at a time (an odd width pairs the last pixel with itself). A 1x1 layer
 * takes its patches straight from the input; any other gathers them into col. */
static void conv_row(const tinyopt_conv_params *p, const int8_t *in, int oy, int8_t *col, int8_t *dst,
                     const int8_t *other)
{
    const int n = p->patch, oc_n = p->out_c;
    const int8_t *weights = p->weights;
    const int32_t *bias = p->bias;
    requant_t q;
    int ox, oc;
#if defined(TINYOPT_HAVE_MM2X2_ASM)
    if (p->rq != NULL) { /* every filter pair and its requantization in one asm routine */
        for (ox = 0; ox < p->out_w; ox += 2) {
            const int lone = ox + 1 >= p->out_w;
            mmq_pixels(p, widen_pair(p, in, oy, ox, lone ? ox : ox + 1, col), dst + ox * oc_n, lone,
                       other != NULL ? other + ox * oc_n : NULL);
        }
        return;
    }
#endif
    q.mult = p->multiplier;
    q.shift = p->shift;
    q.offset = p->output_offset;
    q.lo = p->output_activation_min;
    q.hi = p->output_activation_max;
    q.small = p->small_acc;
    q.add = p->add;
    q.conv_first = p->add_conv_first;
    for (ox = 0; ox < p->out_w; ox += 2) {
        const int lone = ox + 1 >= p->out_w, ox1 = lone ? ox : ox + 1;
        int8_t *d0 = dst + ox * oc_n, *d1 = lone ? NULL : d0 + oc_n;
        const int8_t *o0 = other != NULL ? other + ox * oc_n : NULL;
        const int8_t *o1 = o0 != NULL && !lone ? o0 + oc_n : NULL;
#if defined(TINYOPT_HAVE_MM2X2_ASM)
        const uint32_t *xw = widen_pair(p, in, oy, ox, ox1, col);
        const int8_t *x0 = NULL, *x1 = NULL;
#else
        const uint32_t *xw = NULL;
        const int8_t *x0 = patch_of(p, in, oy, ox, col), *x1 = patch_of(p, in, oy, ox1, col + n);
#endif
        oc = other == NULL && q.small ? pixel_pairs(p, &q, xw, x0, x1, d0, d1) : 0;
        for (; oc + 1 < oc_n; oc += 2) {
            int32_t acc[4];
            acc[0] = acc[1] = bias[oc];
            acc[2] = acc[3] = bias[oc + 1];
            pair_dot(xw, x0, x1, weights + oc * n, n, acc);
            put(&q, d0, o0, oc, acc[0], oc);
            put(&q, d0, o0, oc + 1, acc[2], oc + 1);
            if (d1 != NULL) {
                put(&q, d1, o1, oc, acc[1], oc);
                put(&q, d1, o1, oc + 1, acc[3], oc + 1);
            }
        }
        if (oc < oc_n) { /* odd channel count: the last filter is stored alone, on the int8 patches */
#if defined(TINYOPT_HAVE_MM2X2_ASM)
            x0 = patch_of(p, in, oy, ox, col); /* col held the widened pair: gather again */
            x1 = patch_of(p, in, oy, ox1, col + n);
#endif
            put(&q, d0, o0, oc, tinyopt_dot_s8(x0, weights + oc * n, n, bias[oc]), oc);
            if (d1 != NULL) {
                put(&q, d1, o1, oc, tinyopt_dot_s8(x1, weights + oc * n, n, bias[oc]), oc);
            }
        }
    }
}

void tinyopt_conv2d(const tinyopt_conv_params *p, const int8_t *in, int8_t *out, int8_t *scratch,
                    int8_t *col, int reverse, const int8_t *other)
{
    const int row_bytes = p->out_w * p->out_c;
    const uintptr_t in_at = (uintptr_t)in, out_at = (uintptr_t)out;
    int k;
    const uintptr_t pixels = (uintptr_t)p->out_h * (uintptr_t)p->out_w;
    const int disjoint = out_at + pixels * (uintptr_t)p->out_c <= in_at || out_at >= in_at + pixels * (uintptr_t)p->in_c;
#if defined(TINYOPT_HAVE_MM2X2_ASM)
    const int widened = p->rq != NULL; /* each pixel pair is copied before it is used */
#else
    const int widened = 0;
#endif
    if (!reverse && is_direct(p) && p->stride_h == 1 && p->stride_w == 1 &&
        (disjoint || (widened && out_at <= in_at && p->out_c <= p->in_c))) {
        /* 1x1, stride 1: the image is one long row, so pixel pairs run across row ends, and no scratch row
         * is needed. In place, the asm path copies a pixel pair before writing its outputs, and output
         * pixels 0..k end at out + (k+1) out_c <= in + (k+1) in_c, where the input not yet read begins. */
        tinyopt_conv_params flat = *p;
        flat.in_w = flat.out_w = p->out_h * p->out_w;
        flat.in_h = flat.out_h = 1;
        conv_row(&flat, in, 0, col, out, other);
        return;
    }
    for (k = 0; k < p->out_h; ++k) {
        const int oy = reverse ? p->out_h - 1 - k : k;
        const int8_t *other_row = other != NULL ? other + oy * row_bytes : NULL;
        if (scratch != NULL) {
            conv_row(p, in, oy, col, scratch, NULL);
            tinyopt_store_row(p, scratch, other_row, out + oy * row_bytes, row_bytes);
        } else {
            conv_row(p, in, oy, col, out + oy * row_bytes, other_row);
        }
    }
}
