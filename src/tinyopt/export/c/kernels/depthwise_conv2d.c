/* DEPTHWISE_CONV_2D, int8 per-channel: TFLM's reference integer depthwise arithmetic. Output channel
 * oc = ic * depth_multiplier + m reads input channel ic. Input offset folded into the bias as in
 * conv2d.c. The portable path resolves each output pixel's taps once to row pointers (a padded tap points
 * at a row of input zero points), then every channel runs its taps with no bounds checks; weights are
 * stored channel-major [O][KH*KW] so a channel's taps are adjacent. On the Cortex-M4, 3x3 layers (one
 * multiplier, channels in fours, row stride 1 or 2, no dilation) run the pair loop below. */
/* On a host without the Arm DSP path the int8 dot products are plain loops: let GCC vectorize them even
 * when the library is built with -O2 (its -O2 cost model leaves such loops scalar). */
#if defined(__GNUC__) && !defined(__clang__) && !(defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP)
#pragma GCC optimize("O3")
#endif
#include "tinyopt_fixedpoint.h"
#include "tinyopt_kernels.h"
#include "tinyopt_simd.h"

#define TINYOPT_DW_MAX_TAPS 64

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

void tinyopt_dwp1(const tinyopt_dwp_args *a);
void tinyopt_dwp2(const tinyopt_dwp_args *a);
#if defined(TINYOPT_DW_COLUMNS)
void tinyopt_dwc1(const tinyopt_dwp_args *a);
void tinyopt_dwc2(const tinyopt_dwp_args *a);
#endif

/* Tap t (row ky, column kx) of both pixels; p1: pixel 1's byte offset in a band column (4 * stride_h). */
#define TINYOPT_DWP_TAP(t, kx, ky, p1) \
    "ldr r10, [r1, #(8*" t ")]\n\t" \
    "ldr r11, [r1, #(8*" t "+4)]\n\t" \
    "ldr r12, [r0, #(20*" kx "+4*" ky ")]\n\t" \
    "sxtb16 lr, r12\n\t" \
    "smlabb r2, lr, r10, r2\n\t" \
    "smlatt r4, lr, r10, r4\n\t" \
    "sxtb16 r12, r12, ror #8\n\t" \
    "smlabb r3, r12, r11, r3\n\t" \
    "smlatt r5, r12, r11, r5\n\t" \
    "ldr r12, [r0, #(20*" kx "+4*" ky "+" p1 ")]\n\t" \
    "sxtb16 lr, r12\n\t" \
    "smlabb r6, lr, r10, r6\n\t" \
    "smlatt r8, lr, r10, r8\n\t" \
    "sxtb16 r12, r12, ror #8\n\t" \
    "smlabb r7, r12, r11, r7\n\t" \
    "smlatt r9, r12, r11, r9\n\t"

/* Channel c of both pixels (accumulators ra, rb): m, r, s at rq + 16, 32, 48. */
#define TINYOPT_DWP_RQ(c, ra, rb) \
    "ldr r10, [r1, #(16+4*" c ")]\n\t" \
    "ldr r11, [r1, #(32+4*" c ")]\n\t" \
    "ldr r12, [r1, #(48+4*" c ")]\n\t" \
    "smmlar lr, " ra ", r10, r11\n\t" \
    "add " ra ", lr, " ra ", asr #31\n\t" \
    "asr " ra ", " ra ", r12\n\t" \
    "ssat " ra ", #8, " ra "\n\t" \
    "smmlar lr, " rb ", r10, r11\n\t" \
    "add " rb ", lr, " rb ", asr #31\n\t" \
    "asr " rb ", " rb ", r12\n\t" \
    "ssat " rb ", #8, " rb "\n\t"

/* Tap t (row ky, column kx) of one pixel: its doubled weight lanes in one LDRD, 8 instructions for 4 MACs. */
#define TINYOPT_DWS_TAP(t, kx, ky) \
    "ldrd r10, r11, [r1, #(8*" t ")]\n\t" \
    "ldr r12, [r0, #(20*" kx "+4*" ky ")]\n\t" \
    "sxtb16 lr, r12\n\t" \
    "smlabb r2, lr, r10, r2\n\t" \
    "smlatt r4, lr, r10, r4\n\t" \
    "sxtb16 r12, r12, ror #8\n\t" \
    "smlabb r3, r12, r11, r3\n\t" \
    "smlatt r5, r12, r11, r5\n\t"

