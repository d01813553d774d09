/* AVERAGE_POOL_2D, int8: sum of the taps inside the input, divided by their count rounding half away
 * from zero (TFLM's reference); input and output share scale and zero point. */
#include "tinyopt_fixedpoint.h"
#include "tinyopt_kernels.h"
#include "tinyopt_simd.h"

static int8_t average(int32_t acc, int32_t count, const tinyopt_pool_params *p)
{
    acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
    return tinyopt_clamp8(acc, p->output_activation_min, p->output_activation_max);
}

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
/* Four channels per word: SXTAB16 adds bytes 0 and 2 (or, rotated, 1 and 3) into two 16-bit lanes, which
 * hold any sum of up to 255 int8 values. Returns 0 (nothing written) when the layer does not fit that. */
static int average_pool_lanes(const tinyopt_pool_params *p, const int8_t *in, int8_t *out)
{
    const int C = p->channels;
    int oy, ox, c, fy, fx;
    if (C % 4 != 0 || p->filter_h * p->filter_w > 255) {
        return 0;
    }
    for (oy = 0; oy < p->out_h; ++oy) {
        for (ox = 0; ox < p->out_w; ++ox, out += C) {
            const tinyopt_window win = tinyopt_pool_window(p, oy, ox);
            const int y0 = win.y0, x0 = win.x0, fy0 = win.fy0, fy1 = win.fy1, fx0 = win.fx0, fx1 = win.fx1;
            const int32_t count = win.count;
            for (c = 0; c < C; c += 4) {
                uint32_t even = 0, odd = 0;
                for (fy = fy0; fy < fy1; ++fy) {
                    const int8_t *q = in + ((y0 + fy) * p->in_w + x0 + fx0) * C + c;
                    for (fx = fx0; fx < fx1; ++fx, q += C) {
                        const uint32_t v = tinyopt_ld4(q);
                        __asm__("sxtab16 %0, %0, %1" : "+r"(even) : "r"(v));
                        __asm__("sxtab16 %0, %0, %1, ror #8" : "+r"(odd) : "r"(v));
                    }
                }
                out[c] = average((int16_t)(even & 0xFFFFu), count, p);
                out[c + 1] = average((int16_t)(odd & 0xFFFFu), count, p);
                out[c + 2] = average((int16_t)(even >> 16), count, p);
                out[c + 3] = average((int16_t)(odd >> 16), count, p);
            }
        }
    }
    return 1;
}
#endif

void tinyopt_average_pool2d(const tinyopt_pool_params *p, const int8_t *in, int8_t *out)
{
    int oy, ox, c, fy, fx;
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
    if (average_pool_lanes(p, in, out)) {
        return;
    }
#endif
    for (oy = 0; oy < p->out_h; ++oy) {
        for (ox = 0; ox < p->out_w; ++ox) {
            const tinyopt_window win = tinyopt_pool_window(p, oy, ox);
            const int y0 = win.y0, x0 = win.x0, fy0 = win.fy0, fy1 = win.fy1, fx0 = win.fx0, fx1 = win.fx1;
            const int32_t count = win.count;
            for (c = 0; c < p->channels; ++c) {
                int32_t acc = 0;
                for (fy = fy0; fy < fy1; ++fy) {
                    for (fx = fx0; fx < fx1; ++fx) {
                        acc += in[((y0 + fy) * p->in_w + (x0 + fx)) * p->channels + c];
                    }
                }
                out[(oy * p->out_w + ox) * p->channels + c] = average(acc, count, p);
            }
        }
    }
}
