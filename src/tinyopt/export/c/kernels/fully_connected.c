/* FULLY_CONNECTED, int8: TFLM's reference integer dense layer (weights zero point 0), with the input
 * offset folded into the bias. Per-channel multipliers cover both per-tensor and per-channel models. On
 * the Cortex-M4 (twin weight words packed) the 8-filter loop tinyopt_fc8q runs the layer. */
/* On a host without the Arm DSP path the int8 dot products are plain loops: let GCC vectorize them even
 * when the library is built with -O2 (its -O2 cost model leaves such loops scalar). */
#if defined(__GNUC__) && !defined(__clang__) && !(defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP)
#pragma GCC optimize("O3")
#endif
#include "tinyopt_fixedpoint.h"
#include "tinyopt_kernels.h"
#include "tinyopt_simd.h"

#if defined(TINYOPT_HAVE_MM2X2_ASM)
/* The Cortex-M4 dense loop: one input vector times 8 filters per pass (4 twin pairs, see pack_twins),
 * every group of 8 filters in one call. Per block of 4 inputs: one LDR and two SXTB16 for the input,
 * 8 twin words (pipelined in pairs), 8 SXTB16 and 16 SMLAD: 32 MACs in ~39 cycles. The block loop is
 * unrolled 8 times with immediate offsets and entered part-way for the count's remainder. Per group:
 * A = (first - second) >> 7 (doubled for SMMLAR), B doubled, then per channel [m, r, s] (pack_fc_twins):
 * SMMLAR(2 acc, m, r) - (acc < 0), >> s, SSAT, a byte store. The clamp is all of int8. */
typedef struct {
    const int8_t *x;    /* 0 */
    const int32_t *w;   /* 4 */
    const int32_t *rq;  /* 8 */
    int8_t *d;          /* 12 */
    int blocks;         /* 16: blocks of 4 inputs */
    int groups;         /* 20: groups of 8 filters (> 0) */
} tinyopt_fc8_args;

void tinyopt_fc8q(const tinyopt_fc8_args *a);

/* Two twin words (k: byte offset in the group's block) against the input lanes in xr: pairs j and j+1. */
#define TINYOPT_FC8_TWO(k, xr, a1, a2, b1, b2) \
    "ldr.w r12, [r1, #(" k ")]\n\t" \
    "ldr.w lr, [r1, #(" k "+4)]\n\t" \
    "smlad " a1 ", " xr ", r12, " a1 "\n\t" \
    "sxtb16 r12, r12\n\t" \
    "smlad " a2 ", " xr ", r12, " a2 "\n\t" \
    "smlad " b1 ", " xr ", lr, " b1 "\n\t" \
    "sxtb16 lr, lr\n\t" \
    "smlad " b2 ", " xr ", lr, " b2 "\n\t"

#define TINYOPT_FC8_BLOCK(xo, wo) \
    "ldr.w r11, [r0, #(" xo ")]\n\t" \
    "sxtb16 r10, r11\n\t" \
    "sxtb16 r11, r11, ror #8\n\t" \
    TINYOPT_FC8_TWO(wo, "r10", "r2", "r3", "r4", "r5") \
    TINYOPT_FC8_TWO(wo "+8", "r10", "r6", "r7", "r8", "r9") \
    TINYOPT_FC8_TWO(wo "+16", "r11", "r2", "r3", "r4", "r5") \
    TINYOPT_FC8_TWO(wo "+24", "r11", "r6", "r7", "r8", "r9")

/* One channel (accumulator ra): [m, r, s] from the rq stream (r0), the byte to [r1], post-increment. */
#define TINYOPT_FC8_RQ(ra) \
    "ldm r0!, {r10, r11, r12}\n\t" \
    "smmlar lr, " ra ", r10, r11\n\t" \
    "add " ra ", lr, " ra ", asr #31\n\t" \
    "asr " ra ", " ra ", r12\n\t" \
    "ssat " ra ", #8, " ra "\n\t" \
    "strb " ra ", [r1], #1\n\t"

