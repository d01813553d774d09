/* FULLY_CONNECTED, int8: TFLM's reference integer dense layer (weights zero point 0), with the input
 * offset folded into the bias. Per-channel multipliers cover both per-tensor and per-channel models. On
 * the Cortex-M4 (twin weight words packed) the 6-filter loop tinyopt_fc6q runs the layer. */
/* On a host without the Arm DSP path the int8 dot products are plain loops: let GCC vectorize them even
 * when the library is built with -O2 (its -O2 cost model leaves such loops scalar). */
#if defined(__GNUC__) && !defined(__clang__) && !(defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP)
#pragma GCC optimize("O3")
#endif
#include "tinyopt_fixedpoint.h"
#include "tinyopt_kernels.h"
#include "tinyopt_simd.h"

#if defined(TINYOPT_HAVE_MM2X2_ASM)
/* The Cortex-M4 dense loop: one input vector times 6 filters per pass (3 twin pairs, see pack_twins;
 * words per block of 4 inputs: the pairs' (v0, v2) words, then their (v1, v3) words), every group of 6
 * filters in one call. 6 accumulators and 2 pointers leave 6 registers for the input and the weight
 * words, so the loads go in long runs (a run of n single loads takes n + 1 cycles): per 2 blocks 14
 * loads in 3 runs, 4 SXTB16 for the input lanes, 12 SXTB16 and 24 SMLAD for the 12 twin words: 48 MACs
 * in 57 cycles (8 filters with 2 registers left: 39 per 32). Unrolled 8 pairs of blocks with immediate
 * offsets, entered part-way for the count's remainder; an odd block runs first on its own. Per group:
 * A = (first - second) >> 7 (doubled for SMMLAR), B doubled, then per channel [m, r, s]
 * (fc6_requant_words in ops/fully_connected.py): SMMLAR(2 acc, m, r) - (acc < 0), >> s, SSAT, a byte
 * store. The clamp is all of int8. */
typedef struct {
    const int8_t *x;    /* 0 */
    const int32_t *w;   /* 4 */
    const int32_t *rq;  /* 8 */
    int8_t *d;          /* 12 */
    int blocks;         /* 16: blocks of 4 inputs (> 0) */
    int groups;         /* 20: groups of 6 filters (> 0) */
} tinyopt_fc6_args;

void tinyopt_fc6q(const tinyopt_fc6_args *a);

/* A twin word (register w) against the input lanes xr: SMLAD on the raw word sums 256 A + B into a1,
 * on its low bytes B into a2. */
#define TINYOPT_FC6_W(a1, a2, xr, w) \
    "smlad " a1 ", " xr ", " w ", " a1 "\n\t" \
    "sxtb16 " w ", " w "\n\t" \
    "smlad " a2 ", " xr ", " w ", " a2 "\n\t"

#define TINYOPT_FC6_LDW(r, k) "ldr.w " r ", [r1, #(" k ")]\n\t"
#define TINYOPT_FC6_LDX(r, k) "ldr.w " r ", [r0, #(" k ")]\n\t"

/* Two blocks: x at byte offset xo (then xo + 4), their 12 words at wo. Registers r8-r12, lr take the
 * input and the words in three runs of loads (5, 5, 4); 54 instructions of 4 bytes = 216. */
#define TINYOPT_FC6_PERIOD(xo, wo) \
    TINYOPT_FC6_LDX("r8", xo) TINYOPT_FC6_LDW("r9", wo) TINYOPT_FC6_LDW("r10", wo "+4") \
    TINYOPT_FC6_LDW("r11", wo "+8") TINYOPT_FC6_LDW("r12", wo "+12") \
    "sxtb16 lr, r8\n\t" \
    "sxtb16 r8, r8, ror #8\n\t" \
    TINYOPT_FC6_W("r2", "r3", "lr", "r9") TINYOPT_FC6_W("r4", "r5", "lr", "r10") \
    TINYOPT_FC6_W("r6", "r7", "lr", "r11") TINYOPT_FC6_W("r2", "r3", "r8", "r12") \
    TINYOPT_FC6_LDW("r9", wo "+16") TINYOPT_FC6_LDW("r10", wo "+20") TINYOPT_FC6_LDX("r11", xo "+4") \
    TINYOPT_FC6_LDW("r12", wo "+24") TINYOPT_FC6_LDW("lr", wo "+28") \
    TINYOPT_FC6_W("r4", "r5", "r8", "r9") TINYOPT_FC6_W("r6", "r7", "r8", "r10") \
    "sxtb16 r8, r11\n\t" \
    "sxtb16 r11, r11, ror #8\n\t" \
    TINYOPT_FC6_W("r2", "r3", "r8", "r12") TINYOPT_FC6_W("r4", "r5", "r8", "lr") \
    TINYOPT_FC6_LDW("r9", wo "+32") TINYOPT_FC6_LDW("r10", wo "+36") TINYOPT_FC6_LDW("r12", wo "+40") \
    TINYOPT_FC6_LDW("lr", wo "+44") \
    TINYOPT_FC6_W("r6", "r7", "r8", "r9") TINYOPT_FC6_W("r2", "r3", "r11", "r10") \
    TINYOPT_FC6_W("r4", "r5", "r11", "r12") TINYOPT_FC6_W("r6", "r7", "r11", "lr")

