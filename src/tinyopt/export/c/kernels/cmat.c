/* The drivers of the compressed-weight layers (see tinyopt_cmat.h): im2col patches for a conv, rows of
 * a dense layer's input, their 16-bit lanes on the Cortex-M4, and the requantization of every output, as
 * TFLM's reference kernels compute it. The weights are read only by the layout files, in their
 * compressed form. */
#include <string.h>

#include "tinyopt_cmat.h"

void tinyopt_cmat_store(const tinyopt_cmat_params *p, int o, const int32_t *acc, int n, int8_t *out,
                        int ostride)
{
    const int c = p->per_channel ? o : 0;
    const int32_t m = p->multiplier[c], off = p->output_offset;
    const int32_t lo = p->output_activation_min, hi = p->output_activation_max;
    const int s = p->shift[c];
    int i;
    out += o;
    if (p->small_acc) { /* |acc| < 2^30 and s <= -1: one SMMULR and a rounding shift (tinyopt_mbqm_small) */
        const int32_t round = 1 << (-s - 1);
        for (i = 0; i < n; ++i, out += ostride) {
            const int32_t y = tinyopt_mbqm_small_noshift(acc[i], m);
            *out = tinyopt_clamp8(((y + round + (y >> 31)) >> -s) + off, lo, hi);
        }
        return;
    }
    for (i = 0; i < n; ++i, out += ostride) {
        *out = tinyopt_clamp8(tinyopt_mbqm(acc[i], m, s) + off, lo, hi);
    }
}

#if defined(TINYOPT_CMAT_DSP)
/* The 16-bit lanes of n vectors (see tinyopt_cmat.h), zero-padded to whole 16-value blocks. */
static void widen(const tinyopt_cmat_params *p, const int8_t *x, int xstride, int n, uint32_t *lanes)
{
    const int K = p->depth, groups = (K + 15) / 16 * 2, tile = p->tile;
    int i, g;
    for (i = 0; i < n; ++i, x += xstride) {
        uint32_t *l = lanes + 4 * i;
        for (g = 0; g < groups; ++g, l += 4 * tile) {
            uint32_t v[2] = {0, 0};
            const int left = K - 8 * g;
            if (left >= 8) {
                memcpy(v, x + 8 * g, 8);
            } else if (left > 0) {
                memcpy(v, x + 8 * g, (size_t)left);
            }
            l[0] = tinyopt_cm_sxtb16(v[0]);
            l[1] = tinyopt_cm_sxtb16_ror8(v[0]);
            l[2] = tinyopt_cm_sxtb16(v[1]);
            l[3] = tinyopt_cm_sxtb16_ror8(v[1]);
        }
    }
}
#endif

/* One im2col patch: the taps of output pixel (oy, ox) in [KH][KW][I] order, the input zero point at
 * padded taps (it contributes exactly 0 once the input offset is folded into the bias); value k goes to
 * dst[k * step + lane] (step 1: a plain patch; TINYOPT_CMAT_TILE: one lane of a transposed pass). */
static void gather(const tinyopt_cmat_params *p, const int8_t *in, int oy, int ox, int8_t *dst, int step, int lane)
{
    const int C = p->in_c;
    const int8_t zp = (int8_t)p->input_zero_point;
    int ky, kx, c;
    dst += lane;
    for (ky = 0; ky < p->filter_h; ++ky) {
        const int iy = oy * p->stride_h - p->padding_h + ky * p->dilation_h;
        for (kx = 0; kx < p->filter_w; ++kx, dst += C * step) {
            const int ix = ox * p->stride_w - p->padding_w + kx * p->dilation_w;
            const int inside = iy >= 0 && iy < p->in_h && ix >= 0 && ix < p->in_w;
            const int8_t *src = inside ? in + (iy * p->in_w + ix) * C : NULL;
            if (step == 1 && C >= 16) {
                if (inside) {
                    memcpy(dst, src, (size_t)C);
                } else {
                    memset(dst, zp, (size_t)C);
                }
            } else if (inside) { /* a few channels, or a transposed pass: bytes, no call */
                for (c = 0; c < C; ++c) {
                    dst[c * step] = src[c];
                }
            } else {
                for (c = 0; c < C; ++c) {
                    dst[c * step] = zp;
                }
            }
        }
    }
}

/* The n vectors transposed: t[k * TILE + i] = vector i's value k (the sparse layout's form for several
 * vectors: one word holds column k of the whole pass). */