/* Frame (sp): 0 x end, 4 entry, 8 x start, 12 w rewind, 16 d, 24 rq, 28 rq end, 32 w. */
__asm__(
    ".pushsection .text.tinyopt_fc8q,\"ax\",%progbits\n\t"
    ".syntax unified\n\t"
    ".thumb\n\t"
    ".balign 4\n\t"
    ".global tinyopt_fc8q\n\t"
    ".type tinyopt_fc8q, %function\n\t"
    ".thumb_func\n"
    "tinyopt_fc8q:\n\t"
    "push {r4-r11, lr}\n\t"
    "sub sp, sp, #40\n\t"
    "ldr r1, [r0, #16]\n\t"     /* blocks */
    "and r2, r1, #7\n\t"
    "rsb r2, r2, #8\n\t"
    "and r2, r2, #7\n\t"        /* j0: the block the first pass starts at */
    "add r1, r1, r2\n\t"
    "ldr r4, [r0, #0]\n\t"
    "sub r4, r4, r2, lsl #2\n\t"
    "add r5, r4, r1, lsl #2\n\t"
    "str r5, [sp, #0]\n\t"
    "str r4, [sp, #8]\n\t"
    "lsl r3, r2, #5\n\t"
    "str r3, [sp, #12]\n\t"
    "movs r5, #140\n\t"         /* bytes of code per block */
    "mul r5, r2, r5\n\t"
    "adr.w r6, 2f\n\t"
    "add r6, r6, r5\n\t"
    "str r6, [sp, #4]\n\t"
    "ldr r6, [r0, #20]\n\t"
    "ldr r7, [r0, #8]\n\t"
    "add r6, r7, r6, lsl #7\n\t"
    "str r6, [sp, #28]\n\t"
    "ldr r6, [r0, #12]\n\t"
    "str r6, [sp, #16]\n\t"
    "ldr r1, [r0, #4]\n\t"
    "mov r0, r7\n"
    "1:\n\t"                    /* a group of 8 filters: the pairs' starting accumulators */
    "ldm r0!, {r2-r9}\n\t"
    "str r0, [sp, #24]\n\t"
    "ldrd r0, r10, [sp, #8]\n\t"
    "sub r1, r1, r10\n\t"
    "ldr r10, [sp, #4]\n\t"
    "mov pc, r10\n\t"
    ".balign 4\n"
    "2:\n\t"
    TINYOPT_FC8_BLOCK("0", "0") TINYOPT_FC8_BLOCK("4", "32")
    TINYOPT_FC8_BLOCK("8", "64") TINYOPT_FC8_BLOCK("12", "96")
    TINYOPT_FC8_BLOCK("16", "128") TINYOPT_FC8_BLOCK("20", "160")
    TINYOPT_FC8_BLOCK("24", "192") TINYOPT_FC8_BLOCK("28", "224")
    "add r0, r0, #32\n\t"
    "add r1, r1, #256\n\t"
    "ldr r10, [sp, #0]\n\t"
    "cmp r0, r10\n\t"
    "bne 2b\n\t"
    "str r1, [sp, #32]\n\t"
    "sub r2, r2, r3\n\t"        /* 256 A -> 2 A, B -> 2 B, per pair */
    "asr r2, r2, #7\n\t"
    "add r3, r3, r3\n\t"
    "sub r4, r4, r5\n\t"
    "asr r4, r4, #7\n\t"
    "add r5, r5, r5\n\t"
    "sub r6, r6, r7\n\t"
    "asr r6, r6, #7\n\t"
    "add r7, r7, r7\n\t"
    "sub r8, r8, r9\n\t"
    "asr r8, r8, #7\n\t"
    "add r9, r9, r9\n\t"
    "ldr r0, [sp, #24]\n\t"
    "ldr r1, [sp, #16]\n\t"
    TINYOPT_FC8_RQ("r2") TINYOPT_FC8_RQ("r3") TINYOPT_FC8_RQ("r4") TINYOPT_FC8_RQ("r5")
    TINYOPT_FC8_RQ("r6") TINYOPT_FC8_RQ("r7") TINYOPT_FC8_RQ("r8") TINYOPT_FC8_RQ("r9")
    "str r1, [sp, #16]\n\t"
    "ldr r1, [sp, #32]\n\t"
    "ldr r10, [sp, #28]\n\t"
    "cmp r0, r10\n\t"
    "bne 1b\n\t"
    "add sp, sp, #40\n\t"
    "pop {r4-r11, pc}\n\t"
    ".size tinyopt_fc8q, .-tinyopt_fc8q\n\t"
    ".popsection\n");

/* One input vector through tinyopt_fc8q: whole groups of 8 filters straight into out, a last partial
 * group (zero-padded filters) through a small buffer. */
static void fc8_vector(const tinyopt_fc_params *p, const int8_t *x, int8_t *out)
{
    const int whole = p->out_c / 8, blocks = p->accum_depth / 4;
    tinyopt_fc8_args a;
    a.x = x;
    a.blocks = blocks;
    a.w = p->wpairs;
    a.rq = p->rq;
    a.d = out;
    a.groups = whole;
    if (whole > 0) {
        tinyopt_fc8q(&a);
    }
    if (p->out_c % 8) {
        int8_t part[8];
        int i;
        a.w = p->wpairs + whole * 8 * blocks;
        a.rq = p->rq + whole * 32;
        a.d = part;
        a.groups = 1;
        tinyopt_fc8q(&a);
        for (i = 0; i < p->out_c % 8; ++i) {
            out[8 * whole + i] = part[i];
        }
    }
}
#endif

void tinyopt_fully_connected(const tinyopt_fc_params *p, const int8_t *in, int8_t *out)
{
    int b, oc;
#if defined(TINYOPT_HAVE_MM2X2_ASM)
    if (p->rq != NULL) { /* every group of 8 filters and its requantization in one asm routine */
        for (b = 0; b < p->batches; ++b) {
            fc8_vector(p, in + b * p->accum_depth, out + b * p->out_c);
        }
        return;
    }
#endif
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
