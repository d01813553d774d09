/* DEPTHWISE_CONV_2D on the Cortex-M4: the pair loop's arguments and assembly (one macro, one function per
 * stride and direction), shared by depthwise_conv2d.c (stride 1) and depthwise_s2.c (stride 2: only
 * libraries with a stride-2 depthwise layer on the pair loop carry it, through its entry). */
#ifndef TINYOPT_DEPTHWISE_CONV2D_H
#define TINYOPT_DEPTHWISE_CONV2D_H

#include <stdint.h>

#include "tinyopt_kernels.h"

/* The pair loops a layer's entry hands the shared body, by stride - 1: rows[] for output rows 1 or 2
 * input rows apart (stride_h), columns[] for neighbouring output columns of a lone row (stride_w). The
 * generator leaves out the code its library's calls never reach: the column loops unless a depthwise
 * layer streams in bands of odd height (TINYOPT_DW_COLUMNS), the row loops when every one streams in
 * bands of one row (TINYOPT_DW_NO_ROWS: rows NULL, two rows would run as two lone ones), the portable
 * path when every depthwise layer runs the pair loop without a fused ADD (TINYOPT_DW_NO_PORTABLE). */
typedef void (*tinyopt_dw_loop)(const void *args);
#if defined(TINYOPT_DW_NO_ROWS)
#define TINYOPT_DW_ROWS(f) NULL
#else
#define TINYOPT_DW_ROWS(f) f
#endif
#if defined(TINYOPT_DW_COLUMNS)
#define TINYOPT_DW_COLS(f) f
#else
#define TINYOPT_DW_COLS(f) NULL
#endif
#if defined(TINYOPT_DW_NO_PORTABLE) && defined(TINYOPT_HAVE_MM2X2_ASM) /* the host build keeps its only path */
#define TINYOPT_DW_PAIRS_ONLY 1
#endif
typedef struct {
    tinyopt_dw_loop rows[2];
    tinyopt_dw_loop columns[2];
} tinyopt_dw_loops;

void tinyopt_depthwise_conv2d_s2(const tinyopt_conv_params *p, const int8_t *in, int8_t *out, int8_t *scratch,
                                 int8_t *col, int reverse, const int8_t *other);
/* The body of both entries; loops NULL: the portable path. */
void tinyopt_depthwise_conv2d_run(const tinyopt_conv_params *p, const int8_t *in, int8_t *out, int8_t *scratch,
                                  int8_t *col, int reverse, const int8_t *other, const tinyopt_dw_loops *loops);

#if defined(TINYOPT_HAVE_MM2X2_ASM)
/* The Cortex-M4 depthwise pair loop: output pixels (y, x) and (y + 1, x), 4 channels, one pass per
 * column x. The band holds, per input column, the words (4 channels) of 5 input rows from
 * y * stride_h - padding_h (the zero point in the padding; 20 bytes per column): pixel 0's taps are rows
 * 0..2, pixel 1's rows s..s + 2 (s = stride_h, one function per stride), all at immediate offsets. Per
 * tap: the tap's doubled int16 weights (2 words), each pixel's word split into lanes (c0, c2), (c1, c3)
 * by SXTB16 and multiplied lane by lane (SMLABB, SMLATT): 18 cycles per 8 MACs. Per pass both pixels
 * start from the doubled biases and end with SMMLAR(2 acc, m, r) - (acc < 0), >> s, SSAT, the layer's
 * clamp on 4 lanes if narrower than int8, one word store per pixel (pixel 1 first, so that a lone last
 * row can point both at the same place). */
typedef struct {
    const int8_t *rows[5]; /* 0..16: per band row, its first copied word (group 0) */
    uint32_t *band;        /* 20 */
    uint32_t *copy_to;     /* 24: where the copied columns start in the band */
    int ncopy;             /* 28: columns copied per group (0: the band is ready, one group) */
    const int32_t *w;      /* 32: the first group's 18 lane words */
    const int32_t *rq;     /* 36: its 16 words: doubled biases, m, r, s (pack_depthwise_pairs) */
    int8_t *d0, *d1;       /* 40, 44: the first group's outputs of pixels 0 and 1 */
    int step;              /* 48: input and output bytes from one pixel to the next (the channel count) */
    int passes;            /* 52 (> 0) */
    int band_step;         /* 56: band bytes from one pass to the next (20 * stride_w) */
    int groups;            /* 60 (> 0) */
    int clamp;             /* 64 */
    uint32_t lo4, hi4;     /* 68, 72 */
    int in_step;           /* 76: input bytes from one pixel to the next when copying columns (the channel count;
                            * step is the output's: twice that when the two pixels are neighbouring columns) */
    int single;            /* 80: the column variants: one more column after the passes, computed alone */
} tinyopt_dwp_args;

