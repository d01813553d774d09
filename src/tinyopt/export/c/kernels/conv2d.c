/* CONV_2D, int8 with per-channel requantization: the arithmetic of TFLM's reference integer conv.
 * The input offset is folded into the bias at generation time (sum w*(x+off) = sum w*x + off*sum w),
 * so a padded tap feeds the input zero point, which contributes exactly 0 as in the reference.
 * Each output pixel's input patch is gathered once (im2col, two pixels at a time) and multiplied by
 * two filters at once, so every load feeds two or four multiply-accumulates. */
#include <string.h>

#include "tinyopt_fixedpoint.h"
#include "tinyopt_kernels.h"
#include "tinyopt_simd.h"

static int is_direct(const tinyopt_conv_params *p)
{
    return p->k_h == 1 && p->k_w == 1 && p->pad_h == 0 && p->pad_w == 0 && p->patch == p->in_c;
}

/* The input patch of output pixel (oy, ox) in weight order [KH][KW][I], zero-padded to p->patch. */
static const int8_t *patch_of(const tinyopt_conv_params *p, const int8_t *in, int oy, int ox, int8_t *buf)
{
    const int y0 = oy * p->stride_h - p->pad_h, x0 = ox * p->stride_w - p->pad_w;
    const int seg = p->k_w * p->in_c;
    int8_t *d = buf;
    int ky, kx;
    if (is_direct(p)) {
        return in + (y0 * p->in_w + x0) * p->in_c;
    }
    for (ky = 0; ky < p->k_h; ++ky, d += seg) {
        const int iy = y0 + ky * p->dil_h;
        if (iy < 0 || iy >= p->in_h) {
            memset(d, p->input_zp, (size_t)seg);
        } else if (p->dil_w == 1 && x0 >= 0 && x0 + p->k_w <= p->in_w) {
            memcpy(d, in + (iy * p->in_w + x0) * p->in_c, (size_t)seg);
        } else {
            for (kx = 0; kx < p->k_w; ++kx) {
                const int ix = x0 + kx * p->dil_w;
                if (ix < 0 || ix >= p->in_w) {
                    memset(d + kx * p->in_c, p->input_zp, (size_t)p->in_c);
                } else {
                    memcpy(d + kx * p->in_c, in + (iy * p->in_w + ix) * p->in_c, (size_t)p->in_c);
                }
            }
        }
    }
    memset(d, 0, (size_t)(p->patch - p->k_h * seg)); /* meets zero weights */
    return buf;
}

static void put(const tinyopt_conv_params *p, int8_t *dst, const int8_t *other, int i, int32_t acc, int oc)
{
    acc = tinyopt_mbqm(acc, p->multiplier[oc], p->shift[oc]) + p->output_offset;
    acc = acc < p->act_min ? p->act_min : (acc > p->act_max ? p->act_max : acc);
    if (other != NULL) { /* fused residual ADD: other[i] is read before dst[i] (maybe the same byte) */
        dst[i] = p->add_conv_first ? tinyopt_add_one(p->add, acc, other[i])
                                   : tinyopt_add_one(p->add, other[i], acc);
    } else {
        dst[i] = (int8_t)acc;
    }
}

static void conv_row(const tinyopt_conv_params *p, const int8_t *in, int oy, int8_t *col, int8_t *dst,
                     const int8_t *other)
{
    const int n = p->patch, oc_n = p->out_c;
    int ox = 0, oc;
    for (; ox + 1 < p->out_w; ox += 2) {
        const int8_t *x0 = patch_of(p, in, oy, ox, col);
        const int8_t *x1 = patch_of(p, in, oy, ox + 1, col + n);
        const int i0 = ox * oc_n, i1 = i0 + oc_n;
        for (oc = 0; oc + 1 < oc_n; oc += 2) {
            int32_t acc[4];
            acc[0] = acc[1] = p->bias[oc];
            acc[2] = acc[3] = p->bias[oc + 1];
            tinyopt_dot_2x2(x0, x1, p->weights + oc * n, p->weights + (oc + 1) * n, n, acc);
            put(p, dst, other, i0 + oc, acc[0], oc);
            put(p, dst, other, i1 + oc, acc[1], oc);
            put(p, dst, other, i0 + oc + 1, acc[2], oc + 1);
            put(p, dst, other, i1 + oc + 1, acc[3], oc + 1);
        }
        for (; oc < oc_n; ++oc) {
            put(p, dst, other, i0 + oc, tinyopt_dot_s8(x0, p->weights + oc * n, n, p->bias[oc]), oc);
            put(p, dst, other, i1 + oc, tinyopt_dot_s8(x1, p->weights + oc * n, n, p->bias[oc]), oc);
        }
    }
    for (; ox < p->out_w; ++ox) {
        const int8_t *x0 = patch_of(p, in, oy, ox, col);
        for (oc = 0; oc < oc_n; ++oc) {
            put(p, dst, other, ox * oc_n + oc, tinyopt_dot_s8(x0, p->weights + oc * n, n, p->bias[oc]), oc);
        }
    }
}

void tinyopt_conv2d(const tinyopt_conv_params *p, const int8_t *in, int8_t *out, int8_t *scratch,
                    int8_t *col, int reverse, const int8_t *other)
{
    const int row_bytes = p->out_w * p->out_c;
    int k;
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
