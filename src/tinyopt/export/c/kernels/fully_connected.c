/* FULLY_CONNECTED, int8: TFLM's reference integer dense layer (weights zero point 0), with the input
 * offset folded into the bias. Per-channel multipliers cover both per-tensor and per-channel models. On
 * the Cortex-M4 a layer packed as twin words (two filters per 16-bit lane, see pack_twins) runs on the
 * widened input vector: pair by pair here (tinyopt_fc2q), or in groups of 6 filters
 * (fully_connected_fc6.c, only in libraries with a layer that large); given no col buffer (NULL) the same
 * loops read the int8 input itself (tinyopt_fc2b, tinyopt_fc6b), unless the library defines
 * TINYOPT_FC_COL_ALWAYS (every dense layer has its col: those loops are left out). */
/* On a host without the Arm DSP path the int8 dot products are plain loops: let GCC vectorize them even
 * when the library is built with -O2 (its -O2 cost model leaves such loops scalar). */
#if defined(__GNUC__) && !defined(__clang__) && !(defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP)
#pragma GCC optimize("O3")
#endif
#include "tinyopt_fixedpoint.h"
#include "tinyopt_kernels.h"
#include "tinyopt_simd.h"
#include "tinyopt_fully_connected.h"

#if defined(TINYOPT_HAVE_MM2X2_ASM)
/* The input vector's lanes for the loops: per block of 4 values (x0, x2) and (x1, x3) sign-extended to
 * 16 bits. tinyopt_fc_widen(x, blocks, lanes): 4 blocks per pass (a run of 4 loads, 8 SXTB16, one STM;
 * x may be unaligned, lanes not), then one at a time. */
__asm__(
    ".pushsection .text.tinyopt_fc_widen,\"ax\",%progbits\n\t"
    ".syntax unified\n\t"
    ".thumb\n\t"
    ".balign 128\n\t"
    ".global tinyopt_fc_widen\n\t"
    ".type tinyopt_fc_widen, %function\n\t"
    ".thumb_func\n"
    "tinyopt_fc_widen:\n\t"
    "push {r4-r11}\n\t"
    "add r12, r0, r1, lsl #2\n\t"   /* x end */
    "bic r1, r1, #3\n\t"
    "add r1, r0, r1, lsl #2\n\t"    /* end of the 4-block passes */
    "cmp r0, r1\n\t"
    "beq 2f\n"
    "1:\n\t"
    "ldr r3, [r0]\n\t"
    "ldr r5, [r0, #4]\n\t"
    "ldr r7, [r0, #8]\n\t"
    "ldr r9, [r0, #12]\n\t"
    "sxtb16 r4, r3, ror #8\n\t"
    "sxtb16 r3, r3\n\t"
    "sxtb16 r6, r5, ror #8\n\t"
    "sxtb16 r5, r5\n\t"
    "sxtb16 r8, r7, ror #8\n\t"
    "sxtb16 r7, r7\n\t"
    "sxtb16 r10, r9, ror #8\n\t"
    "sxtb16 r9, r9\n\t"
    "add r0, r0, #16\n\t"
    "stm r2!, {r3-r10}\n\t"
    "cmp r0, r1\n\t"
    "bne 1b\n"
    "2:\n\t"
    "cmp r0, r12\n\t"
    "beq 4f\n"
    "3:\n\t"
    "ldr r3, [r0], #4\n\t"
    "sxtb16 r4, r3, ror #8\n\t"
    "sxtb16 r3, r3\n\t"
    "stm r2!, {r3, r4}\n\t"
    "cmp r0, r12\n\t"
    "bne 3b\n"
    "4:\n\t"
    "pop {r4-r11}\n\t"
    "bx lr\n\t"
    ".size tinyopt_fc_widen, .-tinyopt_fc_widen\n\t"
    ".popsection\n");

/* One twin pair against the lanes: acc[0] += sum 256 A + B, acc[1] += sum B (2 blocks per pass, a run of
 * 8 loads: 13 cycles per block). w: the pair's words, per block (v0, v2) then (v1, v3). */

#define TINYOPT_FC2_W(xr, w) \
    "smlad r4, " xr ", " w ", r4\n\t" \
    "sxtb16 " w ", " w "\n\t" \
    "smlad r5, " xr ", " w ", r5\n\t"

