/* CONV_2D, int8 with per-channel requantization: the arithmetic of TFLM's reference integer conv.
 * The input offset is folded into the bias at generation time (sum w*(x+off) = sum w*x + off*sum w),
 * so a padded tap feeds the input zero point, which contributes exactly 0 as in the reference.
 * Output pixels go in pairs: their input patches are gathered once (im2col) and multiplied by two
 * filters at once (portable path), or, on the Cortex-M4, widened into 16-bit lanes and run through the
 * twin loop (tinyopt_mm24q: 2 pixels x 4 filters per pass, two filters per weight word); a lone last pixel
 * runs alone on conv2d_lone.c's single-pixel loop when the layer's entry is tinyopt_conv2d_lone. */
/* On a host without the Arm DSP path the int8 dot products are plain loops: let GCC vectorize them even
 * when the library is built with -O2 (its -O2 cost model leaves such loops scalar). */
#if defined(__GNUC__) && !defined(__clang__) && !(defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP)
#pragma GCC optimize("O3")
#endif
#include <string.h>

#include "tinyopt_fixedpoint.h"
#include "tinyopt_kernels.h"
#include "tinyopt_simd.h"

static int is_direct(const tinyopt_conv_params *p)
{
    return p->filter_h == 1 && p->filter_w == 1 && p->padding_h == 0 && p->padding_w == 0 && p->patch == p->in_c;
}

/* The input patch of output pixel (oy, ox) in weight order [KH][KW][I], zero-padded to p->patch. */
static const int8_t *patch_of(const tinyopt_conv_params *p, const int8_t *in, int oy, int ox, int8_t *buf)
{
    const int y0 = oy * p->stride_h - p->padding_h, x0 = ox * p->stride_w - p->padding_w;
    const int seg = p->filter_w * p->in_c;
    int8_t *d = buf;
    int ky, kx;
    if (is_direct(p)) {
        return in + (y0 * p->in_w + x0) * p->in_c;
    }
    for (ky = 0; ky < p->filter_h; ++ky, d += seg) {
        const int iy = y0 + ky * p->dilation_h;
        if (iy < 0 || iy >= p->in_h) {
            memset(d, p->input_zero_point, (size_t)seg);
        } else if (p->dilation_w == 1 && x0 >= 0 && x0 + p->filter_w <= p->in_w) {
            memcpy(d, in + (iy * p->in_w + x0) * p->in_c, (size_t)seg);
        } else if (p->dilation_w == 1) { /* a run of padding, the taps inside in one copy, padding again */
            /* taps [lo, hi) are inside; padding wider than the kernel leaves none */
            const int lo = x0 >= 0 ? 0 : (-x0 < p->filter_w ? -x0 : p->filter_w);
            const int right = p->in_w - x0 < p->filter_w ? p->in_w - x0 : p->filter_w, hi = right > lo ? right : lo;
            memset(d, p->input_zero_point, (size_t)(lo * p->in_c));
            if (hi > lo) {
                memcpy(d + lo * p->in_c, in + (iy * p->in_w + x0 + lo) * p->in_c, (size_t)((hi - lo) * p->in_c));
            }
            memset(d + hi * p->in_c, p->input_zero_point, (size_t)((p->filter_w - hi) * p->in_c));
        } else {
            for (kx = 0; kx < p->filter_w; ++kx) {
                const int ix = x0 + kx * p->dilation_w;
                if (ix < 0 || ix >= p->in_w) {
                    memset(d + kx * p->in_c, p->input_zero_point, (size_t)p->in_c);
                } else {
                    memcpy(d + kx * p->in_c, in + (iy * p->in_w + ix) * p->in_c, (size_t)p->in_c);
                }
            }
        }
    }
    if (p->patch > p->filter_h * seg) {
        memset(d, 0, (size_t)(p->patch - p->filter_h * seg)); /* meets zero weights */
    }
    return buf;
}

#if defined(TINYOPT_HAVE_MM2X2_ASM)
/* The Cortex-M4 conv loop: 2 pixels x 4 filters per pass, every group of 4 filters of the layer in one
 * call. x: the pixels' patches widened to 16-bit lanes, per block of 4 values [p0 (v0,v2), p1 (v0,v2),
 * p0 (v1,v3), p1 (v1,v3)] (16 bytes); w: per group of filters, per block, 4 twin words (pack_twins: each
 * carries two filters, SMLAD on it sums 256 A + B and on its SXTB16 B alone); rq: per group 16 words
 * (pack_conv_twins). Per block 8 loads, 4 SXTB16, 16 SMLAD: 32 MACs in ~30 cycles. The block loop is
 * unrolled 8 times with immediate offsets and entered part-way (like Duff's device) for the count's
 * remainder. Then per group: A = (first - second) >> 7 (already doubled for SMMLAR), B doubled,
 * y = SMMLAR(2 acc, m, r) - (acc < 0), >> s, SSAT, the bytes of each pixel packed into a word, the
 * layer's clamp when it is narrower than int8 (SSUB8/SEL on 4 lanes), one store per pixel. */
typedef struct {
    const uint32_t *x;  /* 0 */
    const int32_t *w;   /* 4 */
    const int32_t *rq;  /* 8 */
    int8_t *d0;         /* 12: pixel 0's outputs, 4 per group */
    int8_t *d1;         /* 16: pixel 1's (may equal d0 for a lone pixel) */
    int blocks;         /* 20: blocks of 4 patch values */
    int groups;         /* 24: groups of 4 filters (> 0) */
    uint32_t lo4, hi4;  /* 28, 32: the clamp bounds in 4 bytes */
    int clamp;          /* 36: nonzero when the clamp is narrower than int8 */
    /* 1x1 rows: 0, or that many pixel pairs, each widened by the routine into x from in (pixel 1 at in +
     * xstep), then in += istep and d0, d1 += ostep */
    int pairs;          /* 40 */
    const int8_t *in;   /* 44 */
    int xstep, istep, ostep; /* 48, 52, 56 */
} tinyopt_mm24_args;

