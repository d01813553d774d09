/* Compressed-weight layers, layout p2: signed 2-bit weights in [-2, 1] (ternary and binary weights fit),
 * sixteen per 32-bit word, each filter row padded with zeros to whole words. Within a word of weights
 * w0..w15, 2-bit field j (lowest first) holds w[4 * (j % 4) + j / 4]: on the Cortex-M4 the four masks
 * (word << 6, << 4, << 2, << 0) & 0xC0C0C0C0 leave 64 * w in the top of each byte and SXTB16 splits
 * them into the lane pairs (w0, w2), (w1, w3), ..., (w13, w15) that SMLAD multiplies with the input
 * lanes (two lane groups per word); the sums are divided by 64 (exactly) at the end. */
#include "tinyopt_cmat.h"

#if !defined(TINYOPT_CMAT_DSP)
static inline int32_t weight(const uint32_t *row, int k)
{
    const int t = k & 15, field = 4 * (t & 3) + (t >> 2);
    const int32_t v = (int32_t)((row[k >> 4] >> (2 * field)) & 3u);
    return (v ^ 2) - 2;
}
#endif

#if defined(TINYOPT_CMAT_DSP)
/* The lane pairs of the first (q = 0) or second (q = 1) 8 weights of word v. */
#define TINYOPT_P2_LANES(v, q, l0, l1, l2, l3) \
    const uint32_t ma_ = ((v) << (6 - 4 * (q))) & 0xC0C0C0C0u, mb_ = ((v) << (4 - 4 * (q))) & 0xC0C0C0C0u; \
    const uint32_t l0 = tinyopt_cm_sxtb16(ma_), l1 = tinyopt_cm_sxtb16_ror8(ma_); \
    const uint32_t l2 = tinyopt_cm_sxtb16(mb_), l3 = tinyopt_cm_sxtb16_ror8(mb_)
#endif

static void rows_p2(const tinyopt_cmat_params *p, const int8_t *x, int xstride, int n, int8_t *out,
                    int ostride, int8_t *dec)
{
    const int words = p->row_stride / 4;
    const uint32_t *row = (const uint32_t *)p->weights;
    int32_t acc[TINYOPT_CMAT_TILE];
    int o, i;
    (void)dec;
    for (o = 0; o < p->out_c; ++o, row += words) {
#if defined(TINYOPT_CMAT_DSP)
        const uint32_t *lanes = (const uint32_t *)(const void *)x;
        int g, q;
        (void)xstride;
        if (n == 4) {
            int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
            for (g = 0; g < 2 * words; ++g, lanes += 16) {
                const uint32_t v = row[g >> 1];
                if (g & 1) {
                    TINYOPT_P2_LANES(v, 1, l0, l1, l2, l3);
                    a0 = tinyopt_cm_group(l0, l1, l2, l3, lanes, a0);
                    a1 = tinyopt_cm_group(l0, l1, l2, l3, lanes + 4, a1);
                    a2 = tinyopt_cm_group(l0, l1, l2, l3, lanes + 8, a2);
                    a3 = tinyopt_cm_group(l0, l1, l2, l3, lanes + 12, a3);
                } else {
                    TINYOPT_P2_LANES(v, 0, l0, l1, l2, l3);
                    a0 = tinyopt_cm_group(l0, l1, l2, l3, lanes, a0);
                    a1 = tinyopt_cm_group(l0, l1, l2, l3, lanes + 4, a1);
                    a2 = tinyopt_cm_group(l0, l1, l2, l3, lanes + 8, a2);
                    a3 = tinyopt_cm_group(l0, l1, l2, l3, lanes + 12, a3);
                }
            }
            acc[0] = (a0 >> 6) + p->bias[o]; /* sums of multiples of 64: exact */
            acc[1] = (a1 >> 6) + p->bias[o];
            acc[2] = (a2 >> 6) + p->bias[o];
            acc[3] = (a3 >> 6) + p->bias[o];
        } else {
            for (i = 0; i < n; ++i) {
                const uint32_t *xl = lanes + 4 * i;
                int32_t a = 0;
                for (g = 0; g < words; ++g) {
                    for (q = 0; q < 2; ++q, xl += 4 * p->tile) {
                        TINYOPT_P2_LANES(row[g], q, l0, l1, l2, l3);
                        a = tinyopt_cm_group(l0, l1, l2, l3, xl, a);
                    }
                }
                acc[i] = (a >> 6) + p->bias[o];
            }
        }
#else
        for (i = 0; i < n; ++i) {
            const int8_t *xi = x + i * xstride;
            int32_t a = p->bias[o];
            int k;
            for (k = 0; k < p->depth; ++k) {
                a += weight(row, k) * (int32_t)xi[k];
            }
            acc[i] = a;
        }
#endif
        tinyopt_cmat_store(p, o, acc, n, out, ostride);
    }
}

void tinyopt_cconv_p2(const tinyopt_cmat_params *p, const int8_t *in, int8_t *out, int8_t *scratch, int8_t *col,
                      int reverse, const int8_t *other)
{
    (void)other;
    tinyopt_cmat_conv(p, rows_p2, 1, in, out, scratch, col, reverse);
}

void tinyopt_cfc_p2(const tinyopt_cmat_params *p, const int8_t *in, int8_t *out, int8_t *scratch, int8_t *col,
                    int reverse, const int8_t *other)
{
    (void)scratch, (void)reverse, (void)other;
    tinyopt_cmat_fc(p, rows_p2, 1, in, out, col);
}