/* the loops (a: tinyopt_dwp_args): rows 1 or 2 apart (tinyopt_dwp1, depthwise_conv2d.c; tinyopt_dwp2,
 * depthwise_s2.c), and with TINYOPT_DW_COLUMNS columns 1 or 2 apart (tinyopt_dwc1, tinyopt_dwc2) */
void tinyopt_dwp1(const void *a);
void tinyopt_dwp2(const void *a);
void tinyopt_dwc1(const void *a);
void tinyopt_dwc2(const void *a);

/* One pixel's word at band offset `off` (4 channels) into accumulators a0..a3 (channels 0..3), the tap's
 * doubled weight lanes in r10 (channels 0, 2) and r11 (1, 3). */
#define TINYOPT_DW_LANES(off, a0, a1, a2, a3) \
    "ldr r12, [r0, #(" off ")]\n\t" \
    "sxtb16 lr, r12\n\t" \
    "smlabb " a0 ", lr, r10, " a0 "\n\t" \
    "smlatt " a2 ", lr, r10, " a2 "\n\t" \
    "sxtb16 r12, r12, ror #8\n\t" \
    "smlabb " a1 ", r12, r11, " a1 "\n\t" \
    "smlatt " a3 ", r12, r11, " a3 "\n\t"

/* Tap t (row ky, column kx) of both pixels; p1: pixel 1's byte offset in a band column (4 * stride_h). */
#define TINYOPT_DWP_TAP(t, kx, ky, p1) \
    "ldr r10, [r1, #(8*" t ")]\n\t" \
    "ldr r11, [r1, #(8*" t "+4)]\n\t" \
    TINYOPT_DW_LANES("20*" kx "+4*" ky, "r2", "r3", "r4", "r5") \
    TINYOPT_DW_LANES("20*" kx "+4*" ky "+" p1, "r6", "r7", "r8", "r9")

/* Requantize accumulator ra with m, r, s in r10, r11, r12. */
#define TINYOPT_DW_REQUANT(ra) \
    "smmlar lr, " ra ", r10, r11\n\t" \
    "add " ra ", lr, " ra ", asr #31\n\t" \
    "asr " ra ", " ra ", r12\n\t" \
    "ssat " ra ", #8, " ra "\n\t"

/* Channel c's m, r, s (at rq + 16, 32, 48) into r10, r11, r12. */
#define TINYOPT_DW_MRS(c) \
    "ldr r10, [r1, #(16+4*" c ")]\n\t" \
    "ldr r11, [r1, #(32+4*" c ")]\n\t" \
    "ldr r12, [r1, #(48+4*" c ")]\n\t"

/* Channel c of both pixels (accumulators ra, rb). */
#define TINYOPT_DWP_RQ(c, ra, rb) TINYOPT_DW_MRS(c) TINYOPT_DW_REQUANT(ra) TINYOPT_DW_REQUANT(rb)

/* Tap t (row ky, column kx) of one pixel: its doubled weight lanes in one LDRD, 8 instructions for 4 MACs. */
#define TINYOPT_DWS_TAP(t, kx, ky) \
    "ldrd r10, r11, [r1, #(8*" t ")]\n\t" \
    TINYOPT_DW_LANES("20*" kx "+4*" ky, "r2", "r3", "r4", "r5")

/* Channel c of one pixel (accumulator ra). */
#define TINYOPT_DWS_RQ(c, ra) TINYOPT_DW_MRS(c) TINYOPT_DW_REQUANT(ra)

/* The column variants' last column of a span of odd width, alone (about half a pair's instructions),
 * after the group's passes (none for a span of one column): its band column at r0, its output at d0. */
#define TINYOPT_DWS_SKIP \
    "ldr r10, [sp, #0]\n\t" \
    "cmp r0, r10\n\t" \
    "beq 6f\n" \
    "1:\n\t"
#define TINYOPT_DWS_TAIL \
    "6:\n\t" \
    "ldr r3, [sp, #88]\n\t" \
    "cmp r3, #0\n\t" \
    "beq 7f\n\t" \
    "ldr r1, [sp, #24]\n\t" \
    "ldm r1, {r2-r5}\n\t" \
    "ldr r1, [sp, #20]\n\t" \
    TINYOPT_DWS_TAP("0", "0", "0") TINYOPT_DWS_TAP("1", "1", "0") TINYOPT_DWS_TAP("2", "2", "0") \
    TINYOPT_DWS_TAP("3", "0", "1") TINYOPT_DWS_TAP("4", "1", "1") TINYOPT_DWS_TAP("5", "2", "1") \
    TINYOPT_DWS_TAP("6", "0", "2") TINYOPT_DWS_TAP("7", "1", "2") TINYOPT_DWS_TAP("8", "2", "2") \
    "ldr r1, [sp, #24]\n\t" \
    TINYOPT_DWS_RQ("0", "r2") TINYOPT_DWS_RQ("1", "r3") TINYOPT_DWS_RQ("2", "r4") TINYOPT_DWS_RQ("3", "r5") \
    "bfi r2, r3, #8, #8\n\t" \
    "bfi r2, r4, #16, #8\n\t" \
    "bfi r2, r5, #24, #8\n\t" \
    "ldr r3, [sp, #28]\n\t" \
    "cbz r3, 8f\n\t" \
    "ldrd r10, r11, [sp, #32]\n\t" \
    "ssub8 r12, r2, r10\n\t" \
    "sel r2, r2, r10\n\t" \
    "ssub8 r12, r11, r2\n\t" \
    "sel r2, r2, r11\n" \
    "8:\n\t" \
    "ldr r10, [sp, #4]\n\t" \
    "str r2, [r10]\n" \
    "7:\n\t"

