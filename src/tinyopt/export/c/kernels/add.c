/* ADD, int8, same shapes: both inputs are brought to a common scale with 20 bits of headroom, summed,
 * then requantized to the output (TFLM's reference). Element i is read before it is written, so the
 * output may alias either input. */
#include <string.h>

#include "tinyopt_fixedpoint.h"
#include "tinyopt_kernels.h"

/* tinyopt_mbqm for |x| < 2^30 and shift <= 0: tinyopt_mbqm_small, or for shift 0 its multiply alone. */
TINYOPT_INLINE int32_t scale_small(int32_t x, int32_t multiplier, int shift)
{
    return shift < 0 ? tinyopt_mbqm_small(x, multiplier, shift) : tinyopt_mbqm_small_noshift(x, multiplier);
}

int8_t tinyopt_add_one(const tinyopt_add_params *p, int32_t in1, int32_t in2)
{
    const int32_t a = (int32_t)((uint32_t)(p->input1_offset + in1) << p->left_shift);
    const int32_t b = (int32_t)((uint32_t)(p->input2_offset + in2) << p->left_shift);
    int32_t raw;
    if (p->small) {
        raw = scale_small(scale_small(a, p->input1_multiplier, p->input1_shift) +
                              scale_small(b, p->input2_multiplier, p->input2_shift),
                          p->output_multiplier, p->output_shift);
    } else {
        raw = tinyopt_mbqm(tinyopt_mbqm(a, p->input1_multiplier, p->input1_shift) +
                               tinyopt_mbqm(b, p->input2_multiplier, p->input2_shift),
                           p->output_multiplier, p->output_shift);
    }
    return tinyopt_clamp8(raw + p->output_offset, p->output_activation_min, p->output_activation_max);
}

/* One requantization of the 'small' path as a few constants: y = SMMLAR(v, m, r) where v = 2 x (the
 * doubling of tinyopt_mbqm_small), then + (v < 0 ? corr : 0), >> s. With s > 0, r = 2^(s-1) (+ an offset
 * times 2^s) and corr = -1 give tinyopt_mbqm_small's rounding (the sign of v decides exactly where the sign
 * of the product would: they differ only when the product is 0, and then the -1 does not change the
 * shift); with s = 0, r is the offset alone and corr = 0. */
typedef struct {
    int32_t m, r, corr;
    int s;
} scale_t;

static scale_t scale_of(int32_t multiplier, int shift, int32_t offset)
{
    scale_t c;
    c.m = multiplier;
    c.s = -shift;
    c.r = (c.s > 0 ? (int32_t)1 << (c.s - 1) : 0) + (int32_t)((uint32_t)offset << c.s);
    c.corr = c.s > 0 ? -1 : 0;
    return c;
}

TINYOPT_INLINE int32_t scale_apply(const scale_t *c, int32_t v)
{
    int32_t y;
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
    __asm__("smmlar %0, %1, %2, %3" : "=r"(y) : "r"(v), "r"(c->m), "r"(c->r));
#else
    y = (int32_t)(((int64_t)v * c->m + ((int64_t)1 << 31)) >> 32) + c->r;
#endif
    return (y + ((v >> 31) & c->corr)) >> c->s;
}

#if defined(__GNUC__) && defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && defined(__thumb2__)
/* The Cortex-M4 loop for TFLM's usual ADD: the input with the larger scale has multiplier 2^30 and shift 0,
 * which scales (x + off) << 20 to exactly (x + off) << 19; the other (g) and the output take the rounding
 * of scale_apply with a right shift (s >= 1); the clamp is all of int8. 16 instructions per element (two
 * temporaries left: x_h is loaded after g's scaling).
 * c: [k_g, m_g, r_g, s_g, off_h << 19, m_o, r_o, s_o]; the three pointers are advanced to the ends and
 * walked with one negative index. */
