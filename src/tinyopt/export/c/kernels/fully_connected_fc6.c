/* FULLY_CONNECTED, int8, larger layers on the Cortex-M4: one input vector times 6 filters per pass (3
 * twin pairs, see pack_twins; per block of 4 inputs the pairs' (v0, v2) words, then their (v1, v3)
 * words) on the widened input (tinyopt_fc_lanes: per block (x0, x2) and (x1, x3) lanes, then a sentinel
 * word), every group of 6 filters in one call, the filters left pair by pair (tinyopt_fc_pairs). 6
 * accumulators and 2 pointers leave 6 registers for lanes and weight words, so the loads go in long runs
 * (a run of n single loads takes n + 1 cycles): per 2 blocks 16 loads in runs of 6, 5 and 5, 12 SXTB16
 * and 24 SMLAD: 48 MACs in 55 cycles. Unrolled 16 pairs of blocks (3.3 KB) with immediate offsets,
 * entered part-way for the count's remainder (an odd block runs first on its own); each pass loads the
 * next one's first lanes and stops on the sentinel (two lanes of 0x8000, which no sign-extended byte
 * gives). Per group: A = (first - second) >> 7 (doubled for SMMLAR), B doubled, then per channel
 * [m, r, s] (pack_twin_groups in ops/fully_connected.py): SMMLAR(2 acc, m, r) - (acc < 0), >> s, SSAT,
 * a byte store. The clamp is all of int8. Without col, tinyopt_fc6b runs the same passes on the int8
 * input (one word and 2 SXTB16 per block: 54 instructions per 2 blocks instead of 52, no widening pass,
 * stopping on x's end). Its own file: libraries without a layer this large do not carry it. */
#include "tinyopt_kernels.h"
#include "tinyopt_fully_connected.h"

#if defined(TINYOPT_HAVE_MM2X2_ASM)
typedef struct {
    const void *x;      /* 0: the widened lanes (tinyopt_fc6q) or the int8 input (tinyopt_fc6b) */
    const int32_t *w;   /* 4 */
    const int32_t *rq;  /* 8 */
    int8_t *d;          /* 12 */
    int blocks;         /* 16: blocks of 4 inputs (> 0) */
    int groups;         /* 20: groups of 6 filters (> 0) */
} tinyopt_fc6_args;

void tinyopt_fc6q(const tinyopt_fc6_args *a);
void tinyopt_fc6b(const tinyopt_fc6_args *a);

/* A twin word (register w) against the input lanes xr: SMLAD on the raw word sums 256 A + B into a1,
 * on its low bytes B into a2. */
#define TINYOPT_FC6_W(a1, a2, xr, w) \
    "smlad " a1 ", " xr ", " w ", " a1 "\n\t" \
    "sxtb16 " w ", " w "\n\t" \
    "smlad " a2 ", " xr ", " w ", " a2 "\n\t"

#define TINYOPT_FC6_LDW(r, k) "ldr.w " r ", [r1, #(" k ")]\n\t"
#define TINYOPT_FC6_LDX(r, k) "ldr.w " r ", [r0, #(" k ")]\n\t"

/* The two blocks after the first one's even lanes (r8): lanes at byte offset xo, words at wo. Runs of
 * loads into r8-r12, lr: (r9-r11 e0-e2, r12 odd lanes, lr o0), (r9 r10 o1 o2, r8 r11 lr the second
 * block's even lanes, e0, e1), (r9 e2, r12 odd lanes, r10 r11 lr o0-o2). 51 instructions of 4 bytes. */
