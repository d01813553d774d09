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

/* x * multiplier * 2^(shift - 31): the requantization of every conv, depthwise and dense output. */
static inline int32_t tinyopt_mbqm(int32_t x, int32_t multiplier, int shift)
{
    const int left = shift > 0 ? shift : 0;
    const int right = shift > 0 ? 0 : -shift;
    return tinyopt_rdbpot(tinyopt_srdhm((int32_t)((uint32_t)x << left), multiplier), right);
}

static inline int8_t tinyopt_clamp8(int32_t v, int32_t lo, int32_t hi)
{
    return (int8_t)(v < lo ? lo : (v > hi ? hi : v));
}

#endif
