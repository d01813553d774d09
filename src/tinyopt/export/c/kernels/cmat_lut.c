/* Compressed-weight layers, layout lut: each weight is a `bits`-wide index (1 to 8 bits) into a table of
 * int8 values (k-means weight sharing: one table per layer, or one per output channel), packed lowest
 * bits first, each filter row starting on a byte. A filter is decoded once per pass into the decoding
 * room (zero-padded to whole 16-value blocks) and multiplied with every input vector of the pass. */
#include <string.h>

#include "tinyopt_cmat.h"

static void decode(const tinyopt_cmat_params *p, const uint8_t *src, const int8_t *table, int8_t *dst)
{
    const int bits = p->bits, K = p->depth;
    const uint32_t mask = (1u << bits) - 1u;
    uint32_t buf = 0;
    int have = 0, k = 0;
    if (bits == 4) { /* two indices per byte, the first in the low half */
        for (; k + 2 <= K; k += 2, ++src) {
            dst[k] = table[*src & 15u];
            dst[k + 1] = table[*src >> 4];
        }
    } else if (bits == 8) {
        for (; k < K; ++k) {
            dst[k] = table[src[k]];
        }
    }
    for (; k < K; ++k) {
        if (have < bits) {
            buf |= (uint32_t)*src++ << have;
            have += 8;
        }
        dst[k] = table[buf & mask];
        buf >>= bits;
        have -= bits;
    }
}

static void rows_lut(const tinyopt_cmat_params *p, const int8_t *x, int xstride, int n, int8_t *out,
                     int ostride, int8_t *dec)
{
    const uint8_t *row = (const uint8_t *)p->weights;
    int32_t acc[TINYOPT_CMAT_TILE];
    int o;
    memset(dec + p->depth, 0, (size_t)(((p->depth + 15) & ~15) - p->depth)); /* whole 16-value blocks */
    for (o = 0; o < p->out_c; ++o, row += p->row_stride) {
        decode(p, row, p->table + o * p->table_stride, dec);
        tinyopt_cmat_dot(p, dec, o, x, xstride, n, acc);
        tinyopt_cmat_store(p, o, acc, n, out, ostride);
    }
}

void tinyopt_cconv_lut(const tinyopt_cmat_params *p, const int8_t *in, int8_t *out, int8_t *scratch, int8_t *col,
                       int reverse, const int8_t *other)
{
    (void)other;
    tinyopt_cmat_conv(p, rows_lut, 1, in, out, scratch, col, reverse);
}

void tinyopt_cfc_lut(const tinyopt_cmat_params *p, const int8_t *in, int8_t *out, int8_t *scratch, int8_t *col,
                     int reverse, const int8_t *other)
{
    (void)scratch, (void)reverse, (void)other;
    tinyopt_cmat_fc(p, rows_lut, 1, in, out, col);
}
