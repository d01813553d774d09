/* Dot products of int8 vectors. On a core with the DSP extension (Cortex-M4/M7/M33) two int8 pairs
 * are sign-extended into 16-bit lanes (SXTB16) and multiplied-accumulated at once (SMLAD); elsewhere
 * a plain loop that host compilers vectorize. Both paths give the same exact integer sums. */
#ifndef TINYOPT_SIMD_H
#define TINYOPT_SIMD_H

#include <stdint.h>
#include <string.h>

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
static inline uint32_t tinyopt_ld4(const int8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static inline uint32_t tinyopt_sxtb16(uint32_t x)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1" : "=r"(r) : "r"(x));
    return r;
}
static inline uint32_t tinyopt_sxtb16_ror8(uint32_t x)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}
static inline int32_t tinyopt_smlad(uint32_t a, uint32_t b, int32_t acc)
{
    int32_t r;
    __asm__("smlad %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
}
#endif

static inline int32_t tinyopt_dot_s8(const int8_t *a, const int8_t *b, int n, int32_t acc)
{
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
    for (; n >= 4; n -= 4, a += 4, b += 4) {
        const uint32_t x = tinyopt_ld4(a), y = tinyopt_ld4(b);
        acc = tinyopt_smlad(tinyopt_sxtb16(x), tinyopt_sxtb16(y), acc);
        acc = tinyopt_smlad(tinyopt_sxtb16_ror8(x), tinyopt_sxtb16_ror8(y), acc);
    }
#endif
    for (; n > 0; --n) {
        acc += (int32_t)*a++ * (int32_t)*b++;
    }
    return acc;
}

/* acc[0] += x0.w0, acc[1] += x1.w0, acc[2] += x0.w1, acc[3] += x1.w1 */
static inline void tinyopt_dot_2x2(const int8_t *x0, const int8_t *x1, const int8_t *w0,
                                   const int8_t *w1, int n, int32_t *acc)
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    int i = 0;
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
    for (; i + 4 <= n; i += 4) {
        const uint32_t u0 = tinyopt_ld4(x0 + i), u1 = tinyopt_ld4(x1 + i);
        const uint32_t v0 = tinyopt_ld4(w0 + i), v1 = tinyopt_ld4(w1 + i);
        const uint32_t x0e = tinyopt_sxtb16(u0), x0o = tinyopt_sxtb16_ror8(u0);
        const uint32_t x1e = tinyopt_sxtb16(u1), x1o = tinyopt_sxtb16_ror8(u1);
        const uint32_t w0e = tinyopt_sxtb16(v0), w0o = tinyopt_sxtb16_ror8(v0);
        const uint32_t w1e = tinyopt_sxtb16(v1), w1o = tinyopt_sxtb16_ror8(v1);
        a0 = tinyopt_smlad(x0o, w0o, tinyopt_smlad(x0e, w0e, a0));
        a1 = tinyopt_smlad(x1o, w0o, tinyopt_smlad(x1e, w0e, a1));
        a2 = tinyopt_smlad(x0o, w1o, tinyopt_smlad(x0e, w1e, a2));
        a3 = tinyopt_smlad(x1o, w1o, tinyopt_smlad(x1e, w1e, a3));
    }
#endif
    for (; i < n; ++i) {
        a0 += (int32_t)x0[i] * w0[i];
        a1 += (int32_t)x1[i] * w0[i];
        a2 += (int32_t)x0[i] * w1[i];
        a3 += (int32_t)x1[i] * w1[i];
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

#endif
