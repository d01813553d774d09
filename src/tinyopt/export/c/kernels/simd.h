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

#if defined(TINYOPT_HAVE_MM2X2_ASM)
/* The nine taps of a 3x3 depthwise pixel for channels [c, c+4): r0 walks the tap pointers, r1 is the
 * channel offset, r12 the packed int16 weights; accumulators r4..r6, r8 are channels c..c+3. */
#define TINYOPT_DW9_TAPS \
    ".rept 9\n\t" \
    "ldr r3, [r0], #4\n\t" \
    "ldr r3, [r3, r1]\n\t" \
    "ldrd r9, r10, [r12], #8\n\t" \
    "sxtb16 r11, r3\n\t" \
    "sxtb16 r3, r3, ror #8\n\t" \
    "smlabb r4, r11, r9, r4\n\t" \
    "smlatt r6, r11, r9, r6\n\t" \
    "smlabb r5, r3, r10, r5\n\t" \
    "smlatt r8, r3, r10, r8\n\t" \
    ".endr\n\t"

/* Depthwise 3x3, four channels [c, c+4) of one output pixel: per tap one word of input (four channels),
 * split into 16-bit lanes (c, c+2) and (c+1, c+3), multiplied lane by lane (SMLABB/SMLATT) with weights
 * pre-packed as int16 pairs in words [tap][(w_c, w_c+2), (w_c+1, w_c+3)]. The nine taps are unrolled:
 * 9 instructions per 4 MACs. */
static inline void tinyopt_dw9x4_asm(const int8_t *const *taps, int c, const int32_t *w, int32_t *acc)
{
    register const int8_t *const *rt __asm__("r0") = taps;
    register int rc __asm__("r1") = c;
    register const int32_t *rw __asm__("r12") = w;
    register int32_t *racc __asm__("lr") = acc;
    __asm__ volatile(
        "ldr r4, [lr]\n\t"
        "ldr r5, [lr, #4]\n\t"
        "ldr r6, [lr, #8]\n\t"
        "ldr r8, [lr, #12]\n\t"
        TINYOPT_DW9_TAPS
        "str r4, [lr]\n\t"
        "str r5, [lr, #4]\n\t"
        "str r6, [lr, #8]\n\t"
        "str r8, [lr, #12]\n\t"
        : "+r"(rt), "+r"(rc), "+r"(rw), "+r"(racc)
        :
        : "r3", "r4", "r5", "r6", "r8", "r9", "r10", "r11", "memory");
}
#endif

#if defined(TINYOPT_HAVE_MM2X2_ASM)
/* One block of 4 input values: both pixels' widened words with one LDM, both filters' int8 words with
 * one LDRD, 4 SXTB16 and 8 SMLAD: 14 instructions per 16 multiply-accumulates. */
#define TINYOPT_MMQ_BLOCK \
    "ldm r0!, {r9, r10, r11, r12}\n\t" \
    "ldrd r3, lr, [r1], #8\n\t" \
    "sxtb16 r7, r3\n\t" \
    "sxtb16 r3, r3, ror #8\n\t" \
    "smlad r4, r9, r7, r4\n\t" \
    "smlad r4, r10, r3, r4\n\t" \
    "smlad r5, r11, r7, r5\n\t" \
    "smlad r5, r12, r3, r5\n\t" \
    "sxtb16 r7, lr\n\t" \
    "sxtb16 lr, lr, ror #8\n\t" \
    "smlad r6, r9, r7, r6\n\t" \
    "smlad r6, r10, lr, r6\n\t" \
    "smlad r8, r11, r7, r8\n\t" \
    "smlad r8, r12, lr, r8\n\t"
/* r2 blocks of `block`, unrolled twice: an odd count runs one block first (local labels 2 and 3). */
#define TINYOPT_BLOCKS(block) \
    "lsrs r2, r2, #1\n\t" \
    "bcc 2f\n\t" \
    block \
    "cmp r2, #0\n\t" \
    "beq 3f\n" \
    "2:\n\t" \
    block \
    block \
    "subs r2, r2, #1\n\t" \
    "bne 2b\n" \
    "3:\n\t"