#define TINYOPT_FC6_REST(xo, wo) \
    TINYOPT_FC6_LDW("r9", wo) TINYOPT_FC6_LDW("r10", wo "+4") TINYOPT_FC6_LDW("r11", wo "+8") \
    TINYOPT_FC6_LDX("r12", xo "+4") TINYOPT_FC6_LDW("lr", wo "+12") \
    TINYOPT_FC6_W("r2", "r3", "r8", "r9") TINYOPT_FC6_W("r4", "r5", "r8", "r10") \
    TINYOPT_FC6_W("r6", "r7", "r8", "r11") TINYOPT_FC6_W("r2", "r3", "r12", "lr") \
    TINYOPT_FC6_LDW("r9", wo "+16") TINYOPT_FC6_LDW("r10", wo "+20") TINYOPT_FC6_LDX("r8", xo "+8") \
    TINYOPT_FC6_LDW("r11", wo "+24") TINYOPT_FC6_LDW("lr", wo "+28") \
    TINYOPT_FC6_W("r4", "r5", "r12", "r9") TINYOPT_FC6_W("r6", "r7", "r12", "r10") \
    TINYOPT_FC6_W("r2", "r3", "r8", "r11") TINYOPT_FC6_W("r4", "r5", "r8", "lr") \
    TINYOPT_FC6_LDW("r9", wo "+32") TINYOPT_FC6_LDX("r12", xo "+12") TINYOPT_FC6_LDW("r10", wo "+36") \
    TINYOPT_FC6_LDW("r11", wo "+40") TINYOPT_FC6_LDW("lr", wo "+44") \
    TINYOPT_FC6_W("r6", "r7", "r8", "r9") TINYOPT_FC6_W("r2", "r3", "r12", "r10") \
    TINYOPT_FC6_W("r4", "r5", "r12", "r11") TINYOPT_FC6_W("r6", "r7", "r12", "lr")

/* A pair of blocks: its first even lanes, then the rest (52 instructions, 208 bytes). */
#define TINYOPT_FC6_PAIR(xo, wo) TINYOPT_FC6_LDX("r8", xo) TINYOPT_FC6_REST(xo, wo)

/* Two channels (accumulators ra, rb): [m, r, s] x 2 from the rq stream (r0), two bytes to [r1]. */
#define TINYOPT_FC6_RQ2(ra, rb) \
    "ldm r0!, {r8, r9, r10, r11, r12, lr}\n\t" \
    "smmlar r8, " ra ", r8, r9\n\t" \
    "add " ra ", r8, " ra ", asr #31\n\t" \
    "asr " ra ", " ra ", r10\n\t" \
    "ssat " ra ", #8, " ra "\n\t" \
    "smmlar r11, " rb ", r11, r12\n\t" \
    "strb " ra ", [r1], #1\n\t" \
    "add " rb ", r11, " rb ", asr #31\n\t" \
    "asr " rb ", " rb ", lr\n\t" \
    "ssat " rb ", #8, " rb "\n\t" \
    "strb " rb ", [r1], #1\n\t"

/* The rest of a block on its own: its (even, odd) lanes in r8, r12 against its first 4 words (r9-r11,
 * lr), then its last 2 loaded. */
#define TINYOPT_FC6_ODD \
    TINYOPT_FC6_W("r2", "r3", "r8", "r9") TINYOPT_FC6_W("r4", "r5", "r8", "r10") \
    TINYOPT_FC6_W("r6", "r7", "r8", "r11") TINYOPT_FC6_W("r2", "r3", "r12", "lr") \
    TINYOPT_FC6_LDW("r9", "16") TINYOPT_FC6_LDW("r10", "20") \
    TINYOPT_FC6_W("r4", "r5", "r12", "r9") TINYOPT_FC6_W("r6", "r7", "r12", "r10")

/* Into the unrolled pairs at the entry (frame 12), x and w moved back (frame 4, 8) by the pairs skipped. */
#define TINYOPT_FC6_JUMP \
    "ldrd r9, r10, [sp, #4]\n\t" \
    "ldr r12, [sp, #12]\n\t" \
    "sub r0, r0, r9\n\t" \
    "sub r1, r1, r10\n\t" \
    "mov pc, r12\n\t"

/* 16 pairs of blocks, pair j as pair(x offset j dx, word offset 48 j); label p1 at the second. */
#define TINYOPT_FC6_UNROLL(pair, dx, p1) \
    pair("0", "0") p1 ":\n\t" pair(dx "*1", "48") pair(dx "*2", "96") pair(dx "*3", "144") \
    pair(dx "*4", "192") pair(dx "*5", "240") pair(dx "*6", "288") pair(dx "*7", "336") \
    pair(dx "*8", "384") pair(dx "*9", "432") pair(dx "*10", "480") pair(dx "*11", "528") \
    pair(dx "*12", "576") pair(dx "*13", "624") pair(dx "*14", "672") pair(dx "*15", "720")

/* The set-up after the jump's figures (r1 the pairs of blocks, r5 the entry): rq end, d, w; r0 the rq
 * stream. */
