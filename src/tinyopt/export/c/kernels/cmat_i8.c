/* Compressed-weight layers, layout i8: plain int8 filters [O][K], each row zero-padded to whole 16-value blocks.
 * The layout of a layer that compresses no further, so that a compressed library needs no other conv
 * or dense kernel; its dot product also serves the codebook layout's decoded filters. */
#include <stddef.h>

#include "tinyopt_cmat.h"

void tinyopt_cmat_dot(const tinyopt_cmat_params *p, const int8_t *w, int o, const int8_t *x, int xstride,
                      int n, int32_t *acc)
{
    const int K = p->depth;
    int i, k;
#if defined(TINYOPT_CMAT_DSP)
    /* x: the pass's lanes; w: K weights, word-aligned, zero-padded to whole 16-value blocks */
    const uint32_t *lanes = (const uint32_t *)(const void *)x;
    const uint32_t *wv = (const uint32_t *)(const void *)w;
    const int groups = (K + 15) / 16 * 2, tile = p->tile;
    int g;
    (void)xstride;
    (void)k;
    if (n == 4) {
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        for (g = 0; g < groups; ++g, wv += 2, lanes += 16) {
            const uint32_t l0 = tinyopt_cm_sxtb16(wv[0]), l1 = tinyopt_cm_sxtb16_ror8(wv[0]);
            const uint32_t l2 = tinyopt_cm_sxtb16(wv[1]), l3 = tinyopt_cm_sxtb16_ror8(wv[1]);
            a0 = tinyopt_cm_group(l0, l1, l2, l3, lanes, a0);
            a1 = tinyopt_cm_group(l0, l1, l2, l3, lanes + 4, a1);
            a2 = tinyopt_cm_group(l0, l1, l2, l3, lanes + 8, a2);
            a3 = tinyopt_cm_group(l0, l1, l2, l3, lanes + 12, a3);
        }
        acc[0] = a0 + p->bias[o];
        acc[1] = a1 + p->bias[o];
        acc[2] = a2 + p->bias[o];
        acc[3] = a3 + p->bias[o];
        return;
    }
    for (i = 0; i < n; ++i) {
        const uint32_t *xl = lanes + 4 * i;
        int32_t a = p->bias[o];
        for (g = 0; g < groups; ++g, xl += 4 * tile) {
            a = tinyopt_cm_group(tinyopt_cm_sxtb16(wv[2 * g]), tinyopt_cm_sxtb16_ror8(wv[2 * g]),
                                 tinyopt_cm_sxtb16(wv[2 * g + 1]), tinyopt_cm_sxtb16_ror8(wv[2 * g + 1]), xl, a);
        }
        acc[i] = a;
    }
#else
    for (i = 0; i < n; ++i, x += xstride) {
        int32_t a = p->bias[o];
        for (k = 0; k < K; ++k) {
            a += (int32_t)w[k] * (int32_t)x[k];
        }
        acc[i] = a;
    }
#endif
}


static void rows_i8(const tinyopt_cmat_params *p, const int8_t *x, int xstride, int n, int8_t *out,
                    int ostride, int8_t *dec)
{
    const int8_t *w = (const int8_t *)p->weights;
    int32_t acc[TINYOPT_CMAT_TILE];
    int o;
    (void)dec;
    for (o = 0; o < p->out_c; ++o, w += p->row_stride) {
        tinyopt_cmat_dot(p, w, o, x, xstride, n, acc);
        tinyopt_cmat_store(p, o, acc, n, out, ostride);
    }
}

void tinyopt_cconv_i8(const tinyopt_cmat_params *p, const int8_t *in, int8_t *out, int8_t *scratch, int8_t *col,
                      int reverse, const int8_t *other)
{
    (void)other;
    tinyopt_cmat_conv(p, rows_i8, 1, in, out, scratch, col, reverse);
}

void tinyopt_cfc_i8(const tinyopt_cmat_params *p, const int8_t *in, int8_t *out, int8_t *scratch, int8_t *col,
                    int reverse, const int8_t *other)
{
    (void)scratch, (void)reverse, (void)other;
    tinyopt_cmat_fc(p, rows_i8, 1, in, out, col);
}
