/* Compressed-weight layers, layout p4: signed 4-bit weights, eight per 32-bit word, each filter row
 * padded with zeros to whole 16-value blocks. Within a word of weights w0..w7 the nibbles (lowest first)
 * hold w0 w1 w4 w5 w2 w3 w6 w7: on the Cortex-M4, (word << 4) & 0xF0F0F0F0 and word & 0xF0F0F0F0 leave
 * 16 * w in the high half of each byte, and SXTB16 (rotated or not) splits them into the lane pairs
 * (w0, w2), (w1, w3), (w4, w6), (w5, w7) that SMLAD multiplies with the input lanes: per word one load,
 * three ALU operations and four SXTB16 shared by the pass's vectors, then four SMLAD per vector; the sums
 * are divided by 16 (exactly) at the end. Elsewhere the same nibbles are read one by one. */
#include "tinyopt_cmat.h"

#if !defined(TINYOPT_CMAT_DSP)
static const uint8_t nibble_of[8] = {0, 1, 4, 5, 2, 3, 6, 7}; /* weight k % 8 -> its nibble (and back) */

static inline int32_t weight(const uint32_t *row, int k)
{
    const int32_t v = (int32_t)((row[k >> 3] >> (4 * nibble_of[k & 7])) & 15u);
    return (v ^ 8) - 8;
}
#endif

static void rows_p4(const tinyopt_cmat_params *p, const int8_t *x, int xstride, int n, int8_t *out,
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
        int g;
        (void)xstride;
        if (n == 4) {
            int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
            for (g = 0; g < words; ++g, lanes += 16) {
                const uint32_t v = row[g], even = (v << 4) & 0xF0F0F0F0u, odd = v & 0xF0F0F0F0u;
                const uint32_t l0 = tinyopt_cm_sxtb16(even), l1 = tinyopt_cm_sxtb16(odd);
                const uint32_t l2 = tinyopt_cm_sxtb16_ror8(even), l3 = tinyopt_cm_sxtb16_ror8(odd);
                a0 = tinyopt_cm_group(l0, l1, l2, l3, lanes, a0);
                a1 = tinyopt_cm_group(l0, l1, l2, l3, lanes + 4, a1);
                a2 = tinyopt_cm_group(l0, l1, l2, l3, lanes + 8, a2);
                a3 = tinyopt_cm_group(l0, l1, l2, l3, lanes + 12, a3);
            }
            acc[0] = (a0 >> 4) + p->bias[o]; /* sums of multiples of 16: exact */
            acc[1] = (a1 >> 4) + p->bias[o];
            acc[2] = (a2 >> 4) + p->bias[o];
            acc[3] = (a3 >> 4) + p->bias[o];
        } else {
            for (i = 0; i < n; ++i) {
                const uint32_t *xl = lanes + 4 * i;
                int32_t a = 0;
                for (g = 0; g < words; ++g, xl += 4 * p->tile) {
                    const uint32_t v = row[g], even = (v << 4) & 0xF0F0F0F0u, odd = v & 0xF0F0F0F0u;
                    a = tinyopt_cm_group(tinyopt_cm_sxtb16(even), tinyopt_cm_sxtb16(odd),
                                         tinyopt_cm_sxtb16_ror8(even), tinyopt_cm_sxtb16_ror8(odd), xl, a);
                }
                acc[i] = (a >> 4) + p->bias[o];
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

void tinyopt_cconv_p4(const tinyopt_cmat_params *p, const int8_t *in, int8_t *out, int8_t *scratch, int8_t *col,
                      int reverse, const int8_t *other)
{
    (void)other;
    tinyopt_cmat_conv(p, rows_p4, 1, in, out, scratch, col, reverse);
}

void tinyopt_cfc_p4(const tinyopt_cmat_params *p, const int8_t *in, int8_t *out, int8_t *scratch, int8_t *col,
                    int reverse, const int8_t *other)
{
    (void)scratch, (void)reverse, (void)other;
    tinyopt_cmat_fc(p, rows_p4, 1, in, out, col);
}
