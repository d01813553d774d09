/* CONV_2D for layers of odd output width (ops/conv_2d.py picks this entry for them): the last pixel of an
 * odd row, or of a streamed band of one row, has no partner for conv2d.c's 2-pixel twin loop; here it runs
 * alone on a single-pixel loop (~0.6 of a pair's instructions instead of a whole pair's). A file of its own:
 * libraries whose layers all have even widths never meet a lone pixel and do not carry it. */
#include "tinyopt_kernels.h"

#if defined(TINYOPT_HAVE_MM2X2_ASM)
/* One pixel through the twin loop: x as conv2d.c widens a pixel paired with itself (words 0 and 2 of each
 * 16-byte block are its (v0, v2) and (v1, v3) lanes), 4 filters per pass, every group in one call, only
 * d0 written (args: conv2d.c's tinyopt_mm24_args; pairs, in and d1 unused). Per block 2 loads of x, 2 LDRD
 * of the 4 twin words, 4 SXTB16, 8 SMLAD: 16 MACs in 16 instructions where a pair takes 28 for 32. The
 * block loop is unrolled 8 times and entered part-way, as in tinyopt_mm24q; the requantization is that
 * of its pixel 0. */
void tinyopt_mm14q(const void *a);

#define TINYOPT_MM14_BLOCK(o) \
    "ldr.w r10, [r0, #(" o ")]\n\t" \
    "ldr.w r11, [r0, #(" o "+8)]\n\t" \
    "ldrd r12, lr, [r1, #(" o ")]\n\t" \
    "smlad r2, r10, r12, r2\n\t" \
    "sxtb16 r12, r12\n\t" \
    "smlad r3, r10, r12, r3\n\t" \
    "smlad r4, r10, lr, r4\n\t" \
    "sxtb16 lr, lr\n\t" \
    "smlad r5, r10, lr, r5\n\t" \
    "ldrd r12, lr, [r1, #(" o "+8)]\n\t" \
    "smlad r2, r11, r12, r2\n\t" \
    "sxtb16 r12, r12\n\t" \
    "smlad r3, r11, r12, r3\n\t" \
    "smlad r4, r11, lr, r4\n\t" \
    "sxtb16 lr, lr\n\t" \
    "smlad r5, r11, lr, r5\n\t"

/* Requantize one channel (accumulator ra): [m, r, s] from the rq stream (r8). */
#define TINYOPT_MM14_RQ(ra) \
    "ldm r8!, {r10, r11, r12}\n\t" \
    "smmlar lr, " ra ", r10, r11\n\t" \
    "add " ra ", lr, " ra ", asr #31\n\t" \
    "asr " ra ", " ra ", r12\n\t" \
    "ssat " ra ", #8, " ra "\n\t"

/* Registers: r6 x end, r7 the block loop's entry, r8 rq, r9 d0. Frame (sp): 0 x start, 4 w rewind,
 * 8 rq end, 12 clamp, 16 lo4, 20 hi4. */
__asm__(
    ".pushsection .text.tinyopt_mm14q,\"ax\",%progbits\n\t"
    ".syntax unified\n\t"
    ".thumb\n\t"
    ".balign 4\n\t"
    ".global tinyopt_mm14q\n\t"
    ".type tinyopt_mm14q, %function\n\t"
    ".thumb_func\n"
    "tinyopt_mm14q:\n\t"
    "push {r4-r11, lr}\n\t"
    "sub sp, sp, #24\n\t"
    "ldr r1, [r0, #20]\n\t"     /* blocks */
    "and r2, r1, #7\n\t"
    "rsb r2, r2, #8\n\t"
    "and r2, r2, #7\n\t"        /* j0: the block the first pass starts at */
    "lsl r3, r2, #4\n\t"        /* 16 j0: x and w start that much early */
    "add r1, r1, r2\n\t"
    "ldr r4, [r0, #0]\n\t"
    "sub r4, r4, r3\n\t"
    "add r6, r4, r1, lsl #4\n\t"
    "strd r4, r3, [sp, #0]\n\t"
    "lsl r5, r2, #6\n\t"        /* 64 bytes of code per block */
    "adr r7, 2f\n\t"
    "add r7, r7, r5\n\t"
    "ldr r8, [r0, #8]\n\t"
    "ldr r5, [r0, #24]\n\t"
    "add r5, r8, r5, lsl #6\n\t"
    "ldr r4, [r0, #36]\n\t"
    "strd r5, r4, [sp, #8]\n\t"
    "ldrd r10, r11, [r0, #28]\n\t"
    "strd r10, r11, [sp, #16]\n\t"
    "ldr r9, [r0, #12]\n\t"
    "ldr r1, [r0, #4]\n"
    "1:\n\t"                    /* a group of 4 filters: the starting accumulators */
    "ldm r8!, {r2-r5}\n\t"
    "ldrd r0, r10, [sp, #0]\n\t"
    "sub r1, r1, r10\n\t"
    "mov pc, r7\n\t"
    ".balign 4\n"
    "2:\n\t"
    TINYOPT_MM14_BLOCK("0") TINYOPT_MM14_BLOCK("16") TINYOPT_MM14_BLOCK("32") TINYOPT_MM14_BLOCK("48")
    TINYOPT_MM14_BLOCK("64") TINYOPT_MM14_BLOCK("80") TINYOPT_MM14_BLOCK("96") TINYOPT_MM14_BLOCK("112")
    "add r0, r0, #128\n\t"
    "add r1, r1, #128\n\t"
    "cmp r0, r6\n\t"
    "bne 2b\n\t"
    "sub r2, r2, r3\n\t"        /* 256 A -> 2 A */
    "asr r2, r2, #7\n\t"
    "add r3, r3, r3\n\t"        /* B -> 2 B */
    "sub r4, r4, r5\n\t"
    "asr r4, r4, #7\n\t"
    "add r5, r5, r5\n\t"
    TINYOPT_MM14_RQ("r2") TINYOPT_MM14_RQ("r3") TINYOPT_MM14_RQ("r4") TINYOPT_MM14_RQ("r5")
    "bfi r2, r3, #8, #8\n\t"
    "bfi r2, r4, #16, #8\n\t"
    "bfi r2, r5, #24, #8\n\t"
    "ldr r0, [sp, #12]\n\t"
    "cbz r0, 3f\n\t"
    "ldrd r10, r11, [sp, #16]\n\t"
    "ssub8 r12, r2, r10\n\t"
    "sel r2, r2, r10\n\t"
    "ssub8 r12, r11, r2\n\t"
    "sel r2, r2, r11\n"
    "3:\n\t"
    "str r2, [r9], #4\n\t"
    "ldr r0, [sp, #8]\n\t"
    "cmp r8, r0\n\t"
    "bne 1b\n\t"
    "add sp, sp, #24\n\t"
    "pop {r4-r11, pc}\n\t"
    ".size tinyopt_mm14q, .-tinyopt_mm14q\n\t"
    ".popsection\n");
#endif

void tinyopt_conv2d_lone(const tinyopt_conv_params *p, const int8_t *in, int8_t *out, int8_t *scratch,
                         int8_t *col, int reverse, const int8_t *other)
{
#if defined(TINYOPT_HAVE_MM2X2_ASM)
    tinyopt_conv2d_run(p, in, out, scratch, col, reverse, other, tinyopt_mm14q);
#else
    tinyopt_conv2d_run(p, in, out, scratch, col, reverse, other, NULL);
#endif
}