/* The band's copied columns of a group (lr of them, from the row pointers r0.. at the frame's 40.., r7 bytes
 * apart, to r12): all 5 rows for the row-pair variants; the column variants' one output row reads 3. */
#define TINYOPT_DWP_COPY \
    "5:\n\t" \
    "ldr r6, [r0]\n\t" \
    "ldr r8, [r1]\n\t" \
    "ldr r9, [r2]\n\t" \
    "ldr r10, [r3]\n\t" \
    "ldr r11, [r4]\n\t" \
    "add r0, r0, r7\n\t" \
    "add r1, r1, r7\n\t" \
    "add r2, r2, r7\n\t" \
    "add r3, r3, r7\n\t" \
    "add r4, r4, r7\n\t" \
    "stm r12!, {r6, r8, r9, r10, r11}\n\t" \
    "subs lr, lr, #1\n\t" \
    "bne 5b\n\t" \
    "add r6, sp, #40\n\t" \
    "ldm r6, {r0-r4}\n\t" \
    "add r0, r0, #4\n\t" \
    "add r1, r1, #4\n\t" \
    "add r2, r2, #4\n\t" \
    "add r3, r3, #4\n\t" \
    "add r4, r4, #4\n\t" \
    "stm r6, {r0-r4}\n"
#define TINYOPT_DWC_COPY \
    "5:\n\t" \
    "ldr r6, [r0]\n\t" \
    "ldr r8, [r1]\n\t" \
    "ldr r9, [r2]\n\t" \
    "add r0, r0, r7\n\t" \
    "add r1, r1, r7\n\t" \
    "add r2, r2, r7\n\t" \
    "stm r12, {r6, r8, r9}\n\t" \
    "add r12, r12, #20\n\t" \
    "subs lr, lr, #1\n\t" \
    "bne 5b\n\t" \
    "add r6, sp, #40\n\t" \
    "ldm r6, {r0-r2}\n\t" \
    "add r0, r0, #4\n\t" \
    "add r1, r1, #4\n\t" \
    "add r2, r2, #4\n\t" \
    "stm r6, {r0-r2}\n"

/* Frame (sp): 0 band end, 4 d0, 8 d1, 12 step, 16 band step, 20 w, 24 rq, 28 clamp, 32 lo4, 36 hi4,
 * 40..56 rows, 60 ncopy, 64 copy to, 68 band, 72 group d0, 76 group d1, 80 groups left, 84 in step,
 * 88 single. Per group: the band's copied columns (`copy`: 5 or 3 input words per column, one STM), then
 * one pass per column; `skip` and `tail` are nothing, or (column variants) TINYOPT_DWS_SKIP and
 * TINYOPT_DWS_TAIL. */