void tinyopt_mm24q(const void *a); /* a: tinyopt_mm24_args */

#define TINYOPT_MM24_HALF(o) \
    "ldr.w r10, [r0, #(" o ")]\n\t" \
    "ldr.w r11, [r0, #(" o "+4)]\n\t" \
    "ldr.w r12, [r1, #(" o ")]\n\t" \
    "ldr.w lr, [r1, #(" o "+4)]\n\t" \
    "smlad r2, r10, r12, r2\n\t" \
    "smlad r3, r11, r12, r3\n\t" \
    "sxtb16 r12, r12\n\t" \
    "smlad r4, r10, r12, r4\n\t" \
    "smlad r5, r11, r12, r5\n\t" \
    "smlad r6, r10, lr, r6\n\t" \
    "smlad r7, r11, lr, r7\n\t" \
    "sxtb16 lr, lr\n\t" \
    "smlad r8, r10, lr, r8\n\t" \
    "smlad r9, r11, lr, r9\n\t"

/* Requantize one channel of both pixels (accumulators ra, rb): [m, r, s] from the rq stream (r0). */
#define TINYOPT_MM24_RQ(ra, rb) \
    "ldm r0!, {r10, r11, r12}\n\t" \
    "smmlar lr, " ra ", r10, r11\n\t" \
    "add " ra ", lr, " ra ", asr #31\n\t" \
    "asr " ra ", " ra ", r12\n\t" \
    "ssat " ra ", #8, " ra "\n\t" \
    "smmlar lr, " rb ", r10, r11\n\t" \
    "add " rb ", lr, " rb ", asr #31\n\t" \
    "asr " rb ", " rb ", r12\n\t" \
    "ssat " rb ", #8, " rb "\n\t"

/* Two pixels' patches widened into the twin loop's layout: block i (4 int8 values at a + i * step and
 * b + i * step) becomes [a (v0,v2), b (v0,v2), a (v1,v3), b (v1,v3)] at xw + 16 i. Two blocks per pass:
 * 4 pipelined loads, 8 SXTB16, one STM of 8 words (13.5 cycles per block). blocks > 0. */
void tinyopt_widen24(const int8_t *a, const int8_t *b, int blocks, uint32_t *xw, int step);
__asm__(
    ".pushsection .text.tinyopt_widen24,\"ax\",%progbits\n\t"
    ".syntax unified\n\t"
    ".thumb\n\t"
    ".balign 4\n\t"
    ".global tinyopt_widen24\n\t"
    ".type tinyopt_widen24, %function\n\t"
    ".thumb_func\n"
    "tinyopt_widen24:\n\t"
    "push {r4-r6, r8-r11, lr}\n\t"
    "ldr r12, [sp, #32]\n\t"
    "lsrs r2, r2, #1\n\t"
    "bcc 2f\n\t"
    "ldr r6, [r0]\n\t"
    "ldr r8, [r1]\n\t"
    "add r0, r0, r12\n\t"
    "add r1, r1, r12\n\t"
    "sxtb16 r4, r6\n\t"
    "sxtb16 r5, r8\n\t"
    "sxtb16 r6, r6, ror #8\n\t"
    "sxtb16 r8, r8, ror #8\n\t"
    "stm r3!, {r4, r5, r6, r8}\n"
    "2:\n\t"
    "cbz r2, 3f\n"
    "1:\n\t"
    "ldr r6, [r0]\n\t"
    "ldr r8, [r1]\n\t"
    "ldr r11, [r0, r12]\n\t"
    "ldr lr, [r1, r12]\n\t"
    "add r0, r0, r12, lsl #1\n\t"
    "add r1, r1, r12, lsl #1\n\t"
    "sxtb16 r4, r6\n\t"
    "sxtb16 r5, r8\n\t"
    "sxtb16 r6, r6, ror #8\n\t"
    "sxtb16 r8, r8, ror #8\n\t"
    "sxtb16 r9, r11\n\t"
    "sxtb16 r10, lr\n\t"
    "sxtb16 r11, r11, ror #8\n\t"
    "sxtb16 lr, lr, ror #8\n\t"
    "stm r3!, {r4, r5, r6, r8, r9, r10, r11, lr}\n\t"
    "subs r2, r2, #1\n\t"
    "bne 1b\n"
    "3:\n\t"
    "pop {r4-r6, r8-r11, pc}\n\t"
    ".size tinyopt_widen24, .-tinyopt_widen24\n\t"
    ".popsection\n");

/* Frame (sp): 0 x end, 4 entry, 8 x start, 12 w rewind, 16 d0, 20 d1 - d0, 24 rq, 28 rq end, 32 w,
 * 36 clamp, 40 lo4, 44 hi4, 48 pairs left, 52 in, 56 xstep, 60 istep, 64 ostep, 68 the pair's d0,
 * 72 w start, 76 rq start, 80 x, 84 blocks. */
