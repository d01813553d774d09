/* MAX_POOL_2D, int8: maximum of the taps inside the input, then the activation clamp (TFLM's
 * reference); input and output share scale and zero point. */
#include "tinyopt_fixedpoint.h"
#include "tinyopt_kernels.h"

void tinyopt_max_pool2d(const tinyopt_pool_params *p, const int8_t *in, int8_t *out)
{
    int oy, ox, c, fy, fx;
    for (oy = 0; oy < p->out_h; ++oy) {
        for (ox = 0; ox < p->out_w; ++ox) {
            const int y0 = oy * p->stride_h - p->pad_h, x0 = ox * p->stride_w - p->pad_w;
            const int fy0 = y0 < 0 ? -y0 : 0, fx0 = x0 < 0 ? -x0 : 0;
            const int fy1 = p->f_h < p->in_h - y0 ? p->f_h : p->in_h - y0;
            const int fx1 = p->f_w < p->in_w - x0 ? p->f_w : p->in_w - x0;
            for (c = 0; c < p->channels; ++c) {
                int32_t m = -128;
                for (fy = fy0; fy < fy1; ++fy) {
                    for (fx = fx0; fx < fx1; ++fx) {
                        const int32_t v = in[((y0 + fy) * p->in_w + (x0 + fx)) * p->channels + c];
                        m = v > m ? v : m;
                    }
                }
                out[(oy * p->out_w + ox) * p->channels + c] = tinyopt_clamp8(m, p->act_min, p->act_max);
            }
        }
    }
}