__asm__(
    ".pushsection .text.tinyopt_fc2q,\"ax\",%progbits\n\t"
    ".syntax unified\n\t"
    ".thumb\n\t"
    ".balign 128\n\t"         /* the loop inside one 128-byte block: no page boundary cuts its runs of loads */
    ".global tinyopt_fc2q\n\t"
    ".type tinyopt_fc2q, %function\n\t"
    ".thumb_func\n"
    "tinyopt_fc2q:\n\t"
    "push {r4-r11, lr}\n\t"
    "ldrd r4, r5, [r3]\n\t"
    "tst r2, #1\n\t"
    "add r2, r0, r2, lsl #3\n\t"    /* lanes end */
    "beq 1f\n\t"
    "ldr r6, [r0]\n\t"              /* an odd block first */
    "ldr r7, [r0, #4]\n\t"
    "ldr r8, [r1]\n\t"
    "ldr r9, [r1, #4]\n\t"
    TINYOPT_FC2_W("r6", "r8") TINYOPT_FC2_W("r7", "r9")
    "add r0, r0, #8\n\t"
    "add r1, r1, #8\n"
    "1:\n\t"
    "cmp r0, r2\n\t"
    "beq 3f\n"
    "2:\n\t"
    "ldr r6, [r0]\n\t"
    "ldr r7, [r0, #4]\n\t"
    "ldr r8, [r1]\n\t"
    "ldr r9, [r1, #4]\n\t"
    "ldr r10, [r0, #8]\n\t"
    "ldr r11, [r0, #12]\n\t"
    "ldr r12, [r1, #8]\n\t"
    "ldr lr, [r1, #12]\n\t"
    TINYOPT_FC2_W("r6", "r8") TINYOPT_FC2_W("r7", "r9") TINYOPT_FC2_W("r10", "r12") TINYOPT_FC2_W("r11", "lr")
    "add r0, r0, #16\n\t"
    "add r1, r1, #16\n\t"
    "cmp r0, r2\n\t"
    "bne 2b\n"
    "3:\n\t"
    "strd r4, r5, [r3]\n\t"
    "pop {r4-r11, pc}\n\t"
    ".size tinyopt_fc2q, .-tinyopt_fc2q\n\t"
    ".popsection\n");

#if !defined(TINYOPT_FC_COL_ALWAYS)
/* The same pair on the int8 input x itself (a layer run without col): per block one word, SXTB16 for
 * its (x0, x2) lanes and SXTB16 ror #8 for (x1, x3); 2 blocks per pass (a run of 6 loads), stopping on
 * x's end (no sentinel is possible on int8 data). x may be unaligned. */
__asm__(
    ".pushsection .text.tinyopt_fc2b,\"ax\",%progbits\n\t"
    ".syntax unified\n\t"
    ".thumb\n\t"
    ".balign 4\n\t"
    ".global tinyopt_fc2b\n\t"
    ".type tinyopt_fc2b, %function\n\t"
    ".thumb_func\n"
    "tinyopt_fc2b:\n\t"
    "push {r4-r11, lr}\n\t"
    "ldrd r4, r5, [r3]\n\t"
    "tst r2, #1\n\t"
    "add r2, r0, r2, lsl #2\n\t"    /* x end */
    "beq 1f\n\t"
    "ldr r6, [r0]\n\t"              /* an odd block first */
    "ldr r8, [r1]\n\t"
    "ldr r9, [r1, #4]\n\t"
    "sxtb16 r7, r6, ror #8\n\t"
    "sxtb16 r6, r6\n\t"
    TINYOPT_FC2_W("r6", "r8") TINYOPT_FC2_W("r7", "r9")
    "add r0, r0, #4\n\t"
    "add r1, r1, #8\n"
    "1:\n\t"
    "cmp r0, r2\n\t"
    "beq 3f\n"
    "2:\n\t"
    "ldr r6, [r0]\n\t"
    "ldr r10, [r0, #4]\n\t"
    "ldr r8, [r1]\n\t"
    "ldr r9, [r1, #4]\n\t"
    "ldr r12, [r1, #8]\n\t"
    "ldr lr, [r1, #12]\n\t"
    "sxtb16 r7, r6, ror #8\n\t"
    "sxtb16 r6, r6\n\t"
    "sxtb16 r11, r10, ror #8\n\t"
    "sxtb16 r10, r10\n\t"
    TINYOPT_FC2_W("r6", "r8") TINYOPT_FC2_W("r7", "r9")
    TINYOPT_FC2_W("r10", "r12") TINYOPT_FC2_W("r11", "lr")
    "add r0, r0, #8\n\t"
    "add r1, r1, #16\n\t"
    "cmp r0, r2\n\t"
    "bne 2b\n"
    "3:\n\t"
    "strd r4, r5, [r3]\n\t"
    "pop {r4-r11, pc}\n\t"
    ".size tinyopt_fc2b, .-tinyopt_fc2b\n\t"
    ".popsection\n");