__asm__(
    ".pushsection .text.tinyopt_mm24q,\"ax\",%progbits\n\t"
    ".syntax unified\n\t"
    ".thumb\n\t"
    ".balign 4\n\t"
    ".global tinyopt_mm24q\n\t"
    ".type tinyopt_mm24q, %function\n\t"
    ".thumb_func\n"
    "tinyopt_mm24q:\n\t"
    "push {r4-r11, lr}\n\t"
    "sub sp, sp, #88\n\t"
    "ldr r6, [r0, #40]\n\t"     /* pixel pairs: 0 for one pair already widened */
    "ldr r1, [r0, #20]\n\t"     /* blocks */
    "and r2, r1, #7\n\t"
    "rsb r2, r2, #8\n\t"
    "and r2, r2, #7\n\t"        /* j0: the block the first pass starts at */
    "lsl r3, r2, #4\n\t"        /* 16 j0: both pointers start that much early */
    "add r1, r1, r2\n\t"
    "ldr r4, [r0, #0]\n\t"
    "sub r4, r4, r3\n\t"
    "add r5, r4, r1, lsl #4\n\t"
    "str r5, [sp, #0]\n\t"
    "strd r4, r3, [sp, #8]\n\t"
    "movs r5, #112\n\t"         /* bytes of code per block */
    "mul r5, r2, r5\n\t"
    "adr r8, 2f\n\t"
    "add r8, r8, r5\n\t"
    "str r8, [sp, #4]\n\t"
    "ldrd r4, r5, [r0, #12]\n\t"
    "sub r5, r5, r4\n\t"
    "strd r4, r5, [sp, #16]\n\t"
    "ldrd r1, r7, [r0, #4]\n\t" /* w, rq */
    "ldr r8, [r0, #24]\n\t"
    "add r8, r7, r8, lsl #6\n\t"
    "str r8, [sp, #28]\n\t"
    "ldr r8, [r0, #36]\n\t"
    "ldrd r9, r10, [r0, #28]\n\t"
    "str r8, [sp, #36]\n\t"
    "strd r9, r10, [sp, #40]\n\t"
    "subs r2, r6, #1\n\t"
    "it lt\n\t"
    "movlt r2, #0\n\t"
    "str r2, [sp, #48]\n\t"
    "cbz r6, 9f\n\t"
    "str r4, [sp, #68]\n\t"
    "strd r1, r7, [sp, #72]\n\t"
    "ldr r2, [r0, #0]\n\t"
    "ldr r3, [r0, #20]\n\t"
    "strd r2, r3, [sp, #80]\n\t"
    "add r8, r0, #44\n\t"
    "ldm r8, {r2-r5}\n\t"      /* in, xstep, istep, ostep */
    "add r8, sp, #52\n\t"
    "stm r8, {r2-r5}\n\t"
    "b 4f\n"
    "9:\n\t"
    "mov r0, r7\n"
    "1:\n\t"                    /* a group of 4 filters: the pairs' starting accumulators */
    "ldm r0!, {r2, r4, r6, r8}\n\t"
    "str r0, [sp, #24]\n\t"
    "mov r3, r2\n\t"
    "mov r5, r4\n\t"
    "mov r7, r6\n\t"
    "mov r9, r8\n\t"
    "ldrd r0, r10, [sp, #8]\n\t"
    "sub r1, r1, r10\n\t"
    "ldr r10, [sp, #4]\n\t"
    "mov pc, r10\n\t"
    ".balign 4\n"
    "2:\n\t"
    TINYOPT_MM24_HALF("0") TINYOPT_MM24_HALF("8")
    TINYOPT_MM24_HALF("16") TINYOPT_MM24_HALF("24")
    TINYOPT_MM24_HALF("32") TINYOPT_MM24_HALF("40")
    TINYOPT_MM24_HALF("48") TINYOPT_MM24_HALF("56")
    TINYOPT_MM24_HALF("64") TINYOPT_MM24_HALF("72")
    TINYOPT_MM24_HALF("80") TINYOPT_MM24_HALF("88")
    TINYOPT_MM24_HALF("96") TINYOPT_MM24_HALF("104")
    TINYOPT_MM24_HALF("112") TINYOPT_MM24_HALF("120")
    "add r0, r0, #128\n\t"
    "add r1, r1, #128\n\t"
    "ldr r10, [sp, #0]\n\t"
    "cmp r0, r10\n\t"
    "bne 2b\n\t"
    "str r1, [sp, #32]\n\t"
    "sub r2, r2, r4\n\t"        /* 256 A -> 2 A */
    "asr r2, r2, #7\n\t"
    "sub r3, r3, r5\n\t"
    "asr r3, r3, #7\n\t"
    "add r4, r4, r4\n\t"        /* B -> 2 B */
    "add r5, r5, r5\n\t"
    "sub r6, r6, r8\n\t"
    "asr r6, r6, #7\n\t"
    "sub r7, r7, r9\n\t"
    "asr r7, r7, #7\n\t"
    "add r8, r8, r8\n\t"
    "add r9, r9, r9\n\t"
    "ldr r0, [sp, #24]\n\t"
    TINYOPT_MM24_RQ("r2", "r3") TINYOPT_MM24_RQ("r4", "r5")
    TINYOPT_MM24_RQ("r6", "r7") TINYOPT_MM24_RQ("r8", "r9")
    "str r0, [sp, #24]\n\t"
    "bfi r2, r4, #8, #8\n\t"
    "bfi r3, r5, #8, #8\n\t"
    "bfi r2, r6, #16, #8\n\t"
    "bfi r3, r7, #16, #8\n\t"
    "bfi r2, r8, #24, #8\n\t"
    "bfi r3, r9, #24, #8\n\t"
    "ldr r1, [sp, #36]\n\t"
    "cbz r1, 3f\n\t"
    "ldrd r10, r11, [sp, #40]\n\t"
    "ssub8 r12, r2, r10\n\t"
    "sel r2, r2, r10\n\t"
    "ssub8 r12, r11, r2\n\t"
    "sel r2, r2, r11\n\t"
    "ssub8 r12, r3, r10\n\t"
    "sel r3, r3, r10\n\t"
    "ssub8 r12, r11, r3\n\t"
    "sel r3, r3, r11\n"
    "3:\n\t"
    "ldrd r0, r1, [sp, #16]\n\t"
    "str r3, [r0, r1]\n\t"
    "str r2, [r0], #4\n\t"
    "str r0, [sp, #16]\n\t"
    "ldr r1, [sp, #32]\n\t"
    "ldrd r0, r10, [sp, #24]\n\t"
    "cmp r0, r10\n\t"
    "bne 1b\n\t"
    "ldr r0, [sp, #48]\n\t"     /* pixel pairs left */
    "cbz r0, 8f\n\t"
    "subs r0, r0, #1\n\t"
    "str r0, [sp, #48]\n\t"
    "ldrd r0, r1, [sp, #52]\n\t"
    "ldrd r2, r3, [sp, #60]\n\t"
    "add r0, r0, r2\n\t"
    "str r0, [sp, #52]\n\t"
    "ldr r4, [sp, #68]\n\t"
    "add r4, r4, r3\n\t"
    "str r4, [sp, #68]\n\t"
    "b 4f\n"
    "8:\n\t"
    "add sp, sp, #88\n\t"
    "pop {r4-r11, pc}\n"
    "4:\n\t"                    /* widen the pixel pair at in (two blocks per pass) into x */
    "ldrd r0, r1, [sp, #52]\n\t"
    "add r1, r0, r1\n\t"
    "ldrd r3, r2, [sp, #80]\n\t"
    "lsrs r2, r2, #1\n\t"
    "bcc 5f\n\t"
    "ldr r6, [r0], #4\n\t"
    "ldr r8, [r1], #4\n\t"
    "sxtb16 r4, r6\n\t"
    "sxtb16 r5, r8\n\t"
    "sxtb16 r6, r6, ror #8\n\t"
    "sxtb16 r8, r8, ror #8\n\t"
    "stm r3!, {r4, r5, r6, r8}\n"
    "5:\n\t"
    "cbz r2, 7f\n"
    "6:\n\t"
    "ldr r6, [r0]\n\t"
    "ldr r8, [r1]\n\t"
    "ldr r11, [r0, #4]\n\t"
    "ldr lr, [r1, #4]\n\t"
    "add r0, r0, #8\n\t"
    "add r1, r1, #8\n\t"
    "sxtb16 r4, r6\n\t"
    "sxtb16 r5, r8\n\t"
    "sxtb16 r6, r6, ror #8\n\t"
    "sxtb16 r8, r8, ror #8\n\t"
    "sxtb16 r9, r11\n\t"
    "sxtb16 r10, lr\n\t"
    "sxtb16 r11, r11, ror #8\n\t"
    "sxtb16 lr, lr, ror #8\n\t"
    "stm r3!, {r4, r5, r6, r8, r9, r10, r11, lr}\n\t"
    "subs r2, r2, #1\n\t"
    "bne 6b\n"
    "7:\n\t"
    "ldr r4, [sp, #68]\n\t"
    "str r4, [sp, #16]\n\t"
    "ldrd r1, r0, [sp, #72]\n\t"
    "b 1b\n"
    "\t"
    ".size tinyopt_mm24q, .-tinyopt_mm24q\n\t"
    ".popsection\n");
