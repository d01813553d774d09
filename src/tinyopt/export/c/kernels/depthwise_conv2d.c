/* DEPTHWISE_CONV_2D, int8 per-channel: TFLM's reference integer depthwise arithmetic. Output channel
 * oc = ic * depth_multiplier + m reads input channel ic. Input offset folded into the bias as in
 * conv2d.c; padded taps feed the input zero point. */
#include <string.h>

#include "tinyopt_fixedpoint.h"
#include "tinyopt_kernels.h"

static void depthwise_pixel(const tinyopt_conv_params *p, const int8_t *in, int oy, int ox, int8_t *dst)
{
    const int in_row = p->in_w * p->in_c;
    const int y0 = oy * p->stride_h - p->pad_h;
    const int x0 = ox * p->stride_w - p->pad_w;
    const int dm = p->depth_multiplier, oc_n = p->out_c;
    int oc, ky, kx;
    for (oc = 0; oc < oc_n; ++oc) {
        const int ic = oc / dm;
        int32_t acc = p->bias[oc];
        for (ky = 0; ky < p->k_h; ++ky) {
            const int iy = y0 + ky * p->dil_h;
            const int inside_y = iy >= 0 && iy < p->in_h;
            const int8_t *wrow = p->weights + ky * p->k_w * oc_n + oc;
            for (kx = 0; kx < p->k_w; ++kx) {
                const int ix = x0 + kx * p->dil_w;
                const int32_t x = (inside_y && ix >= 0 && ix < p->in_w)
                                      ? in[iy * in_row + ix * p->in_c + ic] : p->input_zp;
                acc += x * wrow[kx * oc_n];
            }
        }
        acc = tinyopt_mbqm(acc, p->multiplier[oc], p->shift[oc]) + p->output_offset;
        dst[oc] = tinyopt_clamp8(acc, p->act_min, p->act_max);
    }
}

/* 3x3, stride 1, depth multiplier 1, all taps inside: the inner loop of most depthwise layers,
 * unrolled so that every tap is a load, a load and a multiply-accumulate. */
static void depthwise_3x3_inside(const tinyopt_conv_params *p, const int8_t *in, int oy, int ox,
                                 int8_t *dst)
{
    const int c_n = p->out_c, in_row = p->in_w * c_n;
    const int8_t *x = in + (oy - p->pad_h) * in_row + (ox - p->pad_w) * c_n;
    const int8_t *w = p->weights;
    int c;
    for (c = 0; c < c_n; ++c, ++x, ++w) {
        int32_t acc = p->bias[c];
        acc += x[0] * w[0] + x[c_n] * w[c_n] + x[2 * c_n] * w[2 * c_n];
        acc += x[in_row] * w[3 * c_n] + x[in_row + c_n] * w[4 * c_n] + x[in_row + 2 * c_n] * w[5 * c_n];
        acc += x[2 * in_row] * w[6 * c_n] + x[2 * in_row + c_n] * w[7 * c_n]
               + x[2 * in_row + 2 * c_n] * w[8 * c_n];
        acc = tinyopt_mbqm(acc, p->multiplier[c], p->shift[c]) + p->output_offset;
        dst[c] = tinyopt_clamp8(acc, p->act_min, p->act_max);
    }
}

void tinyopt_depthwise_conv2d(const tinyopt_conv_params *p, const int8_t *in, int8_t *out,
                              int8_t *scratch, int reverse)
{
    const int row_bytes = p->out_w * p->out_c;
    const int fast = p->k_h == 3 && p->k_w == 3 && p->stride_h == 1 && p->stride_w == 1
                     && p->dil_h == 1 && p->dil_w == 1 && p->depth_multiplier == 1;
    int k, ox;
    for (k = 0; k < p->out_h; ++k) {
        const int oy = reverse ? p->out_h - 1 - k : k;
        int8_t *dst = scratch ? scratch : out + oy * row_bytes;
        const int y_inside = oy - p->pad_h >= 0 && oy - p->pad_h + 2 < p->in_h;
        for (ox = 0; ox < p->out_w; ++ox) {
            if (fast && y_inside && ox - p->pad_w >= 0 && ox - p->pad_w + 2 < p->in_w) {
                depthwise_3x3_inside(p, in, oy, ox, dst + ox * p->out_c);
            } else {
                depthwise_pixel(p, in, oy, ox, dst + ox * p->out_c);
            }
        }
        if (scratch) {
            memcpy(out + oy * row_bytes, scratch, (size_t)row_bytes);
        }
    }
}