#endif

/* SMMLAR(2 acc, m, r) - (acc < 0), >> s, saturated to int8: the asm loop's requantization. */
static int8_t fc_requant(int32_t acc2, const int32_t *mrs)
{
    int32_t y;
    __asm__("smmlar %0, %1, %2, %3" : "=r"(y) : "r"(acc2), "r"(mrs[0]), "r"(mrs[1]));
    y = (y + (acc2 >> 31)) >> mrs[2];
    __asm__("ssat %0, #8, %1" : "=r"(y) : "r"(y));
    return (int8_t)y;
}

/* Twin pairs one at a time: the filters after a layer's groups of 6, or all of a small layer's. x: the
 * widened lanes (tinyopt_fc2q), or with bytes the int8 input (tinyopt_fc2b). Per pair its words, then
 * the pairs' starting accumulators and [m, r, s] per real filter: n outputs. */
void tinyopt_fc_pairs(const void *x, int bytes, const int32_t *w, const int32_t *rq, int blocks, int8_t *out,
                      int n)
{
    const int pairs = (n + 1) / 2;
    const int32_t *mrs = rq + 2 * pairs;
    int j;
    for (j = 0; j < n; j += 2, rq += 2, w += 2 * blocks, out += 2, mrs += 6) {
        int32_t acc[2];
        acc[0] = rq[0];
        acc[1] = rq[1];
#if !defined(TINYOPT_FC_COL_ALWAYS)
        if (bytes) {
            tinyopt_fc2b((const int8_t *)x, w, blocks, acc);
        } else
#endif
        {
            tinyopt_fc2q((const int32_t *)x, w, blocks, acc);
        }
        out[0] = fc_requant((acc[0] - acc[1]) >> 7, mrs);
        if (j + 1 < n) {
            out[1] = fc_requant(2 * acc[1], mrs + 3);
        }
    }
    (void)bytes;
}

/* Input vector b as the loops read it: widened into col (its lanes, then the sentinel the 6-filter loop
 * stops on), or with col NULL the int8 input itself. */
const void *tinyopt_fc_lanes(const tinyopt_fc_params *p, const int8_t *in, int b, int8_t *col)
{
    int32_t *lanes = (int32_t *)(void *)col;
    const int blocks = p->accum_depth / 4;
#if !defined(TINYOPT_FC_COL_ALWAYS)
    if (col == NULL) {
        return in + b * p->accum_depth;
    }
#endif
    tinyopt_fc_widen(in + b * p->accum_depth, blocks, lanes);
    lanes[2 * blocks] = (int32_t)0x80008000u; /* two lanes of 0x8000: no sign-extended byte gives them */
    return lanes;
}
#endif

/* The portable loop: every layer on other builds, a layer without twin words on the M4. */
void tinyopt_fully_connected(const tinyopt_fc_params *p, const int8_t *in, int8_t *out)
{
    int b, oc;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *x = in + b * p->accum_depth;
        for (oc = 0; oc < p->out_c; ++oc) {
            int32_t acc = tinyopt_dot_s8(x, p->weights + oc * p->accum_depth, p->accum_depth, p->bias[oc]);
            acc = (p->small_acc ? tinyopt_mbqm_small(acc, p->multiplier[oc], p->shift[oc])
                                : tinyopt_mbqm(acc, p->multiplier[oc], p->shift[oc])) + p->output_offset;
            out[b * p->out_c + oc] = tinyopt_clamp8(acc, p->output_activation_min, p->output_activation_max);
        }
    }
}

/* A layer with twin words in pairs alone (small layers; on the M4 tinyopt_fc2q pair by pair, or
 * tinyopt_fc2b on the int8 input when col is NULL). */
void tinyopt_fully_connected_pairs(const tinyopt_fc_params *p, const int8_t *in, int8_t *out, int8_t *scratch,
                                   int8_t *col, int reverse, const int8_t *other)
{
#if defined(TINYOPT_HAVE_MM2X2_ASM)
    int b;
    for (b = 0; b < p->batches; ++b) {
        tinyopt_fc_pairs(tinyopt_fc_lanes(p, in, b, col), col == NULL, p->wpairs, p->rq,
                         p->accum_depth / 4, out + b * p->out_c, p->out_c);
    }
#else
    (void)col;
    tinyopt_fully_connected(p, in, out);
#endif
    (void)scratch;
    (void)reverse;
    (void)other;
}