#endif

/* Requantization constants read once per row: stores through int8 pointers may alias anything, so
 * fields read from *p inside the loop would be reloaded after every store. */
typedef struct {
    const int32_t *mult, *shift;
    int32_t offset, lo, hi;
    int small;
    const tinyopt_add_params *add;
    int conv_first;
} requant_t;

static void put(const requant_t *q, int8_t *dst, const int8_t *other, int i, int32_t acc, int oc)
{
    acc = (q->small ? tinyopt_mbqm_small(acc, q->mult[oc], q->shift[oc])
                    : tinyopt_mbqm(acc, q->mult[oc], q->shift[oc])) + q->offset;
    acc = acc < q->lo ? q->lo : (acc > q->hi ? q->hi : acc);
    if (other != NULL) { /* fused residual ADD: other[i] is read before dst[i] (maybe the same byte) */
        dst[i] = q->conv_first ? tinyopt_add_one(q->add, acc, other[i]) : tinyopt_add_one(q->add, other[i], acc);
    } else {
        dst[i] = (int8_t)acc;
    }
}

#if defined(TINYOPT_HAVE_MM2X2_ASM)
/* Where a pixel's patch rows are inside the input: bytes [lo, hi) of each row's segment (its first tap at
 * input column x0), the row's length, and x0 in bytes. The same for every row of the window. */
typedef struct {
    int lo, hi, row_bytes, x0c;
    uint32_t zp4;
} seg_t;

static seg_t seg_of(const tinyopt_conv_params *p, int x0)
{
    seg_t g;
    const int hi_tap = p->in_w - x0 < p->filter_w ? p->in_w - x0 : p->filter_w;
    g.lo = (x0 < 0 ? -x0 : 0) * p->in_c;
    g.hi = (hi_tap > 0 ? hi_tap : 0) * p->in_c;
    g.row_bytes = p->in_w * p->in_c;
    g.x0c = x0 * p->in_c;
    g.zp4 = 0x01010101u * (uint8_t)p->input_zero_point;
    return g;
}

/* Word i of a patch row (input row `row`): the 4 input bytes, or the input zero point for bytes in the
 * padding. A word cut by one edge is one load from inside the row, shifted, the zero point filling the
 * cut bytes; bytes past the taps (zero weights) are read where they are inside the row. */