#define TINYOPT_FC6_ARGS(done) \
    "cmp r1, #0\n\t" \
    "bne 3f\n\t" \
    "adr.w r5, " done "\n" \
    "3:\n\t" \
    "str r5, [sp, #12]\n\t" \
    "ldr r4, [r0, #0]\n\t" \
    "str r4, [sp, #0]\n\t" \
    "ldr r6, [r0, #20]\n\t" \
    "ldr r7, [r0, #8]\n\t" \
    "movs r5, #96\n\t" \
    "mla r6, r6, r5, r7\n\t" \
    "str r6, [sp, #24]\n\t" \
    "ldr r6, [r0, #12]\n\t" \
    "str r6, [sp, #16]\n\t" \
    "ldr r1, [r0, #4]\n\t" \
    "mov r0, r7\n"

/* A group of 6 filters: the pairs' starting accumulators, x back at its start; to 4f unless a block is
 * odd. */
#define TINYOPT_FC6_GROUP \
    "1:\n\t" \
    "ldm r0!, {r2-r7}\n\t" \
    "str r0, [sp, #20]\n\t" \
    "ldr r0, [sp, #0]\n\t" \
    "ldr r10, [sp, #32]\n\t" \
    "cmp r10, #0\n\t" \
    "beq 4f\n\t"

/* The group's sums to bytes (label done), the next group from 1b, the frame of `frame` bytes freed. */
#define TINYOPT_FC6_DONE(done, frame) \
    done ":\n\t" \
    "str r1, [sp, #28]\n\t" \
    "sub r2, r2, r3\n\t"        /* 256 A -> 2 A, B -> 2 B, per pair */ \
    "asr r2, r2, #7\n\t" \
    "add r3, r3, r3\n\t" \
    "sub r4, r4, r5\n\t" \
    "asr r4, r4, #7\n\t" \
    "add r5, r5, r5\n\t" \
    "sub r6, r6, r7\n\t" \
    "asr r6, r6, #7\n\t" \
    "add r7, r7, r7\n\t" \
    "ldr r0, [sp, #20]\n\t" \
    "ldr r1, [sp, #16]\n\t" \
    TINYOPT_FC6_RQ2("r2", "r3") TINYOPT_FC6_RQ2("r4", "r5") TINYOPT_FC6_RQ2("r6", "r7") \
    "str r1, [sp, #16]\n\t" \
    "ldr r1, [sp, #28]\n\t" \
    "ldr r10, [sp, #24]\n\t" \
    "cmp r0, r10\n\t" \
    "bne 1b\n\t" \
    "add sp, sp, #" frame "\n\t" \
    "pop {r4-r11, pc}\n\t"

/* Frame (sp): 0 x start, 4 x rewind, 8 w rewind, 12 entry, 16 d, 20 rq, 24 rq end, 28 w, 32 odd. */
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
    "sub sp, sp, #36\n\t"
    "ldr r1, [r0, #16]\n\t"     /* blocks */
    "and r2, r1, #1\n\t"
    "str r2, [sp, #32]\n\t"
    "lsr r1, r1, #1\n\t"        /* p: pairs of blocks after the odd one */
    "rsb r3, r1, #0\n\t"
    "and r3, r3, #15\n\t"       /* j0: the pair the first pass starts at */
    "lsl r4, r3, #4\n\t"
    "str r4, [sp, #4]\n\t"
    "movs r4, #48\n\t"
    "mul r4, r3, r4\n\t"
    "str r4, [sp, #8]\n\t"
    "movs r4, #208\n\t"         /* bytes of code per pair of blocks */
    "mul r4, r3, r4\n\t"
    "adr.w r5, .Ltinyopt_fc6_body + 4\n\t" /* past the first pair's even lanes (loaded before the jump) */
    "add r5, r5, r4\n\t"
    TINYOPT_FC6_ARGS(".Ltinyopt_fc6_done")
    TINYOPT_FC6_GROUP
    TINYOPT_FC6_LDX("r8", "0")  /* the odd block on its own */
    TINYOPT_FC6_LDW("r9", "0") TINYOPT_FC6_LDW("r10", "4") TINYOPT_FC6_LDW("r11", "8")
    TINYOPT_FC6_LDX("r12", "4") TINYOPT_FC6_LDW("lr", "12")
    TINYOPT_FC6_ODD
    "add r0, r0, #8\n\t"
    "add r1, r1, #24\n"
    "4:\n\t"
    "ldr r8, [r0]\n\t"          /* the first pair's even lanes (the sentinel when there is none) */
    TINYOPT_FC6_JUMP
    ".balign 4\n"
    ".Ltinyopt_fc6_body:\n\t"
    TINYOPT_FC6_UNROLL(TINYOPT_FC6_PAIR, "16", ".Ltinyopt_fc6_p1")
    ".if (.Ltinyopt_fc6_p1 - .Ltinyopt_fc6_body) != 208\n\t"
    ".error \"tinyopt_fc6q: a pair of blocks is not 208 bytes of code\"\n\t"
    ".endif\n\t"
    "add r0, r0, #256\n\t"
    "add r1, r1, #768\n\t"
    "ldr r8, [r0]\n\t"          /* the next pair's even lanes, or the sentinel past the last block */
    "cmp r8, #0x80008000\n\t"
    "bne .Ltinyopt_fc6_body + 4\n"
    TINYOPT_FC6_DONE(".Ltinyopt_fc6_done", "36")
    ".size tinyopt_fc6q, .-tinyopt_fc6q\n\t"
    ".popsection\n");