/* One channel (accumulator ra): [m, r, s] from the rq stream (r0), the byte to [r1], post-increment. */
#define TINYOPT_FC6_RQ(ra) \
    "ldm r0!, {r10, r11, r12}\n\t" \
    "smmlar lr, " ra ", r10, r11\n\t" \
    "add " ra ", lr, " ra ", asr #31\n\t" \
    "asr " ra ", " ra ", r12\n\t" \
    "ssat " ra ", #8, " ra "\n\t" \
    "strb " ra ", [r1], #1\n\t"

/* Frame (sp): 0 x end, 4 entry, 8 loop x start, 12 w rewind, 16 d, 20 odd, 24 rq, 28 rq end, 32 w,
 * 36 x. */
__asm__(
    ".pushsection .text.tinyopt_fc6q,\"ax\",%progbits\n\t"
    ".syntax unified\n\t"
    ".thumb\n\t"
    ".balign 4\n\t"
    ".global tinyopt_fc6q\n\t"
    ".type tinyopt_fc6q, %function\n\t"
    ".thumb_func\n"
    "tinyopt_fc6q:\n\t"
    "push {r4-r11, lr}\n\t"
    "sub sp, sp, #40\n\t"
    "ldr r1, [r0, #16]\n\t"     /* blocks */
    "and r2, r1, #1\n\t"
    "str r2, [sp, #20]\n\t"
    "sub r1, r1, r2\n\t"
    "lsr r1, r1, #1\n\t"        /* p: pairs of blocks after the odd one */
    "ldr r4, [r0, #0]\n\t"
    "str r4, [sp, #36]\n\t"
    "add r5, r4, r2, lsl #2\n\t"
    "add r6, r5, r1, lsl #3\n\t"
    "str r6, [sp, #0]\n\t"      /* x end */
    "rsb r3, r1, #0\n\t"
    "and r3, r3, #7\n\t"        /* j0: the pair the first pass starts at */
    "sub r5, r5, r3, lsl #3\n\t"
    "str r5, [sp, #8]\n\t"
    "movs r7, #48\n\t"
    "mul r7, r3, r7\n\t"
    "str r7, [sp, #12]\n\t"
    "movs r7, #216\n\t"         /* bytes of code per pair of blocks */
    "mul r7, r3, r7\n\t"
    "adr.w r6, .Ltinyopt_fc6_body\n\t"
    "add r6, r6, r7\n\t"
    "cmp r1, #0\n\t"
    "bne 3f\n\t"
    "adr.w r6, .Ltinyopt_fc6_done\n"
    "3:\n\t"
    "str r6, [sp, #4]\n\t"
    "ldr r6, [r0, #20]\n\t"
    "ldr r7, [r0, #8]\n\t"
    "movs r5, #96\n\t"
    "mla r6, r6, r5, r7\n\t"
    "str r6, [sp, #28]\n\t"
    "ldr r6, [r0, #12]\n\t"
    "str r6, [sp, #16]\n\t"
    "ldr r1, [r0, #4]\n\t"
    "mov r0, r7\n"
    "1:\n\t"                    /* a group of 6 filters: the pairs' starting accumulators */
    "ldm r0!, {r2-r7}\n\t"
    "str r0, [sp, #24]\n\t"
    "ldr r10, [sp, #20]\n\t"
    "cmp r10, #0\n\t"
    "beq 4f\n\t"
    "ldr r0, [sp, #36]\n\t"     /* the odd block on its own */
    TINYOPT_FC6_LDX("r8", "0") TINYOPT_FC6_LDW("r9", "0") TINYOPT_FC6_LDW("r10", "4")
    TINYOPT_FC6_LDW("r11", "8") TINYOPT_FC6_LDW("r12", "12")
    "sxtb16 lr, r8\n\t"
    "sxtb16 r8, r8, ror #8\n\t"
    TINYOPT_FC6_W("r2", "r3", "lr", "r9") TINYOPT_FC6_W("r4", "r5", "lr", "r10")
    TINYOPT_FC6_W("r6", "r7", "lr", "r11") TINYOPT_FC6_W("r2", "r3", "r8", "r12")
    TINYOPT_FC6_LDW("r9", "16") TINYOPT_FC6_LDW("r10", "20")
    TINYOPT_FC6_W("r4", "r5", "r8", "r9") TINYOPT_FC6_W("r6", "r7", "r8", "r10")
    "add r1, r1, #24\n"
    "4:\n\t"
    "ldrd r0, r10, [sp, #8]\n\t"
    "sub r1, r1, r10\n\t"
    "ldr r10, [sp, #4]\n\t"
    "mov pc, r10\n\t"
    ".balign 4\n"
    ".Ltinyopt_fc6_body:\n\t"
    TINYOPT_FC6_PERIOD("0", "0")
    ".Ltinyopt_fc6_p1:\n\t"
    TINYOPT_FC6_PERIOD("8", "48") TINYOPT_FC6_PERIOD("16", "96")
    TINYOPT_FC6_PERIOD("24", "144") TINYOPT_FC6_PERIOD("32", "192") TINYOPT_FC6_PERIOD("40", "240")
    TINYOPT_FC6_PERIOD("48", "288") TINYOPT_FC6_PERIOD("56", "336")
    ".if (.Ltinyopt_fc6_p1 - .Ltinyopt_fc6_body) != 216\n\t"
    ".error \"tinyopt_fc6q: a pair of blocks is not 216 bytes of code\"\n\t"
    ".endif\n\t"
    "add r0, r0, #64\n\t"
    "add r1, r1, #384\n\t"
    "ldr r10, [sp, #0]\n\t"
    "cmp r0, r10\n\t"
    "bne .Ltinyopt_fc6_body\n"
    ".Ltinyopt_fc6_done:\n\t"
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
    "ldr r0, [sp, #24]\n\t"
    "ldr r1, [sp, #16]\n\t"
    TINYOPT_FC6_RQ("r2") TINYOPT_FC6_RQ("r3") TINYOPT_FC6_RQ("r4") TINYOPT_FC6_RQ("r5")
    TINYOPT_FC6_RQ("r6") TINYOPT_FC6_RQ("r7")
    "str r1, [sp, #16]\n\t"
    "ldr r1, [sp, #32]\n\t"
    "ldr r10, [sp, #28]\n\t"
    "cmp r0, r10\n\t"
    "bne 1b\n\t"
    "add sp, sp, #40\n\t"
    "pop {r4-r11, pc}\n\t"
    ".size tinyopt_fc6q, .-tinyopt_fc6q\n\t"
    ".popsection\n");

