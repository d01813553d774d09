/* CONV_2D, int8 with per-channel requantization: the arithmetic of TFLM's reference integer conv.
 * The input offset is folded into the bias at generation time (sum w*(x+off) = sum w*x + off*sum w),
 * so a padded tap feeds the input zero point, which contributes exactly 0 as in the reference. */
#include <string.h>

#include "tinyopt_fixedpoint.h"
#include "tinyopt_kernels.h"
#include "tinyopt_simd.h"

static void conv_pixel(const tinyopt_conv_params *p, const int8_t *in, int oy, int ox, int8_t *dst)
{
    const int in_row = p->in_w * p->in_c;
    const int ksize = p->k_h * p->k_w * p->in_c;
    const int y0 = oy * p->stride_h - p->pad_h;
    const int x0 = ox * p->stride_w - p->pad_w;
    /* Taps whose whole kernel row lies inside the input are contiguous in input and weights. */
    const int row_inside = x0 >= 0 && x0 + (p->k_w - 1) * p->dil_w < p->in_w && p->dil_w == 1;
    int oc, ky, kx, ic;
    for (oc = 0; oc < p->out_c; ++oc) {
        const int8_t *w = p->weights + oc * ksize;
        int32_t acc = p->bias[oc];
        for (ky = 0; ky < p->k_h; ++ky) {
            const int iy = y0 + ky * p->dil_h;
            const int8_t *wrow = w + ky * p->k_w * p->in_c;
            if (iy < 0 || iy >= p->in_h) {
                for (ic = 0; ic < p->k_w * p->in_c; ++ic) {
                    acc += wrow[ic] * p->input_zp;
                }
                continue;
            }
            if (row_inside) {
                acc = tinyopt_dot_s8(in + iy * in_row + x0 * p->in_c, wrow, p->k_w * p->in_c, acc);
                continue;
            }
            for (kx = 0; kx < p->k_w; ++kx) {
                const int ix = x0 + kx * p->dil_w;
                const int8_t *wt = wrow + kx * p->in_c;
                if (ix < 0 || ix >= p->in_w) {
                    for (ic = 0; ic < p->in_c; ++ic) {
                        acc += wt[ic] * p->input_zp;
                    }
                } else {
                    acc = tinyopt_dot_s8(in + iy * in_row + ix * p->in_c, wt, p->in_c, acc);
                }
            }
        }
        acc = tinyopt_mbqm(acc, p->multiplier[oc], p->shift[oc]) + p->output_offset;
        dst[oc] = tinyopt_clamp8(acc, p->act_min, p->act_max);
    }
}

static int32_t requant(const tinyopt_conv_params *p, int32_t acc, int oc)
{
    acc = tinyopt_mbqm(acc, p->multiplier[oc], p->shift[oc]) + p->output_offset;
    return acc < p->act_min ? p->act_min : (acc > p->act_max ? p->act_max : acc);
}

/* 1x1 convolution, stride 1, no padding: a matrix product of pixels by output channels. Two pixels
 * and two channels at a time share every load (four dual multiply-accumulates per two words). */
static void pointwise_row(const tinyopt_conv_params *p, const int8_t *in, int8_t *dst)
{
    const int n = p->in_c, w_pixels = p->out_w, oc_n = p->out_c;
    int px = 0, oc;
    for (; px + 1 < w_pixels; px += 2) {
        const int8_t *x0 = in + px * n;
        const int8_t *x1 = x0 + n;
        int8_t *d0 = dst + px * oc_n;
        int8_t *d1 = d0 + oc_n;
        for (oc = 0; oc + 1 < oc_n; oc += 2) {
            int32_t acc[4];
            acc[0] = acc[1] = p->bias[oc];
            acc[2] = acc[3] = p->bias[oc + 1];
            tinyopt_dot_2x2(x0, x1, p->weights + oc * n, p->weights + (oc + 1) * n, n, acc);
            d0[oc] = (int8_t)requant(p, acc[0], oc);
            d1[oc] = (int8_t)requant(p, acc[1], oc);
            d0[oc + 1] = (int8_t)requant(p, acc[2], oc + 1);
            d1[oc + 1] = (int8_t)requant(p, acc[3], oc + 1);
        }
        for (; oc < oc_n; ++oc) {
            d0[oc] = (int8_t)requant(p, tinyopt_dot_s8(x0, p->weights + oc * n, n, p->bias[oc]), oc);
            d1[oc] = (int8_t)requant(p, tinyopt_dot_s8(x1, p->weights + oc * n, n, p->bias[oc]), oc);
        }
    }
    for (; px < w_pixels; ++px) {
        for (oc = 0; oc < oc_n; ++oc) {
            dst[px * oc_n + oc] = (int8_t)requant(p, tinyopt_dot_s8(in + px * n, p->weights + oc * n, n,
                                                                     p->bias[oc]), oc);
        }
    }
}

void tinyopt_conv2d(const tinyopt_conv_params *p, const int8_t *in, int8_t *out, int8_t *scratch,
                    int reverse)
{
    const int row_bytes = p->out_w * p->out_c;
    const int pointwise = p->k_h == 1 && p->k_w == 1 && p->stride_h == 1 && p->stride_w == 1
                          && p->pad_h == 0 && p->pad_w == 0;
    int k, ox;
    for (k = 0; k < p->out_h; ++k) {
        const int oy = reverse ? p->out_h - 1 - k : k;
        int8_t *dst = scratch ? scratch : out + oy * row_bytes;
        if (pointwise) {
            pointwise_row(p, in + oy * p->in_w * p->in_c, dst);
        } else {
            for (ox = 0; ox < p->out_w; ++ox) {
                conv_pixel(p, in, oy, ox, dst + ox * p->out_c);
            }
        }
        if (scratch) {
            memcpy(out + oy * row_bytes, scratch, (size_t)row_bytes);
        }
    }
}