#if !defined(TINYOPT_FC_COL_ALWAYS)
/* The same 6 filters per pass on the int8 input itself (a layer run without col): per block one word
 * (x0 x1 x2 x3, any alignment) whose SXTB16 gives the (x0, x2) lanes and SXTB16 ror #8 the (x1, x3)
 * ones. Block a's (even, odd) lanes in r8, r12, block b's raw word in r8 once a's even lanes are done;
 * runs of loads (x a, e0-e2, o0), (o1, o2, x b, b's e0, e1), (e2, o0-o2). Per 2 blocks 14 loads, 16
 * SXTB16, 24 SMLAD: 54 instructions of 4 bytes. */
#define TINYOPT_FC6B_PAIR(xo, wo) \
    TINYOPT_FC6_LDX("r12", xo) TINYOPT_FC6_LDW("r9", wo) TINYOPT_FC6_LDW("r10", wo "+4") \
    TINYOPT_FC6_LDW("r11", wo "+8") TINYOPT_FC6_LDW("lr", wo "+12") \
    "sxtb16 r8, r12\n\t" \
    "sxtb16 r12, r12, ror #8\n\t" \
    TINYOPT_FC6_W("r2", "r3", "r8", "r9") TINYOPT_FC6_W("r4", "r5", "r8", "r10") \
    TINYOPT_FC6_W("r6", "r7", "r8", "r11") TINYOPT_FC6_W("r2", "r3", "r12", "lr") \
    TINYOPT_FC6_LDW("r9", wo "+16") TINYOPT_FC6_LDW("r10", wo "+20") TINYOPT_FC6_LDX("r8", xo "+4") \
    TINYOPT_FC6_LDW("r11", wo "+24") TINYOPT_FC6_LDW("lr", wo "+28") \
    TINYOPT_FC6_W("r4", "r5", "r12", "r9") TINYOPT_FC6_W("r6", "r7", "r12", "r10") \
    "sxtb16 r12, r8, ror #8\n\t" \
    "sxtb16 r8, r8\n\t" \
    TINYOPT_FC6_W("r2", "r3", "r8", "r11") TINYOPT_FC6_W("r4", "r5", "r8", "lr") \
    TINYOPT_FC6_LDW("r9", wo "+32") TINYOPT_FC6_LDW("r10", wo "+36") TINYOPT_FC6_LDW("r11", wo "+40") \
    TINYOPT_FC6_LDW("lr", wo "+44") \
    TINYOPT_FC6_W("r6", "r7", "r8", "r9") TINYOPT_FC6_W("r2", "r3", "r12", "r10") \
    TINYOPT_FC6_W("r4", "r5", "r12", "r11") TINYOPT_FC6_W("r6", "r7", "r12", "lr")