#define TINYOPT_DWP_FUNCTION(name, p1, copy, skip, tail) \
    ".pushsection .text." name ",\"ax\",%progbits\n\t" \
    ".syntax unified\n\t" \
    ".thumb\n\t" \
    ".balign 4\n\t" \
    ".global " name "\n\t" \
    ".type " name ", %function\n\t" \
    ".thumb_func\n" \
    name ":\n\t" \
    "push {r4-r11, lr}\n\t" \
    "sub sp, sp, #96\n\t" \
    "mov r12, r0\n\t" \
    "ldm r12!, {r0-r4}\n\t" \
    "add lr, sp, #40\n\t" \
    "stm lr, {r0-r4}\n\t" \
    "ldm r12!, {r0-r3}\n\t" \
    "str r0, [sp, #68]\n\t" \
    "str r1, [sp, #64]\n\t" \
    "str r2, [sp, #60]\n\t" \
    "str r3, [sp, #20]\n\t" \
    "ldm r12!, {r0-r3}\n\t" \
    "str r0, [sp, #24]\n\t" \
    "strd r1, r2, [sp, #72]\n\t" \
    "str r3, [sp, #12]\n\t" \
    "ldm r12!, {r0-r3}\n\t" \
    "str r2, [sp, #80]\n\t" \
    "str r3, [sp, #28]\n\t" \
    "ldr r4, [sp, #68]\n\t" \
    "mla r5, r0, r1, r4\n\t" \
    "str r5, [sp, #0]\n\t" \
    "str r1, [sp, #16]\n\t" \
    "ldm r12, {r0, r1, r2, r3}\n\t" \
    "strd r0, r1, [sp, #32]\n\t" \
    "str r2, [sp, #84]\n\t" \
    "str r3, [sp, #88]\n" \
    "3:\n\t" \
    "ldr r5, [sp, #60]\n\t" \
    "cbz r5, 4f\n\t" \
    "add r6, sp, #40\n\t" \
    "ldm r6, {r0-r4}\n\t" \
    "ldr r12, [sp, #64]\n\t" \
    "ldr r7, [sp, #84]\n\t" \
    "mov lr, r5\n" \
    copy \
    "4:\n\t" \
    "ldrd r10, r11, [sp, #72]\n\t" \
    "strd r10, r11, [sp, #4]\n\t" \
    "ldr r0, [sp, #68]\n" \
    skip \
    "ldr r1, [sp, #24]\n\t" \
    "ldm r1, {r2-r5}\n\t" \
    "mov r6, r2\n\t" \
    "mov r7, r3\n\t" \
    "mov r8, r4\n\t" \
    "mov r9, r5\n\t" \
    "ldr r1, [sp, #20]\n\t" \
    TINYOPT_DWP_TAP("0", "0", "0", p1) TINYOPT_DWP_TAP("1", "1", "0", p1) TINYOPT_DWP_TAP("2", "2", "0", p1) \
    TINYOPT_DWP_TAP("3", "0", "1", p1) TINYOPT_DWP_TAP("4", "1", "1", p1) TINYOPT_DWP_TAP("5", "2", "1", p1) \
    TINYOPT_DWP_TAP("6", "0", "2", p1) TINYOPT_DWP_TAP("7", "1", "2", p1) TINYOPT_DWP_TAP("8", "2", "2", p1) \
    "ldr r1, [sp, #24]\n\t" \
    TINYOPT_DWP_RQ("0", "r2", "r6") TINYOPT_DWP_RQ("1", "r3", "r7") \
    TINYOPT_DWP_RQ("2", "r4", "r8") TINYOPT_DWP_RQ("3", "r5", "r9") \
    "bfi r2, r3, #8, #8\n\t" \
    "bfi r6, r7, #8, #8\n\t" \
    "bfi r2, r4, #16, #8\n\t" \
    "bfi r6, r8, #16, #8\n\t" \
    "bfi r2, r5, #24, #8\n\t" \
    "bfi r6, r9, #24, #8\n\t" \
    "ldr r3, [sp, #28]\n\t" \
    "cbz r3, 2f\n\t" \
    "ldrd r10, r11, [sp, #32]\n\t" \
    "ssub8 r12, r2, r10\n\t" \
    "sel r2, r2, r10\n\t" \
    "ssub8 r12, r11, r2\n\t" \
    "sel r2, r2, r11\n\t" \
    "ssub8 r12, r6, r10\n\t" \
    "sel r6, r6, r10\n\t" \
    "ssub8 r12, r11, r6\n\t" \
    "sel r6, r6, r11\n" \
    "2:\n\t" \
    "ldrd r10, r11, [sp, #4]\n\t" \
    "str r6, [r11]\n\t" \
    "str r2, [r10]\n\t" \
    "ldrd r12, lr, [sp, #12]\n\t" \
    "add r10, r10, r12\n\t" \
    "add r11, r11, r12\n\t" \
    "strd r10, r11, [sp, #4]\n\t" \
    "add r0, r0, lr\n\t" \
    "ldr r10, [sp, #0]\n\t" \
    "cmp r0, r10\n\t" \
    "bne 1b\n" \
    tail \
    "ldrd r10, r11, [sp, #72]\n\t" \
    "add r10, r10, #4\n\t" \
    "add r11, r11, #4\n\t" \
    "strd r10, r11, [sp, #72]\n\t" \
    "ldrd r10, r11, [sp, #20]\n\t" \
    "add r10, r10, #72\n\t" \
    "add r11, r11, #64\n\t" \
    "strd r10, r11, [sp, #20]\n\t" \
    "ldr r10, [sp, #80]\n\t" \
    "subs r10, r10, #1\n\t" \
    "str r10, [sp, #80]\n\t" \
    "bne 3b\n\t" \
    "add sp, sp, #96\n\t" \
    "pop {r4-r11, pc}\n\t" \
    ".size " name ", .-" name "\n\t" \
    ".popsection\n"
#endif

#endif