static void add_run_m4(const int32_t *c, const int8_t *g, const int8_t *h, int8_t *out, int n)
{
    register const int8_t *rg __asm__("r0") = g + n;
    register const int8_t *rh __asm__("r1") = h + n;
    register int8_t *rd __asm__("r2") = out + n;
    register int ri __asm__("r3") = -n;
    register const int32_t *rc __asm__("r12") = c;
    __asm__ volatile(
        "push {r7}\n\t"
        "ldm r12, {r4, r5, r6, r7, r8, r9, r10, r11}\n"
        "1:\n\t"
        "ldrsb r12, [r0, r3]\n\t"
        "add r12, r4, r12, lsl #21\n\t"
        "smmlar lr, r12, r5, r6\n\t"
        "add lr, lr, r12, asr #31\n\t"
        "asr lr, lr, r7\n\t"
        "ldrsb r12, [r1, r3]\n\t"
        "add lr, lr, r8\n\t"
        "add lr, lr, r12, lsl #19\n\t"
        "add lr, lr, lr\n\t"
        "smmlar r12, lr, r9, r10\n\t"
        "add r12, r12, lr, asr #31\n\t"
        "asr r12, r12, r11\n\t"
        "ssat r12, #8, r12\n\t"
        "strb r12, [r2, r3]\n\t"
        "adds r3, r3, #1\n\t"
        "bne 1b\n\t"
        "pop {r7}\n\t"
        : "+r"(rg), "+r"(rh), "+r"(rd), "+r"(ri), "+r"(rc)
        :
        : "r4", "r5", "r6", "r8", "r9", "r10", "r11", "lr", "cc", "memory");
}
#endif

/* out[i] = ADD(a[i], b[i]) for i < n, element i read before it is written (out may be a or b). */
void tinyopt_add_run(const tinyopt_add_params *p, const int8_t *a, const int8_t *b, int8_t *out, int n)
{
    int i;
#if defined(__GNUC__) && defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && defined(__thumb2__)
    if (p->small && p->left_shift == 20 && n > 0 && p->output_shift < 0 && p->output_activation_min == -128 &&
        p->output_activation_max == 127 &&
        ((p->input2_multiplier == 1 << 30 && p->input2_shift == 0 && p->input1_shift < 0) ||
         (p->input1_multiplier == 1 << 30 && p->input1_shift == 0 && p->input2_shift < 0))) {
        const int first = p->input2_multiplier == 1 << 30 && p->input2_shift == 0; /* a is the scaled one */
        const scale_t sg = first ? scale_of(p->input1_multiplier, p->input1_shift, 0)
                                 : scale_of(p->input2_multiplier, p->input2_shift, 0);
        const scale_t so = scale_of(p->output_multiplier, p->output_shift, p->output_offset);
        int32_t c[8];
        c[0] = (int32_t)((uint32_t)(first ? p->input1_offset : p->input2_offset) << 21);
        c[1] = sg.m;
        c[2] = sg.r;
        c[3] = sg.s;
        c[4] = (int32_t)((uint32_t)(first ? p->input2_offset : p->input1_offset) << 19);
        c[5] = so.m;
        c[6] = so.r;
        c[7] = so.s;
        add_run_m4(c, first ? a : b, first ? b : a, out, n);
        return;
    }
#endif
    if (p->small && p->left_shift == 20) { /* the constants hoisted, the three scalings inlined */
        const scale_t s1 = scale_of(p->input1_multiplier, p->input1_shift, 0);
        const scale_t s2 = scale_of(p->input2_multiplier, p->input2_shift, 0);
        const scale_t so = scale_of(p->output_multiplier, p->output_shift, p->output_offset);
        const int32_t k1 = (int32_t)((uint32_t)p->input1_offset << 21), k2 = (int32_t)((uint32_t)p->input2_offset << 21);
        const int32_t lo = p->output_activation_min, hi = p->output_activation_max;
        for (i = 0; i < n; ++i) {
            const int32_t u = (int32_t)((uint32_t)(int32_t)a[i] << 21) + k1; /* 2 ((a + off) << 20) */
            const int32_t v = (int32_t)((uint32_t)(int32_t)b[i] << 21) + k2;
            const int32_t sum = scale_apply(&s1, u) + scale_apply(&s2, v);
            const int32_t z = scale_apply(&so, sum + sum);
            out[i] = (int8_t)(z < lo ? lo : (z > hi ? hi : z));
        }
        return;
    }
    for (i = 0; i < n; ++i) {
        out[i] = tinyopt_add_one(p, a[i], b[i]);
    }
}

void tinyopt_add(const tinyopt_add_params *p, const int8_t *in1, const int8_t *in2, int8_t *out)
{
    tinyopt_add_run(p, in1, in2, out, p->size);
}

void tinyopt_store_row(const tinyopt_conv_params *p, const int8_t *row, const int8_t *other, int8_t *dst,
                       int n)
{
    if (p->add == NULL) {
        if (dst != row) {
            memcpy(dst, row, (size_t)n);
        }
        return;
    }
    /* other[i] is read before dst[i] is written: they may be the same byte */
    if (p->add_conv_first) {
        tinyopt_add_run(p->add, row, other, dst, n);
    } else {
        tinyopt_add_run(p->add, other, row, dst, n);
    }
}