static uint32_t seg_word(const seg_t *g, const int8_t *row, int i)
{
    const int b0 = 4 * i;
    uint32_t v = 0;
    int j;
    if (b0 >= g->lo && (b0 + 4 <= g->hi || g->x0c + b0 + 4 <= g->row_bytes)) {
        if (b0 < g->hi) {
            return tinyopt_ld4(row + g->x0c + b0);
        }
    }
    if (b0 + 4 <= g->lo || b0 >= g->hi) {
        return g->zp4;
    }
    if (g->row_bytes >= 4 && b0 < g->lo && b0 + 4 <= g->hi) { /* cut by the left edge: first bytes, shifted up */
        const int k = 8 * (g->lo - b0);
        return tinyopt_ld4(row) << k | (g->zp4 & ((1u << k) - 1u));
    }
    if (g->row_bytes >= 4 && b0 >= g->lo && g->x0c + g->hi == g->row_bytes) { /* by the right edge: shifted down */
        const int k = 8 * (g->hi - b0);
        return tinyopt_ld4(row + g->row_bytes - 4) >> (32 - k) | g->zp4 << k;
    }
    for (j = 3; j >= 0; --j) { /* little-endian: byte j of the word is segment byte 4i + j */
        const int at = b0 + j;
        v = v << 8 | (uint8_t)(at >= g->lo && at < g->hi ? row[g->x0c + at] : (int8_t)g->zp4);
    }
    return v;
}

/* The twin loop's patches of output pixels (oya, oxa) and (oyb, oxb) gathered and widened row by row,
 * straight from the input rows (no column dilation; p->twin_row bytes per patch row, the taps' and zero
 * weights' after them): a row in the padding is the zero point's lanes, a row whose windows are both
 * inside one widening call (a padded row may not read past the input), a row cut by the left or right
 * padding tap by tap (whole-word taps) or word by word. */
static void widen_rows(const tinyopt_conv_params *p, const int8_t *in, int oya, int oxa, int oyb, int oxb,
                       uint32_t *xw)
{
    const int c = p->in_c, words = p->twin_row / 4, end = p->in_h * p->in_w * c;
    const int ya = oya * p->stride_h - p->padding_h, yb = oyb * p->stride_h - p->padding_h;
    const int xa = oxa * p->stride_w - p->padding_w, xb = oxb * p->stride_w - p->padding_w;
    const int inside = xa >= 0 && xb >= 0 && xa + p->filter_w <= p->in_w && xb + p->filter_w <= p->in_w;
    const uint32_t zp4 = 0x01010101u * (uint8_t)p->input_zero_point, zp = tinyopt_sxtb16(zp4);
    const int last = (p->filter_h - 1) * p->dilation_h, step = p->dilation_h * p->in_w * c;
    seg_t ga, gb;
    int ky, i;
    if (inside && ya >= 0 && yb >= 0 && ya + last < p->in_h && yb + last < p->in_h &&
        ((ya + last) * p->in_w + xa) * c + p->twin_row <= end && ((yb + last) * p->in_w + xb) * c + p->twin_row <= end) {
        const int8_t *a = in + (ya * p->in_w + xa) * c, *b = in + (yb * p->in_w + xb) * c;
        for (ky = 0; ky < p->filter_h; ++ky, xw += 4 * words, a += step, b += step) {
            tinyopt_widen24(a, b, words, xw, 4);
        }
        return;
    }
    ga = seg_of(p, xa);
    gb = seg_of(p, xb);
    for (ky = 0; ky < p->filter_h; ++ky, xw += 4 * words) {
        const int iya = ya + ky * p->dilation_h, iyb = yb + ky * p->dilation_h;
        const int oka = iya >= 0 && iya < p->in_h, okb = iyb >= 0 && iyb < p->in_h;
        const int8_t *ra = in + iya * p->in_w * c, *rb = in + iyb * p->in_w * c;
        if (!oka && !okb) {
            for (i = 0; i < 4 * words; ++i) {
                xw[i] = zp;
            }
        } else if (oka && okb && inside && (iya * p->in_w + xa) * c + p->twin_row <= end &&
                   (iyb * p->in_w + xb) * c + p->twin_row <= end) {
            tinyopt_widen24(ra + xa * c, rb + xb * c, words, xw, 4);
        } else if (oka && okb && c % 4 == 0) { /* tap by tap: each tap's words are all inside or all padding */
            int kx;
            for (kx = 0; kx < p->filter_w; ++kx) {
                const int ia = xa + kx, ib = xb + kx, n = c / 4;
                uint32_t *t = xw + kx * c;
                if (ia >= 0 && ia < p->in_w && ib >= 0 && ib < p->in_w) {
                    tinyopt_widen24(ra + ia * c, rb + ib * c, n, t, 4);
                    continue;
                }
                for (i = 0; i < n; ++i, t += 4) {
                    const uint32_t u = ia >= 0 && ia < p->in_w ? tinyopt_ld4(ra + ia * c + 4 * i) : zp4;
                    const uint32_t v = ib >= 0 && ib < p->in_w ? tinyopt_ld4(rb + ib * c + 4 * i) : zp4;
                    t[0] = tinyopt_sxtb16(u);
                    t[1] = tinyopt_sxtb16(v);
                    t[2] = tinyopt_sxtb16_ror8(u);
                    t[3] = tinyopt_sxtb16_ror8(v);
                }
            }
        } else {
            for (i = 0; i < words; ++i) {
                const uint32_t u = oka ? seg_word(&ga, ra, i) : zp4, v = okb ? seg_word(&gb, rb, i) : zp4;
                xw[4 * i] = tinyopt_sxtb16(u);
                xw[4 * i + 1] = tinyopt_sxtb16(v);
                xw[4 * i + 2] = tinyopt_sxtb16_ror8(u);
                xw[4 * i + 3] = tinyopt_sxtb16_ror8(v);
            }
        }
    }
}