static void transpose(const tinyopt_cmat_params *p, const int8_t *x, int xstride, int n, int8_t *t)
{
    int i, k;
    for (i = 0; i < n; ++i, x += xstride) {
        for (k = 0; k < p->depth; ++k) {
            t[k * TINYOPT_CMAT_TILE + i] = x[k];
        }
    }
}

/* The layout's rows on n vectors: as they are (one vector), as 16-bit lanes (a wide layout on the
 * Cortex-M4, form 1) or transposed (several vectors of the sparse layout, form 2). */
static void run(const tinyopt_cmat_params *p, tinyopt_cmat_rows rows, int form, const int8_t *x, int xstride,
                int n, int8_t *out, int ostride, int8_t *room, int8_t *dec)
{
#if defined(TINYOPT_CMAT_DSP)
    if (form == 1) {
        widen(p, x, xstride, n, (uint32_t *)(void *)room);
        rows(p, room, 0, n, out, ostride, dec);
        return;
    }
#endif
    if (form == 2 && n > 1) {
        if (x != room) {
            transpose(p, x, xstride, n, room);
        }
        rows(p, room, TINYOPT_CMAT_TILE, n, out, ostride, dec);
        return;
    }
    rows(p, x, xstride, n, out, ostride, dec);
}

void tinyopt_cmat_conv(const tinyopt_cmat_params *p, tinyopt_cmat_rows rows, int form, const int8_t *in,
                       int8_t *out, int8_t *scratch, int8_t *col, int reverse)
{
    const int O = p->out_c, ow = p->out_w, ka = (p->depth + 3) & ~3, k16 = (p->depth + 15) & ~15;
    const int row_bytes = ow * O, C = p->in_c;
    /* a 1x1 stride-1 unpadded conv reads its input pixels as they are: no patches to gather */
    const int direct = p->filter_h == 1 && p->filter_w == 1 && p->stride_h == 1 && p->stride_w == 1 &&
                       p->padding_h == 0 && p->padding_w == 0 && p->in_w == ow;
    const int patches = !direct || form == 2;
    int8_t *room = col != NULL ? col + (patches && form != 2 ? TINYOPT_CMAT_TILE * ka : 0) : NULL;
    int8_t *dec = room != NULL ? room + (form == 1 ? TINYOPT_CMAT_TILE * k16 * 2 : 0) : NULL;
    int r, ox, i;
    (void)k16;
    for (r = 0; r < p->out_h; ++r) {
        const int oy = reverse ? p->out_h - 1 - r : r;
        int8_t *dst = out + oy * row_bytes;
        int8_t *row = scratch != NULL ? scratch : dst;
        for (ox = 0; ox < ow; ox += TINYOPT_CMAT_TILE) {
            const int n = ow - ox < TINYOPT_CMAT_TILE ? ow - ox : TINYOPT_CMAT_TILE;
            if (direct) {
                run(p, rows, form, in + (oy * p->in_w + ox) * C, C, n, row + ox * O, O, room, dec);
            } else if (form == 2 && n > 1) { /* patches gathered straight into their transposed form */
                for (i = 0; i < n; ++i) {
                    gather(p, in, oy, ox + i, col, TINYOPT_CMAT_TILE, i);
                }
                run(p, rows, form, col, TINYOPT_CMAT_TILE, n, row + ox * O, O, col, dec);
            } else {
                for (i = 0; i < n; ++i) {
                    gather(p, in, oy, ox + i, col + i * ka, 1, 0);
                }
                run(p, rows, form, col, ka, n, row + ox * O, O, room, dec);
            }
        }
        if (scratch != NULL) {
            memcpy(dst, scratch, (size_t)row_bytes);
        }
    }
}

void tinyopt_cmat_fc(const tinyopt_cmat_params *p, tinyopt_cmat_rows rows, int form, const int8_t *in,
                     int8_t *out, int8_t *col)
{
    const int K = p->depth, O = p->out_c, k16 = (K + 15) & ~15;
    int8_t *dec = col != NULL && form == 1 ? col + p->tile * k16 * 2 : col;
    int b;
    for (b = 0; b < p->batches; b += p->tile) {
        const int n = p->batches - b < p->tile ? p->batches - b : p->tile;
        run(p, rows, form, in + b * K, K, n, out + b * O, O, col, dec);
    }
}
