/* Dot products of int8 vectors. On a core with the DSP extension (Cortex-M4/M7/M33) two int8 pairs
 * are sign-extended into 16-bit lanes (SXTB16) and multiplied-accumulated at once (SMLAD); elsewhere
 * a plain loop that host compilers vectorize. Both paths give the same exact integer sums. */
#ifndef TINYOPT_SIMD_H
#define TINYOPT_SIMD_H

#include <stdint.h>
#include <string.h>

#include "tinyopt_kernels.h"

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

/* Two pixels times a filter pair (the portable conv loop): int8 patches, filters interleaved per 4 values. */
static inline void tinyopt_mm2x2_c(const int8_t *x0, const int8_t *x1, const int8_t *w, int n, int32_t *acc)
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    int b, j;
    for (b = 0; b < n; b += 4, w += 8) {
        for (j = 0; j < 4; ++j) {
            const int32_t u = x0[b + j], v = x1[b + j], p = w[j], q = w[4 + j];
            a0 += u * p;
            a1 += v * p;
            a2 += u * q;
            a3 += v * q;
        }
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

#endif