/* Channel c of one pixel (accumulator ra), as TINYOPT_DWP_RQ. */
#define TINYOPT_DWS_RQ(c, ra) \
    "ldr r10, [r1, #(16+4*" c ")]\n\t" \
    "ldr r11, [r1, #(32+4*" c ")]\n\t" \
    "ldr r12, [r1, #(48+4*" c ")]\n\t" \
    "smmlar lr, " ra ", r10, r11\n\t" \
    "add " ra ", lr, " ra ", asr #31\n\t" \
    "asr " ra ", " ra ", r12\n\t" \
    "ssat " ra ", #8, " ra "\n\t"

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

__asm__(TINYOPT_DWP_FUNCTION("tinyopt_dwp1", "4", TINYOPT_DWP_COPY, "1:\n\t", ""));
__asm__(TINYOPT_DWP_FUNCTION("tinyopt_dwp2", "8", TINYOPT_DWP_COPY, "1:\n\t", ""));
#if defined(TINYOPT_DW_COLUMNS)
/* the same loop with pixel 1 one column (stride_w 1) or two columns (stride_w 2) right of pixel 0: for the
 * lone rows of a library that streams depthwise layers in bands of one row (the generator defines
 * TINYOPT_DW_COLUMNS in kernels.h then; other libraries do not carry the code) */
__asm__(TINYOPT_DWP_FUNCTION("tinyopt_dwc1", "20", TINYOPT_DWC_COPY, TINYOPT_DWS_SKIP, TINYOPT_DWS_TAIL));
__asm__(TINYOPT_DWP_FUNCTION("tinyopt_dwc2", "40", TINYOPT_DWC_COPY, TINYOPT_DWS_SKIP, TINYOPT_DWS_TAIL));
#endif

/* Output columns [x0, x0 + n) of rows row0 and row1 through the pair loop `pass`. The band holds 5 input
 * rows from y0, the zero point in the padding: padded columns are written here once, the columns inside
 * copied by the loop for each group of 4 channels; a band with a padded row is built here per group
 * instead. With `columns`, the loop's two pixels are neighbouring columns of one row (tinyopt_dwc*, which
 * read pixel 1 one column further in the band): d1 is one pixel after d0, a pass covers two columns and
 * an odd last column is computed alone after them, from the same band. */
static void dw_span(const tinyopt_conv_params *p, const int8_t *in, int y0, int rows_n, int x0, int n, int8_t *d0,
                    int8_t *d1, uint32_t *band, void (*pass)(const tinyopt_dwp_args *), int columns)
{
    const int C = p->in_c, sw = p->stride_w;
    const uint32_t zp4 = 0x01010101u * (uint8_t)p->input_zero_point;
    const int all = y0 >= 0 && y0 + rows_n <= p->in_h; /* every band row used is inside the input */
    const int xs = x0 * sw - p->padding_w, cols = (n - 1) * sw + 3;
    const int j0 = xs < 0 ? -xs : 0, j1 = p->in_w - xs < cols ? p->in_w - xs : cols; /* columns inside */
    tinyopt_dwp_args a;
    int g, j, k;
    a.step = columns ? 2 * C : C;
    a.in_step = C;
    a.band_step = (columns ? 40 : 20) * sw;
    a.clamp = p->output_activation_min > -128 || p->output_activation_max < 127;
    a.lo4 = 0x01010101u * (uint8_t)p->output_activation_min;
    a.hi4 = 0x01010101u * (uint8_t)p->output_activation_max;
    a.band = band;
    a.passes = columns ? n / 2 : n;
    a.single = columns ? n % 2 : 0;
    a.d0 = d0;
    a.d1 = d1;
    a.w = p->lanes;
    a.rq = p->rq;
    if (all && j1 > j0) { /* the loop copies the inside columns of every group */
        for (j = 0; j < cols; ++j) {
            if (j < j0 || j >= j1) {
                band[5 * j] = band[5 * j + 1] = band[5 * j + 2] = band[5 * j + 3] = band[5 * j + 4] = zp4;
            }
        }
        for (k = 0; k < 5; ++k) { /* rows past rows_n serve no pixel: any inside row will do */
            a.rows[k] = in + ((y0 + (k < rows_n ? k : 0)) * p->in_w + xs + j0) * C;
        }
        a.copy_to = band + 5 * j0;
        a.ncopy = j1 - j0;
        a.groups = C / 4;
        pass(&a);
        return;
    }
    a.ncopy = 0;
    a.groups = 1;
    for (g = 0; g < C; g += 4, a.d0 += 4, a.d1 += 4, a.w += 18, a.rq += 16) {
        for (j = 0; j < cols; ++j) {
            const int ix = xs + j;
            for (k = 0; k < 5; ++k) {
                const int iy = y0 + k;
                band[5 * j + k] = iy >= 0 && iy < p->in_h && ix >= 0 && ix < p->in_w
                                      ? tinyopt_ld4(in + (iy * p->in_w + ix) * C + g) : zp4;
            }
        }
        pass(&a);
    }
}