/* acc -> int8: y = SMMULR(2 acc, m) (the rounding doubling high multiply), then
 * (y + (y < 0 ? -1 : 0) + r) >> s, SSAT to int8 and a byte store with post-increment. */
#define TINYOPT_MMQ_REQUANT(acc, m, r, s, dst) \
    "add " acc ", " acc ", " acc "\n\t" \
    "smmulr " acc ", " acc ", " m "\n\t" \
    "add " acc ", " acc ", " acc ", asr #31\n\t" \
    "add " acc ", " acc ", " r "\n\t" \
    "asr " acc ", " acc ", " s "\n\t" \
    "ssat " acc ", #8, " acc "\n\t" \
    "strb " acc ", [" dst "], #1\n\t"

/* The filter-pair loop alone, for layers whose requantization stays in C (a narrowed clamp, a long shift,
 * an odd channel count): x and w as for tinyopt_mmq_asm, acc[0] += x0.w0, acc[1] += x1.w0,
 * acc[2] += x0.w1, acc[3] += x1.w1. r7 is saved by hand (Thumb frame pointer). */
static inline void tinyopt_mm2x2_asm(const uint32_t *x, const int8_t *w, int blocks, int32_t *acc)
{
    register const uint32_t *r0_ __asm__("r0") = x;
    register const int8_t *r1_ __asm__("r1") = w;
    register int r2_ __asm__("r2") = blocks;
    register int32_t *r3_ __asm__("r3") = acc;
    __asm__ volatile(
        "push {r3, r7}\n\t"
        "ldm r3, {r4, r5, r6, r8}\n\t"
        TINYOPT_BLOCKS(TINYOPT_MMQ_BLOCK)
        "pop {r3, r7}\n\t"
        "stm r3, {r4, r5, r6, r8}\n\t"
        : "+r"(r0_), "+r"(r1_), "+r"(r2_), "+r"(r3_)
        :
        : "r4", "r5", "r6", "r8", "r9", "r10", "r11", "r12", "lr", "cc", "memory");
}

/* A pixel pair times every filter pair of a conv layer, requantized and stored: the whole layer's inner
 * work in one routine, so nothing spills between filter pairs. x: the two pixels' patches widened and
 * interleaved per 4 values [p0 even, p0 odd, p1 even, p1 odd] (blocks = patch / 4 groups); w: filters
 * interleaved in pairs per 4 values; rq: pack_requant's 8 words per filter pair; d0/d1: the pixels'
 * outputs (equal pointers and equal patches for a lone pixel). Per filter pair 14 instructions per 16
 * MACs plus ~40 (bias, requantization of 4 outputs, loop). r7 is saved by hand (Thumb frame pointer). */
static inline void tinyopt_mmq_asm(const uint32_t *x, const int8_t *w, int blocks, const int32_t *rq, int8_t *d0,
                                   int8_t *d1, int pairs)
{
    register const uint32_t *r0_ __asm__("r0") = x;
    register const int8_t *r1_ __asm__("r1") = w;
    register int r2_ __asm__("r2") = blocks;
    register const int32_t *r3_ __asm__("r3") = rq;
    register int8_t *r4_ __asm__("r4") = d0;
    register int8_t *r5_ __asm__("r5") = d1;
    register const int32_t *r6_ __asm__("r6") = rq + 8 * pairs;
    __asm__ volatile(
        "push {r7}\n\t"
        "push {r0, r2, r3, r4, r5, r6}\n\t" /* [sp]: x, blocks, rq, d0, d1, rq end */
        "1:\n\t"
        "ldm r3!, {r4, r6}\n\t" /* the pair's biases */
        "str r3, [sp, #8]\n\t"
        "mov r5, r4\n\t"
        "mov r8, r6\n\t"
        "ldrd r0, r2, [sp]\n\t"
        TINYOPT_BLOCKS(TINYOPT_MMQ_BLOCK)
        "ldr r3, [sp, #8]\n\t"
        "ldm r3!, {r7, r9, r10, r11, r12, lr}\n\t" /* m0 m1 r0 r1 s0 s1 */
        "ldrd r0, r2, [sp, #12]\n\t"
        TINYOPT_MMQ_REQUANT("r4", "r7", "r10", "r12", "r0")
        TINYOPT_MMQ_REQUANT("r5", "r7", "r10", "r12", "r2")
        TINYOPT_MMQ_REQUANT("r6", "r9", "r11", "lr", "r0")
        TINYOPT_MMQ_REQUANT("r8", "r9", "r11", "lr", "r2")
        "strd r0, r2, [sp, #12]\n\t"
        "ldr r0, [sp, #20]\n\t"
        "cmp r3, r0\n\t"
        "bne 1b\n\t"
        "add sp, sp, #24\n\t"
        "pop {r7}\n\t"
        : "+r"(r0_), "+r"(r1_), "+r"(r2_), "+r"(r3_), "+r"(r4_), "+r"(r5_), "+r"(r6_)
        :
        : "r8", "r9", "r10", "r11", "r12", "lr", "cc", "memory");
}
#endif