/* The patches of output pixels (oya, oxa) and (oyb, oxb) in the twin loop's layout, in col (4P bytes for
 * a patch of P). A 1x1 layer's patches are its input pixels, widened from where they are; patch rows of
 * adjacent taps are read straight from the input (widen_rows). Otherwise (dilated columns) each patch is
 * gathered into the lower half of col, the two are interleaved per 4 bytes into the upper half, and that
 * is widened front to back over col (block i reads bytes 2P + 8i.. and writes 16i..16i + 16 <=
 * 2P + 8i + 8: nothing unread is lost). */
static const uint32_t *widen_pair(const tinyopt_conv_params *p, const int8_t *in, int oya, int oxa, int oyb,
                                  int oxb, int8_t *col)
{
    const int n = p->patch, blocks = n / 4;
    uint32_t *mix = (uint32_t *)(void *)(col + 2 * n), *slot = (uint32_t *)(void *)col;
    const int8_t *a, *b;
    int i;
    if (is_direct(p)) {
        a = in + (oya * p->stride_h * p->in_w + oxa * p->stride_w) * n;
        b = in + (oyb * p->stride_h * p->in_w + oxb * p->stride_w) * n;
        tinyopt_widen24(a, b, blocks, slot, 4);
        return slot;
    }
    if (p->twin_row) {
        widen_rows(p, in, oya, oxa, oyb, oxb, slot);
        return slot;
    }
    a = patch_of(p, in, oya, oxa, col);
    b = patch_of(p, in, oyb, oxb, col + n);
    for (i = 0; i < blocks; ++i) {
        mix[2 * i] = tinyopt_ld4(a + 4 * i);
        mix[2 * i + 1] = tinyopt_ld4(b + 4 * i);
    }
    tinyopt_widen24((const int8_t *)mix, (const int8_t *)mix + 4, blocks, slot, 8);
    return slot;
}

/* Bytes of a patch in the twin loop's layout (rows padded to words when read straight from the input). */
static int twin_patch(const tinyopt_conv_params *p)
{
    return p->twin_row ? p->filter_h * p->twin_row : p->patch;
}

/* A pixel pair through tinyopt_mm24q, or (lone not NULL) a lone pixel through `lone`: the layer's
 * single-pixel loop (conv2d_lone.c), or tinyopt_mm24q with d1 = d0. Outputs at d0.. (the pixels' outputs
 * are adjacent), every whole group of 4 filters straight into place; a last partial group through a small
 * buffer. With a fused ADD, at most TINYOPT_FUSED_MAX_C channels at a time go to a stack buffer and are
 * then added to o0.. element by element (o0[i] is read before d0[i] is written: they may be the same
 * bytes). */
static void mm24_pixels(const tinyopt_conv_params *p, const uint32_t *xw, int8_t *d0, tinyopt_conv_single lone,
                        const int8_t *o0)
{
    const int oc_n = p->out_c, blocks = twin_patch(p) / 4;
    int8_t tmp[2 * TINYOPT_FUSED_MAX_C];
    const tinyopt_conv_single run = lone != NULL ? lone : tinyopt_mm24q;
    tinyopt_mm24_args a;
    int c0, i;
    a.x = xw;
    a.pairs = 0;
    a.blocks = blocks;
    a.lo4 = 0x01010101u * (uint8_t)p->output_activation_min;
    a.hi4 = 0x01010101u * (uint8_t)p->output_activation_max;
    a.clamp = p->output_activation_min > -128 || p->output_activation_max < 127;
    if (o0 == NULL && oc_n % 4 == 0) { /* whole groups straight into place */
        a.w = p->wpairs;
        a.rq = p->rq;
        a.d0 = d0;
        a.d1 = lone != NULL ? d0 : d0 + oc_n;
        a.groups = oc_n / 4;
        run(&a);
        return;
    }
    for (c0 = 0; c0 < oc_n; c0 += TINYOPT_FUSED_MAX_C) {
        const int n = oc_n - c0 < TINYOPT_FUSED_MAX_C ? oc_n - c0 : TINYOPT_FUSED_MAX_C, whole = n / 4;
        int8_t *e0 = o0 != NULL ? tmp : d0 + c0, *e1 = o0 != NULL ? tmp + n : lone != NULL ? e0 : e0 + oc_n;
        a.w = p->wpairs + c0 * blocks;
        a.rq = p->rq + c0 * 4;
        if (whole > 0) {
            a.d0 = e0;
            a.d1 = e1;
            a.groups = whole;
            run(&a);
        }
        if (n % 4) { /* the last 1-3 filters: a group padded with zero filters, through a buffer */
            int8_t part[8];
            a.w = p->wpairs + (c0 + 4 * whole) * blocks;
            a.rq = p->rq + (c0 + 4 * whole) * 4;
            a.d0 = part;
            a.d1 = part + 4;
            a.groups = 1;
            run(&a);
            for (i = 0; i < n % 4; ++i) {
                e0[4 * whole + i] = part[i];
                if (lone == NULL) {
                    e1[4 * whole + i] = part[4 + i];
                }
            }
        }
        for (i = 0; o0 != NULL && i < (lone != NULL ? 1 : 2); ++i) {
            const int at = i * oc_n + c0;
            if (p->add_conv_first) {
                tinyopt_add_run(p->add, tmp + i * n, o0 + at, d0 + at, n);
            } else {
                tinyopt_add_run(p->add, o0 + at, tmp + i * n, d0 + at, n);
            }
        }
    }
}

