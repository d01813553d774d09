/* MAX_POOL_2D, int8: maximum of the taps inside the input, then the activation clamp (TFLM's
 * reference); input and output share scale and zero point. */
#include "tinyopt_fixedpoint.h"
#include "tinyopt_kernels.h"

void tinyopt_max_pool2d(const tinyopt_pool_params *p, const int8_t *in, int8_t *out)
{
    int oy, ox, c, fy, fx;
    for (oy = 0; oy < p->out_h; ++oy) {
        for (ox = 0; ox < p->out_w; ++ox) {
            const tinyopt_window win = tinyopt_pool_window(p, oy, ox);
            const int y0 = win.y0, x0 = win.x0, fy0 = win.fy0, fy1 = win.fy1, fx0 = win.fx0, fx1 = win.fx1;
            for (c = 0; c < p->channels; ++c) {
                int32_t m = -128;
                for (fy = fy0; fy < fy1; ++fy) {
                    for (fx = fx0; fx < fx1; ++fx) {
                        const int32_t v = in[((y0 + fy) * p->in_w + (x0 + fx)) * p->channels + c];
                        m = v > m ? v : m;
                    }
                }
                out[(oy * p->out_w + ox) * p->channels + c] = tinyopt_clamp8(m, p->output_activation_min, p->output_activation_max);
            }
        }
    }
}