/* One input vector through tinyopt_fc6q: whole groups of 6 filters straight into out, a last partial
 * group (zero-padded filters) through a small buffer. */
static void fc6_vector(const tinyopt_fc_params *p, const int8_t *x, int8_t *out)
{
    const int whole = p->out_c / 6, blocks = p->accum_depth / 4;
    tinyopt_fc6_args a;
    a.x = x;
    a.blocks = blocks;
    a.w = p->wpairs;
    a.rq = p->rq;
    a.d = out;
    a.groups = whole;
    if (whole > 0) {
        tinyopt_fc6q(&a);
    }
    if (p->out_c % 6) {
        int8_t part[6];
        int i;
        a.w = p->wpairs + whole * 6 * blocks;
        a.rq = p->rq + whole * 24;
        a.d = part;
        a.groups = 1;
        tinyopt_fc6q(&a);
        for (i = 0; i < p->out_c % 6; ++i) {
            out[6 * whole + i] = part[i];
        }
    }
}
#endif

void tinyopt_fully_connected(const tinyopt_fc_params *p, const int8_t *in, int8_t *out)
{
    int b, oc;
#if defined(TINYOPT_HAVE_MM2X2_ASM)
    if (p->rq != NULL) { /* every group of 6 filters and its requantization in one asm routine */
        for (b = 0; b < p->batches; ++b) {
            fc6_vector(p, in + b * p->accum_depth, out + b * p->out_c);
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