#endif

/* Two int8 patches times a filter pair stored interleaved per 4 values (acc as in tinyopt_mm2x2_c). */
TINYOPT_INLINE void pair_dot(const int8_t *x0, const int8_t *x1, const int8_t *w, int n, int32_t *acc)
{
    tinyopt_mm2x2_c(x0, x1, w, n, acc);
}

/* The filter pairs of a pixel pair (d1 NULL: a lone last pixel, computed twice and stored once) for a
 * layer with 'small' accumulators and no fused ADD: each filter's multiplier and shift are read once for
 * both pixels, no per-output branch. Returns the first channel not done (the odd last filter). */
TINYOPT_INLINE int pixel_pairs(const tinyopt_conv_params *p, const requant_t *q,
                               const int8_t *x0, const int8_t *x1, int8_t *d0, int8_t *d1)
{
    const int n = p->patch, oc_n = p->out_c;
    const int8_t *weights = p->weights;
    const int32_t *bias = p->bias, *mult = q->mult, *shift = q->shift;
    const int32_t offset = q->offset, lo = q->lo, hi = q->hi;
    int oc;
    for (oc = 0; oc + 1 < oc_n; oc += 2) {
        const int32_t m0 = mult[oc], m1 = mult[oc + 1], s0 = shift[oc], s1 = shift[oc + 1];
        int32_t acc[4];
        acc[0] = acc[1] = bias[oc];
        acc[2] = acc[3] = bias[oc + 1];
        pair_dot(x0, x1, weights + oc * n, n, acc);
        d0[oc] = tinyopt_clamp8(tinyopt_mbqm_small(acc[0], m0, s0) + offset, lo, hi);
        d0[oc + 1] = tinyopt_clamp8(tinyopt_mbqm_small(acc[2], m1, s1) + offset, lo, hi);
        if (d1 != NULL) {
            d1[oc] = tinyopt_clamp8(tinyopt_mbqm_small(acc[1], m0, s0) + offset, lo, hi);
            d1[oc + 1] = tinyopt_clamp8(tinyopt_mbqm_small(acc[3], m1, s1) + offset, lo, hi);
        }
    }
    return oc;
}

/* Output row oy, two pixels at a time (an odd width's last pixel alone on `single`, or paired with
 * itself). A 1x1 layer takes its patches straight from the input; any other gathers them into col. */
static void conv_row(const tinyopt_conv_params *p, const int8_t *in, int oy, int8_t *col, int8_t *dst,
                     const int8_t *other, tinyopt_conv_single single)
{
    const int n = p->patch, oc_n = p->out_c;
    const int8_t *weights = p->weights;
    const int32_t *bias = p->bias;
    requant_t q;
    int ox, oc;
#if defined(TINYOPT_HAVE_MM2X2_ASM)
    if (p->wpairs != NULL) { /* every group of 4 filters and its requantization in one asm routine */
        ox = 0;
        if (is_direct(p) && other == NULL && oc_n % 4 == 0 && p->out_w >= 2) {
            /* a 1x1 row: the routine widens and runs every pixel pair itself (an odd last pixel below) */
            tinyopt_mm24_args a;
            a.x = (const uint32_t *)(void *)col;
            a.w = p->wpairs;
            a.rq = p->rq;
            a.d0 = dst;
            a.d1 = dst + oc_n;
            a.blocks = n / 4;
            a.groups = oc_n / 4;
            a.lo4 = 0x01010101u * (uint8_t)p->output_activation_min;
            a.hi4 = 0x01010101u * (uint8_t)p->output_activation_max;
            a.clamp = p->output_activation_min > -128 || p->output_activation_max < 127;
            a.pairs = p->out_w / 2;
            a.in = in + oy * p->stride_h * p->in_w * n;
            a.xstep = p->stride_w * n;
            a.istep = 2 * p->stride_w * n;
            a.ostep = 2 * oc_n;
            tinyopt_mm24q(&a);
            ox = p->out_w / 2 * 2;
        }
        for (; ox < p->out_w; ox += 2) {
            const int lone = ox + 1 >= p->out_w;
            mm24_pixels(p, widen_pair(p, in, oy, ox, oy, lone ? ox : ox + 1, col), dst + ox * oc_n,
                        lone ? single : NULL, other != NULL ? other + ox * oc_n : NULL);
        }
        return;
    }
#else
    (void)single;
#endif
    q.mult = p->multiplier;
    q.shift = p->shift;
    q.offset = p->output_offset;
    q.lo = p->output_activation_min;
    q.hi = p->output_activation_max;
    q.small = p->small_acc;
    q.add = p->add;
    q.conv_first = p->add_conv_first;
    for (ox = 0; ox < p->out_w; ox += 2) {
        const int lone = ox + 1 >= p->out_w, ox1 = lone ? ox : ox + 1;
        int8_t *d0 = dst + ox * oc_n, *d1 = lone ? NULL : d0 + oc_n;
        const int8_t *o0 = other != NULL ? other + ox * oc_n : NULL;
        const int8_t *o1 = o0 != NULL && !lone ? o0 + oc_n : NULL;
        const int8_t *x0 = patch_of(p, in, oy, ox, col), *x1 = patch_of(p, in, oy, ox1, col + n);
        oc = other == NULL && q.small ? pixel_pairs(p, &q, x0, x1, d0, d1) : 0;
        for (; oc + 1 < oc_n; oc += 2) {
            int32_t acc[4];
            acc[0] = acc[1] = bias[oc];
            acc[2] = acc[3] = bias[oc + 1];
            pair_dot(x0, x1, weights + oc * n, n, acc);
            put(&q, d0, o0, oc, acc[0], oc);
            put(&q, d0, o0, oc + 1, acc[2], oc + 1);
            if (d1 != NULL) {
                put(&q, d1, o1, oc, acc[1], oc);
                put(&q, d1, o1, oc + 1, acc[3], oc + 1);
            }
        }
        if (oc < oc_n) { /* odd channel count: the last filter is stored alone */
            put(&q, d0, o0, oc, tinyopt_dot_s8(x0, weights + oc * n, n, bias[oc]), oc);
            if (d1 != NULL) {
                put(&q, d1, o1, oc, tinyopt_dot_s8(x1, weights + oc * n, n, bias[oc]), oc);
            }
        }
    }
}

