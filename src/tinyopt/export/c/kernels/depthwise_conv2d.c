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
#include "tinyopt_depthwise_conv2d.h"
#include "tinyopt_fixedpoint.h"
#include "tinyopt_kernels.h"
#include "tinyopt_simd.h"

#define TINYOPT_DW_MAX_TAPS 64

#if defined(TINYOPT_HAVE_MM2X2_ASM)
#if !defined(TINYOPT_DW_NO_ROWS)
__asm__(TINYOPT_DWP_FUNCTION("tinyopt_dwp1", "4", TINYOPT_DWP_COPY, "1:\n\t", ""));
#endif
#if defined(TINYOPT_DW_COLUMNS)
/* the same loop with pixel 1 one column right of pixel 0: for the lone rows of a library that streams
 * depthwise layers in bands of odd height (the generator defines TINYOPT_DW_COLUMNS in kernels.h then;
 * other libraries do not carry the code) */
__asm__(TINYOPT_DWP_FUNCTION("tinyopt_dwc1", "20", TINYOPT_DWC_COPY, TINYOPT_DWS_SKIP, TINYOPT_DWS_TAIL));
#endif

/* Output columns [x0, x0 + n) of rows row0 and row1 through the pair loop `pass`. The band holds 5 input
 * rows from y0, the zero point in the padding: padded columns are written here once, the columns inside
 * copied by the loop for each group of 4 channels; a band with a padded row is built here per group
 * instead. With `columns`, the loop's two pixels are neighbouring columns of one row (tinyopt_dwc*, which
 * read pixel 1 one column further in the band): d1 is one pixel after d0, a pass covers two columns and
 * an odd last column is computed alone after them, from the same band. */
static void dw_span(const tinyopt_conv_params *p, const int8_t *in, int y0, int rows_n, int x0, int n, int8_t *d0,
                    int8_t *d1, uint32_t *band, tinyopt_dw_loop pass, int columns)
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
 * (row1 == row0: the last of an odd image, or a streamed band of one row) runs as pairs of neighbouring
 * columns, an odd last column alone, when the entry has the column loop for the layer's stride_w, else
 * as a pair whose pixel 1's store pixel 0's overwrites; without the row loop (TINYOPT_DW_NO_ROWS) two
 * rows run as two lone rows. */
#define TINYOPT_DW_SPAN 16
static tinyopt_dw_loop dw_columns(const tinyopt_conv_params *p, const tinyopt_dw_loops *loops)
{
    return p->stride_w <= 2 ? loops->columns[p->stride_w - 1] : NULL;
}

static void dw_pair_rows(const tinyopt_conv_params *p, const int8_t *in, int y, int8_t *row0, int8_t *row1,
                         uint32_t *band, const tinyopt_dw_loops *loops)
{
    const int C = p->in_c, y0 = y * p->stride_h - p->padding_h, lone = row1 == row0;
    const int rows_n = lone ? 3 : 3 + p->stride_h; /* a lone row reads 3 input rows */
    const tinyopt_dw_loop pass = loops->rows[p->stride_h - 1];
    const tinyopt_dw_loop columns = lone ? dw_columns(p, loops) : NULL;
    int x0;
    if (!lone && pass == NULL) {
        dw_pair_rows(p, in, y, row0, row0, band, loops);
        dw_pair_rows(p, in, y + 1, row1, row1, band, loops);
        return;
    }
    for (x0 = 0; x0 < p->out_w; x0 += TINYOPT_DW_SPAN) {
        const int n = p->out_w - x0 < TINYOPT_DW_SPAN ? p->out_w - x0 : TINYOPT_DW_SPAN;
        int8_t *d = row0 + x0 * C;
        if (columns != NULL) {
            dw_span(p, in, y0, rows_n, x0, n, d, d + C, band, columns, 1);
        } else {
            dw_span(p, in, y0, rows_n, x0, n, d, lone ? d : row1 + x0 * C, band, pass, 0);
        }
    }
}
#endif

#if !defined(TINYOPT_DW_PAIRS_ONLY)
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
#endif

void tinyopt_depthwise_conv2d_run(const tinyopt_conv_params *p, const int8_t *in, int8_t *out, int8_t *scratch,
                                  int8_t *col, int reverse, const int8_t *other, const tinyopt_dw_loops *loops)
{
    const int row_bytes = p->out_w * p->out_c;
    int k;
#if defined(TINYOPT_HAVE_MM2X2_ASM)
    if (p->dw_pairs && p->rq != NULL && other == NULL && loops != NULL &&
        (loops->rows[p->stride_h - 1] != NULL || dw_columns(p, loops) != NULL)) {
        /* two rows at a time, in order (or bottom-up) */
        for (k = 0; k < p->out_h; k += 2) {
            const int lone = k + 1 >= p->out_h, y = reverse ? (lone ? 0 : p->out_h - 2 - k) : k;
            int8_t *r0 = scratch != NULL ? scratch : out + y * row_bytes;
            int8_t *r1 = lone ? r0 : (scratch != NULL ? scratch + row_bytes : r0 + row_bytes);
            dw_pair_rows(p, in, y, r0, r1, (uint32_t *)(void *)col, loops);
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
    (void)loops;
#endif
#if !defined(TINYOPT_DW_PAIRS_ONLY)
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
#endif
}

/* Layers of stride 1 (and those off the pair loop): the stride-1 loops; stride 2 has its own entry. */
void tinyopt_depthwise_conv2d(const tinyopt_conv_params *p, const int8_t *in, int8_t *out, int8_t *scratch,
                              int8_t *col, int reverse, const int8_t *other)
{
#if defined(TINYOPT_HAVE_MM2X2_ASM)
    static const tinyopt_dw_loops loops = {{TINYOPT_DW_ROWS(tinyopt_dwp1), NULL},
                                           {TINYOPT_DW_COLS(tinyopt_dwc1), NULL}};
    tinyopt_depthwise_conv2d_run(p, in, out, scratch, col, reverse, other, &loops);
#else
    tinyopt_depthwise_conv2d_run(p, in, out, scratch, col, reverse, other, NULL);
#endif
}
