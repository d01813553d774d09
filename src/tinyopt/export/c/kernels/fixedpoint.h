/* Integer helpers shared by the kernels: rounding-doubling high multiply, rounding divide by a power
 * of two and the requantization that combines them. Same rounding as TFLM's reference kernels. */
#ifndef TINYOPT_FIXEDPOINT_H
#define TINYOPT_FIXEDPOINT_H

#include <stdint.h>

/* (a * b * 2) >> 32 with round-half-away-from-zero; the one overflowing case saturates. The division
 * of the reference is truncation toward zero, written as a shift so that no 64-bit division is called. */
static inline int32_t tinyopt_srdhm(int32_t a, int32_t b)
{
    int64_t ab;
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    }
    ab = (int64_t)a * (int64_t)b;
    ab += ab >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
    if (ab < 0) {
        ab += ((int64_t)1 << 31) - 1;
    }
    return (int32_t)(ab >> 31);
}

/* x / 2^e rounded half away from zero (e in 0..31). */
static inline int32_t tinyopt_rdbpot(int32_t x, int e)
{
    const int32_t mask = (int32_t)(((uint32_t)1 << e) - 1u);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> e) + (remainder > threshold ? 1 : 0);
}

/* x * multiplier * 2^(shift - 31): the requantization of every conv, depthwise and dense output.
 * Same result as rdbpot(srdhm(x << left, multiplier), right), in fewer instructions:
 * - the multiplier is a Q31 value in [0, 2^31), never INT32_MIN, so srdhm cannot saturate;
 * - srdhm's nudge (+2^30 for ab >= 0, 1 - 2^30 below) followed by truncation toward zero equals
 *   floor((ab + 2^30) / 2^31) for every ab, which is one arithmetic shift;
 * - rdbpot (round half away from zero) equals (y + 2^(e-1) - (y < 0)) >> e, done in 64 bits. */
static inline int32_t tinyopt_mbqm(int32_t x, int32_t multiplier, int shift)
{
    int32_t y;
    if (shift > 0) {
        x = (int32_t)((uint32_t)x << shift);
    }
    y = (int32_t)(((int64_t)x * multiplier + ((int64_t)1 << 30)) >> 31);
    if (shift >= 0) {
        return y;
    }
    return (int32_t)(((int64_t)y + ((int64_t)1 << (-shift - 1)) - (y < 0)) >> -shift);
}

#if defined(__GNUC__)
#define TINYOPT_INLINE static inline __attribute__((always_inline))
#else
#define TINYOPT_INLINE static inline
#endif

/* tinyopt_mbqm for the common case the generator proves at build time: |x| < 2^30 for every input
 * (bias plus 128 * sum |w|) and shift <= -1. Then 2x fits in 32 bits and srdhm(x, m) =
 * floor((x*m + 2^30) / 2^31) = floor((2x*m + 2^31) / 2^32), which is one SMMULR on a DSP core; the
 * rounding right shift stays in 32 bits. Same integers as tinyopt_mbqm. */
/* The multiply of tinyopt_mbqm_small alone: tinyopt_mbqm(x, multiplier, 0) for |x| < 2^30. */
TINYOPT_INLINE int32_t tinyopt_mbqm_small_noshift(int32_t x, int32_t multiplier)
{
    int32_t y;
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
    __asm__("smmulr %0, %1, %2" : "=r"(y) : "r"(x * 2), "r"(multiplier));
#else
    y = (int32_t)(((int64_t)x * multiplier + ((int64_t)1 << 30)) >> 31);
#endif
    return y;
}

TINYOPT_INLINE int32_t tinyopt_mbqm_small(int32_t x, int32_t multiplier, int shift)
{
    const int32_t y = tinyopt_mbqm_small_noshift(x, multiplier);
    return (y + (1 << (-shift - 1)) + (y >> 31)) >> -shift; /* y >> 31: -1 below zero */
}

static inline int8_t tinyopt_clamp8(int32_t v, int32_t lo, int32_t hi)
{
    return (int8_t)(v < lo ? lo : (v > hi ? hi : v));
}

#endif