void tinyopt_conv2d_run(const tinyopt_conv_params *p, const int8_t *in, int8_t *out, int8_t *scratch,
                        int8_t *col, int reverse, const int8_t *other, tinyopt_conv_single single)
{
    const int row_bytes = p->out_w * p->out_c;
    const uintptr_t in_at = (uintptr_t)in, out_at = (uintptr_t)out;
    int k;
    const uintptr_t pixels = (uintptr_t)p->out_h * (uintptr_t)p->out_w;
    const int disjoint = out_at + pixels * (uintptr_t)p->out_c <= in_at || out_at >= in_at + pixels * (uintptr_t)p->in_c;
#if defined(TINYOPT_HAVE_MM2X2_ASM)
    const int widened = p->wpairs != NULL; /* the twin loop copies each pixel pair before it is used */
    if (single == NULL) { /* no single-pixel loop: a lone pixel runs as a pair with itself */
        single = tinyopt_mm24q;
    }
#else
    const int widened = 0;
#endif
    if (!reverse && is_direct(p) && p->stride_h == 1 && p->stride_w == 1 &&
        (disjoint || (widened && out_at <= in_at && p->out_c <= p->in_c))) {
        /* 1x1, stride 1: the image is one long row, so pixel pairs run across row ends, and no scratch row
         * is needed. In place, the asm path copies a pixel pair before writing its outputs, and output
         * pixels 0..k end at out + (k+1) out_c <= in + (k+1) in_c, where the input not yet read begins. */
        tinyopt_conv_params flat = *p;
        flat.in_w = flat.out_w = p->out_h * p->out_w;
        flat.in_h = flat.out_h = 1;
        conv_row(&flat, in, 0, col, out, other, single);
        return;
    }
#if defined(TINYOPT_HAVE_MM2X2_ASM)
    if (p->wpairs != NULL && scratch != NULL && p->row_pairs) {
        /* twin loop in place, odd rows: two rows at a time into the 2-row scratch, pixel pairs across their
         * boundary, then both rows stored in the order rows go (the bounds of one row at a time hold) */
        const int w = p->out_w;
        for (k = 0; k < p->out_h; k += 2) {
            const int lone = k + 1 >= p->out_h, y = reverse ? (lone ? 0 : p->out_h - 2 - k) : k;
            const int total = lone ? w : 2 * w;
            int i;
            for (i = 0; i < total; i += 2) {
                const int last = i + 1 >= total, i1 = last ? i : i + 1;
                mm24_pixels(p, widen_pair(p, in, y + i / w, i % w, y + i1 / w, i1 % w, col),
                            scratch + i * p->out_c, last ? single : NULL, NULL);
            }
            if (reverse && !lone) {
                tinyopt_store_row(p, scratch + row_bytes, other != NULL ? other + (y + 1) * row_bytes : NULL,
                                  out + (y + 1) * row_bytes, row_bytes);
            }
            tinyopt_store_row(p, scratch, other != NULL ? other + y * row_bytes : NULL, out + y * row_bytes,
                              row_bytes);
            if (!reverse && !lone) {
                tinyopt_store_row(p, scratch + row_bytes, other != NULL ? other + (y + 1) * row_bytes : NULL,
                                  out + (y + 1) * row_bytes, row_bytes);
            }
        }
        return;
    }
    if (p->wpairs != NULL && scratch == NULL && p->out_w % 2) {
        /* twin loop, output apart from the input, odd rows: pixel pairs run across row ends (pixel i of the
         * image at out + i * out_c), so no last pixel is paired with itself */
        const int total = p->out_h * p->out_w;
        for (k = 0; k < total; k += 2) {
            const int lone = k + 1 >= total, k1 = lone ? k : k + 1;
            mm24_pixels(p, widen_pair(p, in, k / p->out_w, k % p->out_w, k1 / p->out_w, k1 % p->out_w, col),
                        out + k * p->out_c, lone ? single : NULL, other != NULL ? other + k * p->out_c : NULL);
        }
        return;
    }
#endif
    for (k = 0; k < p->out_h; ++k) {
        const int oy = reverse ? p->out_h - 1 - k : k;
        const int8_t *other_row = other != NULL ? other + oy * row_bytes : NULL;
        if (scratch != NULL) {
            conv_row(p, in, oy, col, scratch, NULL, single);
            tinyopt_store_row(p, scratch, other_row, out + oy * row_bytes, row_bytes);
        } else {
            conv_row(p, in, oy, col, out + oy * row_bytes, other_row, single);
        }
    }
}

void tinyopt_conv2d(const tinyopt_conv_params *p, const int8_t *in, int8_t *out, int8_t *scratch,
                    int8_t *col, int reverse, const int8_t *other)
{
    tinyopt_conv2d_run(p, in, out, scratch, col, reverse, other, NULL);
}