#if defined(TINYOPT_HAVE_MM2X2_ASM)
/* One output pixel of a 3x3 depthwise layer, every 4-channel group, requantized and stored: the taps
 * as in tinyopt_dw9x4_asm (9 instructions per 4 MACs), then the group's packed constants
 * [b x4, m x4, r x4, s x4] (see pack_requant) with four LDMs and the requantization of
 * TINYOPT_MMQ_REQUANT: ~117 instructions per 36 MACs, nothing spilled. */
static inline void tinyopt_dw9q_asm(const int8_t *const *taps, int channels, const int32_t *lanes,
                                    const int32_t *rq, int8_t *dst)
{
    register const int8_t *const *r0_ __asm__("r0") = taps;
    register int r1_ __asm__("r1") = 0;
    register int8_t *r2_ __asm__("r2") = dst;
    register const int32_t *r3_ __asm__("r3") = rq;
    register const int32_t *r12_ __asm__("r12") = lanes;
    register int lr_ __asm__("lr") = channels;
    __asm__ volatile(
        "push {r7}\n\t"
        "mov r7, r3\n"
        "1:\n\t"
        "ldm r7!, {r4, r5, r6, r8}\n\t" /* biases of channels c..c+3 */
        TINYOPT_DW9_TAPS
        "sub r0, r0, #36\n\t"
        "ldm r7!, {r3, r9, r10, r11}\n\t" /* multipliers */
        "add r4, r4, r4\n\t"
        "smmulr r4, r4, r3\n\t"
        "add r5, r5, r5\n\t"
        "smmulr r5, r5, r9\n\t"
        "add r6, r6, r6\n\t"
        "smmulr r6, r6, r10\n\t"
        "add r8, r8, r8\n\t"
        "smmulr r8, r8, r11\n\t"
        "ldm r7!, {r3, r9, r10, r11}\n\t" /* rounding + output offset */
        "add r4, r4, r4, asr #31\n\t"
        "add r4, r4, r3\n\t"
        "add r5, r5, r5, asr #31\n\t"
        "add r5, r5, r9\n\t"
        "add r6, r6, r6, asr #31\n\t"
        "add r6, r6, r10\n\t"
        "add r8, r8, r8, asr #31\n\t"
        "add r8, r8, r11\n\t"
        "ldm r7!, {r3, r9, r10, r11}\n\t" /* right shifts */
        "asr r4, r4, r3\n\t"
        "ssat r4, #8, r4\n\t"
        "strb r4, [r2], #1\n\t"
        "asr r5, r5, r9\n\t"
        "ssat r5, #8, r5\n\t"
        "strb r5, [r2], #1\n\t"
        "asr r6, r6, r10\n\t"
        "ssat r6, #8, r6\n\t"
        "strb r6, [r2], #1\n\t"
        "asr r8, r8, r11\n\t"
        "ssat r8, #8, r8\n\t"
        "strb r8, [r2], #1\n\t"
        "add r1, r1, #4\n\t"
        "cmp r1, lr\n\t"
        "bne 1b\n\t"
        "pop {r7}\n\t"
        : "+r"(r0_), "+r"(r1_), "+r"(r2_), "+r"(r3_), "+r"(r12_), "+r"(lr_)
        :
        : "r4", "r5", "r6", "r8", "r9", "r10", "r11", "cc", "memory");
}
#endif

/* The portable twin of the 1x1 loop: int8 pixels, filters interleaved per 4 input channels. */
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
