/* 16x8 pooling (see pool_int16.h). */
#include "tinyopt_int16.h"
#include "tinyopt_pool_int16.h"

static void pool(const tinyopt_pool16_params *p, const int16_t *in, int16_t *out, int average)
{
    int32_t oy, ox, c, y, x;
    for (oy = 0; oy < p->out_h; ++oy) {
        const int32_t y0 = oy * p->stride_h - p->padding_h;
        const int32_t ys = y0 < 0 ? 0 : y0, ye = y0 + p->filter_h < p->in_h ? y0 + p->filter_h : p->in_h;
        for (ox = 0; ox < p->out_w; ++ox) {
            const int32_t x0 = ox * p->stride_w - p->padding_w;
            const int32_t xs = x0 < 0 ? 0 : x0, xe = x0 + p->filter_w < p->in_w ? x0 + p->filter_w : p->in_w;
            const int32_t count = (ye - ys) * (xe - xs);
            for (c = 0; c < p->channels; ++c) {
                int32_t acc = average ? 0 : -32768;
                for (y = ys; y < ye; ++y) {
                    for (x = xs; x < xe; ++x) {
                        const int32_t v = in[((int64_t)y * p->in_w + x) * p->channels + c];
                        acc = average ? acc + v : (v > acc ? v : acc);
                    }
                }
                if (average) {  /* C division truncates: the reference's rounding half away from zero */
                    acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                }
                *out++ = tinyopt_clamp16(acc, p->output_activation_min, p->output_activation_max);
            }
        }
    }
}

void tinyopt_max_pool2d_s16(const tinyopt_pool16_params *p, const int16_t *in, int16_t *out)
{
    pool(p, in, out, 0);
}

void tinyopt_average_pool2d_s16(const tinyopt_pool16_params *p, const int16_t *in, int16_t *out)
{
    pool(p, in, out, 1);
}
