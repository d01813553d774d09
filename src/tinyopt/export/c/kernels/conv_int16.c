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

void tinyopt_conv2d_s16(const tinyopt_conv16_params *p, const int16_t *in, int16_t *out)
{
    int32_t oy, ox, c, ky, kx, i;
    for (oy = 0; oy < p->out_h; ++oy) {
        for (ox = 0; ox < p->out_w; ++ox) {
            const int32_t y0 = oy * p->stride_h - p->padding_h, x0 = ox * p->stride_w - p->padding_w;
            for (c = 0; c < p->out_c; ++c) {
                const int8_t *w = p->weights + (int64_t)c * p->filter_h * p->filter_w * p->in_c;
                int64_t acc = 0;
                for (ky = 0; ky < p->filter_h; ++ky) {
                    const int32_t y = y0 + ky * p->dilation_h;
                    for (kx = 0; kx < p->filter_w; ++kx) {
                        const int32_t x = x0 + kx * p->dilation_w;
                        const int8_t *wk = w + (ky * p->filter_w + kx) * p->in_c;
                        const int16_t *xk;
                        if (y < 0 || y >= p->in_h || x < 0 || x >= p->in_w) {
                            continue; /* zero padding: nothing to add */
                        }
                        xk = in + ((int64_t)y * p->in_w + x) * p->in_c;
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
        for (ox = 0; ox < p->out_w; ++ox) {
            const int32_t y0 = oy * p->stride_h - p->padding_h, x0 = ox * p->stride_w - p->padding_w;
            for (c = 0; c < p->out_c; ++c) {
                const int32_t ic = c / p->depth_multiplier;
                int64_t acc = 0;
                for (ky = 0; ky < p->filter_h; ++ky) {
                    const int32_t y = y0 + ky * p->dilation_h;
                    for (kx = 0; kx < p->filter_w; ++kx) {
                        const int32_t x = x0 + kx * p->dilation_w;
                        if (y < 0 || y >= p->in_h || x < 0 || x >= p->in_w) {
                            continue;
                        }
                        acc += (int32_t)p->weights[(ky * p->filter_w + kx) * p->out_c + c] *
                               in[((int64_t)y * p->in_w + x) * p->in_c + ic];
                    }
                }
                *out++ = finish(p, acc, c);
            }
        }
    }
}