/* Output rows y and y + 1 through the pair loop in spans of at most TINYOPT_DW_SPAN columns. A lone row
 * (row1 == row0: the last of an odd image, or a streamed band of one row) runs as a pair whose pixel 1's
 * store pixel 0's overwrites, or, with TINYOPT_DW_COLUMNS, as pairs of neighbouring columns, an odd last
 * column alone. */
#define TINYOPT_DW_SPAN 16
static void dw_pair_rows(const tinyopt_conv_params *p, const int8_t *in, int y, int8_t *row0, int8_t *row1,
                         uint32_t *band)
{
    const int C = p->in_c, y0 = y * p->stride_h - p->padding_h, lone = row1 == row0;
    const int rows_n = lone ? 3 : 3 + p->stride_h; /* a lone row reads 3 input rows */
    void (*pass)(const tinyopt_dwp_args *) = p->stride_h == 1 ? tinyopt_dwp1 : tinyopt_dwp2;
#if defined(TINYOPT_DW_COLUMNS)
    void (*columns)(const tinyopt_dwp_args *) = p->stride_w == 1 ? tinyopt_dwc1 : tinyopt_dwc2;
#endif
    int x0;
    for (x0 = 0; x0 < p->out_w; x0 += TINYOPT_DW_SPAN) {
        const int n = p->out_w - x0 < TINYOPT_DW_SPAN ? p->out_w - x0 : TINYOPT_DW_SPAN;
        int8_t *d = row0 + x0 * C;
#if defined(TINYOPT_DW_COLUMNS)
        if (lone) {
            dw_span(p, in, y0, rows_n, x0, n, d, d + C, band, columns, 1);
            continue;
        }
#endif
        dw_span(p, in, y0, rows_n, x0, n, d, lone ? d : row1 + x0 * C, band, pass, 0);
    }
}
#endif

