/* 16x8 CONV_2D and DEPTHWISE_CONV_2D (see conv_int16.h): the reference loops, one output at a time. */
#include "tinyopt_conv_int16.h"
#include "tinyopt_fixedpoint.h"
#include "tinyopt_int16.h"

/* The requantized, clamped output of one channel's accumulator. An int32 accumulator wraps as the
 * reference's int32 adds do (kept in 64 bits here, cut to 32 at the end: the same two's complement sum). */
static int16_t finish(const tinyopt_conv16_params *p, int64_t acc, int32_t c)
{
    int32_t y;
    if (p->bias) {
        acc += p->bias[c];
    }
    if (p->wide) {
        y = tinyopt_mbqm64(acc, p->multiplier[c], p->shift[c]);
    } else {
        y = tinyopt_mbqm((int32_t)(uint32_t)(uint64_t)acc, p->multiplier[c], p->shift[c]);
    }
    return tinyopt_clamp16(y, p->output_activation_min, p->output_activation_max);
}

/* The taps [*lo, *hi) of a window starting at input coordinate `origin` that fall inside [0, size). */
static void inside(int32_t origin, int32_t dilation, int32_t taps, int32_t size, int32_t *lo, int32_t *hi)
{
    *lo = origin < 0 ? (-origin + dilation - 1) / dilation : 0;
    *hi = size - origin > 0 ? (size - origin + dilation - 1) / dilation : 0;
    *hi = *hi < taps ? *hi : taps;
    *lo = *lo < *hi ? *lo : *hi;
}

void tinyopt_conv2d_s16(const tinyopt_conv16_params *p, const int16_t *in, int16_t *out)
{
    const int32_t row = p->filter_w * p->in_c;  /* weights of one kernel row */
    int32_t oy, ox, c, ky, kx, i;
    for (oy = 0; oy < p->out_h; ++oy) {
        const int32_t y0 = oy * p->stride_h - p->padding_h;
        int32_t ky0, ky1;
        inside(y0, p->dilation_h, p->filter_h, p->in_h, &ky0, &ky1);
        for (ox = 0; ox < p->out_w; ++ox) {
            const int32_t x0 = ox * p->stride_w - p->padding_w;
            int32_t kx0, kx1;
            inside(x0, p->dilation_w, p->filter_w, p->in_w, &kx0, &kx1);
            for (c = 0; c < p->out_c; ++c) {
                const int8_t *w = p->weights + (int64_t)c * p->filter_h * row;
                int64_t acc = 0;  /* taps outside the input add nothing (zero padding) */
                for (ky = ky0; ky < ky1; ++ky) {
                    const int32_t y = y0 + ky * p->dilation_h;
                    const int16_t *xr = in + (int64_t)y * p->in_w * p->in_c;
                    if (p->dilation_w == 1) {  /* the row's inside taps are one run of input and weights */
                        const int8_t *wk = w + ky * row + kx0 * p->in_c;
                        const int16_t *xk = xr + (int64_t)(x0 + kx0) * p->in_c;
                        const int32_t n = (kx1 - kx0) * p->in_c;
                        for (i = 0; i < n; ++i) {
                            acc += (int32_t)wk[i] * xk[i];
                        }
                        continue;
                    }
                    for (kx = kx0; kx < kx1; ++kx) {
                        const int8_t *wk = w + ky * row + kx * p->in_c;
                        const int16_t *xk = xr + (int64_t)(x0 + kx * p->dilation_w) * p->in_c;
                        for (i = 0; i < p->in_c; ++i) {
                            acc += (int32_t)wk[i] * xk[i];
                        }
                    }
                }
                *out++ = finish(p, acc, c);
            }
        }
    }
}

void tinyopt_depthwise_conv2d_s16(const tinyopt_conv16_params *p, const int16_t *in, int16_t *out)
{
    int32_t oy, ox, c, ky, kx;
    for (oy = 0; oy < p->out_h; ++oy) {
        const int32_t y0 = oy * p->stride_h - p->padding_h;
        int32_t ky0, ky1;
        inside(y0, p->dilation_h, p->filter_h, p->in_h, &ky0, &ky1);
        for (ox = 0; ox < p->out_w; ++ox) {
            const int32_t x0 = ox * p->stride_w - p->padding_w;
            int32_t kx0, kx1;
            inside(x0, p->dilation_w, p->filter_w, p->in_w, &kx0, &kx1);
            for (c = 0; c < p->out_c; ++c) {
                const int16_t *xc = in + c / p->depth_multiplier;
                int64_t acc = 0;
                for (ky = ky0; ky < ky1; ++ky) {
                    const int16_t *xr = xc + (int64_t)(y0 + ky * p->dilation_h) * p->in_w * p->in_c;
                    const int8_t *wr = p->weights + ky * p->filter_w * p->out_c + c;
                    for (kx = kx0; kx < kx1; ++kx) {
                        acc += (int32_t)wr[kx * p->out_c] * xr[(int64_t)(x0 + kx * p->dilation_w) * p->in_c];
                    }
                }
                *out++ = finish(p, acc, c);
            }
        }
    }
}