/* Frame (sp) as tinyopt_fc6q's, and 36: x end, which each pass of 16 pairs of blocks stops on. */
__asm__(
    ".pushsection .text.tinyopt_fc6b,\"ax\",%progbits\n\t"
    ".syntax unified\n\t"
    ".thumb\n\t"
    ".balign 4\n\t"
    ".global tinyopt_fc6b\n\t"
    ".type tinyopt_fc6b, %function\n\t"
    ".thumb_func\n"
    "tinyopt_fc6b:\n\t"
    "push {r4-r11, lr}\n\t"
    "sub sp, sp, #40\n\t"
    "ldr r1, [r0, #16]\n\t"     /* blocks */
    "ldr r4, [r0, #0]\n\t"
    "add r4, r4, r1, lsl #2\n\t"
    "str r4, [sp, #36]\n\t"
    "and r2, r1, #1\n\t"
    "str r2, [sp, #32]\n\t"
    "lsr r1, r1, #1\n\t"        /* p: pairs of blocks after the odd one */
    "rsb r3, r1, #0\n\t"
    "and r3, r3, #15\n\t"       /* j0: the pair the first pass starts at */
    "lsl r4, r3, #3\n\t"
    "str r4, [sp, #4]\n\t"
    "movs r4, #48\n\t"
    "mul r4, r3, r4\n\t"
    "str r4, [sp, #8]\n\t"
    "movs r4, #216\n\t"         /* bytes of code per pair of blocks */
    "mul r4, r3, r4\n\t"
    "adr.w r5, .Ltinyopt_fc6b_body\n\t"
    "add r5, r5, r4\n\t"
    TINYOPT_FC6_ARGS(".Ltinyopt_fc6b_done")
    TINYOPT_FC6_GROUP
    TINYOPT_FC6_LDX("r12", "0") /* the odd block on its own */
    TINYOPT_FC6_LDW("r9", "0") TINYOPT_FC6_LDW("r10", "4") TINYOPT_FC6_LDW("r11", "8")
    TINYOPT_FC6_LDW("lr", "12")
    "sxtb16 r8, r12\n\t"
    "sxtb16 r12, r12, ror #8\n\t"
    TINYOPT_FC6_ODD
    "add r0, r0, #4\n\t"
    "add r1, r1, #24\n"
    "4:\n\t"
    TINYOPT_FC6_JUMP
    ".balign 4\n"
    ".Ltinyopt_fc6b_body:\n\t"
    TINYOPT_FC6_UNROLL(TINYOPT_FC6B_PAIR, "8", ".Ltinyopt_fc6b_p1")
    ".if (.Ltinyopt_fc6b_p1 - .Ltinyopt_fc6b_body) != 216\n\t"
    ".error \"tinyopt_fc6b: a pair of blocks is not 216 bytes of code\"\n\t"
    ".endif\n\t"
    "add r0, r0, #128\n\t"
    "add r1, r1, #768\n\t"
    "ldr r8, [sp, #36]\n\t"     /* past the last block: the group is done */
    "cmp r0, r8\n\t"
    "bne .Ltinyopt_fc6b_body\n"
    TINYOPT_FC6_DONE(".Ltinyopt_fc6b_done", "40")
    ".size tinyopt_fc6b, .-tinyopt_fc6b\n\t"
    ".popsection\n");
#endif
#endif

/* A layer with twin words in groups of 6 filters, then pairs; col NULL: the loops read the int8 input. */
void tinyopt_fully_connected_fc6(const tinyopt_fc_params *p, const int8_t *in, int8_t *out, int8_t *scratch,
                                 int8_t *col, int reverse, const int8_t *other)
{
#if defined(TINYOPT_HAVE_MM2X2_ASM)
    const int blocks = p->accum_depth / 4, whole = p->out_c / 6;
    int b;
    for (b = 0; b < p->batches; ++b) {
        int8_t *y = out + b * p->out_c;
        tinyopt_fc6_args a;
        const int bytes = col == NULL;
        a.x = tinyopt_fc_lanes(p, in, b, col);
        a.w = p->wpairs;
        a.rq = p->rq;
        a.d = y;
        a.blocks = blocks;
        a.groups = whole;
        if (whole > 0) {
#if !defined(TINYOPT_FC_COL_ALWAYS)
            if (bytes) {
                tinyopt_fc6b(&a);
            } else
#endif
            {
                tinyopt_fc6q(&a);
            }
        }
        tinyopt_fc_pairs(a.x, bytes, p->wpairs + whole * 6 * blocks, p->rq + whole * 24, blocks,
                         y + 6 * whole, p->out_c % 6);
    }
#else
    (void)col;
    tinyopt_fully_connected(p, in, out);
#endif
    (void)scratch;
    (void)reverse;
    (void)other;
}
