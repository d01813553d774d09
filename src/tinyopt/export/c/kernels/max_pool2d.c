/* MAX_POOL_2D, int8: maximum of the taps inside the input, then the activation clamp (TFLM's
 * reference); input and output share scale and zero point. */
#include <string.h>

#include "tinyopt_fixedpoint.h"
#include "tinyopt_kernels.h"

#if defined(__GNUC__) && defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
/* Four int8 lanes at once: SSUB8 sets each byte's GE flag where a >= b, SEL then takes a's byte there and
 * b's elsewhere (one asm statement: nothing may touch the flags in between). */
static inline uint32_t max4(uint32_t a, uint32_t b)
{
    uint32_t t;
    __asm__("ssub8 %0, %1, %2\n\tsel %0, %1, %2" : "=&r"(t) : "r"(a), "r"(b) : "cc");
    return t;
}

static inline uint32_t min4(uint32_t a, uint32_t b)
{
    uint32_t t;
    __asm__("ssub8 %0, %1, %2\n\tsel %0, %2, %1" : "=&r"(t) : "r"(a), "r"(b) : "cc");
    return t;
}

static inline uint32_t ld4(const int8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
#endif

void tinyopt_max_pool2d(const tinyopt_pool_params *p, const int8_t *in, int8_t *out)
{
    const int C = p->channels, lo = p->output_activation_min, hi = p->output_activation_max;
    int oy, ox, c, fy, fx;
#if defined(__GNUC__) && defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
    const uint32_t lo4 = 0x01010101u * (uint8_t)lo, hi4 = 0x01010101u * (uint8_t)hi;
    const int narrowed = lo > -128 || hi < 127, words = C / 4;
#endif
    for (oy = 0; oy < p->out_h; ++oy) {
        for (ox = 0; ox < p->out_w; ++ox, out += C) {
            const tinyopt_window win = tinyopt_pool_window(p, oy, ox);
            const int8_t *first = in + ((win.y0 + win.fy0) * p->in_w + (win.x0 + win.fx0)) * C;
            const int row = p->in_w * C, taps_w = win.fx1 - win.fx0, taps_h = win.fy1 - win.fy0;
            c = 0;
#if defined(__GNUC__) && defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
            for (; c < 4 * words; c += 4) { /* 4 channels per word; the window's first tap starts the max */
                uint32_t m = ld4(first + c);
                const int8_t *r = first + c;
                for (fy = 0; fy < taps_h; ++fy, r += row) {
                    for (fx = 0; fx < taps_w; ++fx) {
                        m = max4(m, ld4(r + fx * C));
                    }
                }
                if (narrowed) {
                    m = min4(max4(m, lo4), hi4);
                }
                memcpy(out + c, &m, 4);
            }
#endif
            for (; c < C; ++c) {
                int32_t m = -128;
                const int8_t *r = first + c;
                for (fy = 0; fy < taps_h; ++fy, r += row) {
                    for (fx = 0; fx < taps_w; ++fx) {
                        const int32_t v = r[fx * C];
                        m = v > m ? v : m;
                    }
                }
                out[c] = tinyopt_clamp8(m, lo, hi);
            }
        }
    }
}
