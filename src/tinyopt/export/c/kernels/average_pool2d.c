/* AVERAGE_POOL_2D, int8: sum of the taps inside the input, divided by their count rounding half away
 * from zero (TFLM's reference); input and output share scale and zero point. */
#include "tinyopt_fixedpoint.h"
#include "tinyopt_kernels.h"

void tinyopt_average_pool2d(const tinyopt_pool_params *p, const int8_t *in, int8_t *out)
{
    int oy, ox, c, fy, fx;
    for (oy = 0; oy < p->out_h; ++oy) {
        for (ox = 0; ox < p->out_w; ++ox) {
            const int y0 = oy * p->stride_h - p->pad_h, x0 = ox * p->stride_w - p->pad_w;
            const int fy0 = y0 < 0 ? -y0 : 0, fx0 = x0 < 0 ? -x0 : 0;
            const int fy1 = p->f_h < p->in_h - y0 ? p->f_h : p->in_h - y0;
            const int fx1 = p->f_w < p->in_w - x0 ? p->f_w : p->in_w - x0;
            const int32_t count = (fy1 - fy0) * (fx1 - fx0);
            for (c = 0; c < p->channels; ++c) {
                int32_t acc = 0;
                for (fy = fy0; fy < fy1; ++fy) {
                    for (fx = fx0; fx < fx1; ++fx) {
                        acc += in[((y0 + fy) * p->in_w + (x0 + fx)) * p->channels + c];
                    }
                }
                acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                out[(oy * p->out_w + ox) * p->channels + c] = tinyopt_clamp8(acc, p->act_min, p->act_max);
            }
        }
    }
}