static void depthwise_row(const tinyopt_conv_params *p, const int8_t *in, int oy, int8_t *dst,
                          const int8_t *other)
{
    const int taps = p->filter_h * p->filter_w, dm = p->depth_multiplier, c_n = p->in_c, small = p->small_acc;
    /* read once: int8 stores may alias *p, so fields used in the loop would be reloaded per store */
    const int32_t *bias = p->bias, *mult = p->multiplier, *shift = p->shift;
    const int32_t offset = p->output_offset, lo = p->output_activation_min, hi = p->output_activation_max;
    const int8_t *tap[TINYOPT_DW_MAX_TAPS];
    int off[TINYOPT_DW_MAX_TAPS]; /* each tap's byte offset from the window's top-left input pixel */
    const int y0 = oy * p->stride_h - p->padding_h;
    const int rows_inside = y0 >= 0 && y0 + (p->filter_h - 1) * p->dilation_h < p->in_h;
    int ox, ky, kx, c, m, t;
    for (ky = 0, t = 0; ky < p->filter_h; ++ky) {
        for (kx = 0; kx < p->filter_w; ++kx, ++t) {
            off[t] = (ky * p->dilation_h * p->in_w + kx * p->dilation_w) * c_n;
        }
    }
    for (ox = 0; ox < p->out_w; ++ox) {
        const int x0 = ox * p->stride_w - p->padding_w;
        int8_t *d = dst + ox * p->out_c;
        const int8_t *o = other != NULL ? other + ox * p->out_c : NULL;
        if (rows_inside && x0 >= 0 && x0 + (p->filter_w - 1) * p->dilation_w < p->in_w) { /* no tap in the padding */
            const int8_t *base = in + (y0 * p->in_w + x0) * c_n;
            for (t = 0; t < taps; ++t) {
                tap[t] = base + off[t];
            }
        } else {
            for (ky = 0, t = 0; ky < p->filter_h; ++ky) {
                const int iy = y0 + ky * p->dilation_h;
                for (kx = 0; kx < p->filter_w; ++kx, ++t) {
                    const int ix = x0 + kx * p->dilation_w;
                    tap[t] = (iy < 0 || iy >= p->in_h || ix < 0 || ix >= p->in_w)
                                 ? p->pad_row : in + (iy * p->in_w + ix) * c_n;
                }
            }
        }
        if (taps == 9 && dm == 1) {
            const int8_t *t0 = tap[0], *t1 = tap[1], *t2 = tap[2], *t3 = tap[3], *t4 = tap[4];
            const int8_t *t5 = tap[5], *t6 = tap[6], *t7 = tap[7], *t8 = tap[8];
            const int8_t *w = p->weights;
            for (c = 0; c < c_n; ++c, w += 9) {
                int32_t acc = bias[c];
                acc += t0[c] * w[0] + t1[c] * w[1] + t2[c] * w[2] + t3[c] * w[3] + t4[c] * w[4];
                acc += t5[c] * w[5] + t6[c] * w[6] + t7[c] * w[7] + t8[c] * w[8];
                acc = (small ? tinyopt_mbqm_small(acc, mult[c], shift[c]) : tinyopt_mbqm(acc, mult[c], shift[c]))
                      + offset;
                acc = acc < lo ? lo : (acc > hi ? hi : acc);
                d[c] = o != NULL ? (p->add_conv_first ? tinyopt_add_one(p->add, acc, o[c])
                                                      : tinyopt_add_one(p->add, o[c], acc))
                                 : (int8_t)acc;
            }
            continue;
        }
        for (c = 0; c < c_n; ++c) {
            for (m = 0; m < dm; ++m) {
                const int oc = c * dm + m;
                const int8_t *w = p->weights + oc * taps;
                int32_t acc = p->bias[oc];
                for (t = 0; t < taps; ++t) {
                    acc += tap[t][c] * w[t];
                }
                acc = (small ? tinyopt_mbqm_small(acc, p->multiplier[oc], p->shift[oc])
                             : tinyopt_mbqm(acc, p->multiplier[oc], p->shift[oc])) + p->output_offset;
                acc = acc < p->output_activation_min ? p->output_activation_min : (acc > p->output_activation_max ? p->output_activation_max : acc);
                d[oc] = o != NULL ? (p->add_conv_first ? tinyopt_add_one(p->add, acc, o[oc])
                                                       : tinyopt_add_one(p->add, o[oc], acc))
                                  : (int8_t)acc;
            }
        }
    }
}

void tinyopt_depthwise_conv2d(const tinyopt_conv_params *p, const int8_t *in, int8_t *out, int8_t *scratch,
                              int8_t *col, int reverse, const int8_t *other)
{
    const int row_bytes = p->out_w * p->out_c;
    int k;
#if defined(TINYOPT_HAVE_MM2X2_ASM)
    if (p->dw_pairs && p->rq != NULL && other == NULL) { /* two rows at a time, in order (or bottom-up) */
        for (k = 0; k < p->out_h; k += 2) {
            const int lone = k + 1 >= p->out_h, y = reverse ? (lone ? 0 : p->out_h - 2 - k) : k;
            int8_t *r0 = scratch != NULL ? scratch : out + y * row_bytes;
            int8_t *r1 = lone ? r0 : (scratch != NULL ? scratch + row_bytes : r0 + row_bytes);
            dw_pair_rows(p, in, y, r0, r1, (uint32_t *)(void *)col);
            if (scratch != NULL) { /* both rows finished: store them in the order rows go */
                if (reverse && !lone) {
                    tinyopt_store_row(p, r1, NULL, out + (y + 1) * row_bytes, row_bytes);
                }
                tinyopt_store_row(p, r0, NULL, out + y * row_bytes, row_bytes);
                if (!reverse && !lone) {
                    tinyopt_store_row(p, r1, NULL, out + (y + 1) * row_bytes, row_bytes);
                }
            }
        }
        return;
    }
#else
    (void)col;
#endif
    for (k = 0; k < p->out_h; ++k) {
        const int oy = reverse ? p->out_h - 1 - k : k;
        const int8_t *other_row = other != NULL ? other + oy * row_bytes : NULL;
        if (scratch != NULL) {
            depthwise_row(p, in, oy, scratch, NULL);
            tinyopt_store_row(p, scratch, other_row, out + oy * row_bytes, row_bytes);
        } else {
            depthwise_row(p, in, oy, out + oy * row_bytes, other_row);
        }
    }
}
