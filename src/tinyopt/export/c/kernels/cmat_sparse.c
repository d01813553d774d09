/* Compressed-weight layers, layout sparse: pruned filters as index-coded rows. Filter o stores counts[o]
 * entries; entry e moves the column by deltas[e] (the first from column 0; a gap over 255 is bridged by a
 * zero-valued filler entry) and holds one value: `bits` 8, an int8 value or, with a table, an index
 * into the layer's (or the channel's) codebook; `bits` 4, a nibble (entry 2j in the low half of byte j),
 * a signed 4-bit value or a codebook index. Only the stored entries are multiplied: per entry of a dense
 * layer's single input vector one step load, one input load, the value and one MLA; several vectors (a
 * conv's patches) come transposed, one word per column, and take two SXTB16 and four 16-bit MACs. */
#include <stddef.h>
#include <string.h>

#include "tinyopt_cmat.h"

/* The value of a nibble: signed (lo/hi half of byte b), or looked up in tab. */
#define TINYOPT_SP_N4_LO(b, tab) ((int32_t)((uint32_t)(b) << 28) >> 28)
#define TINYOPT_SP_N4_HI(b, tab) ((int32_t)((uint32_t)(b) << 24) >> 28)
#define TINYOPT_SP_C4_LO(b, tab) ((int32_t)(tab)[(b) & 15u])
#define TINYOPT_SP_C4_HI(b, tab) ((int32_t)(tab)[(b) >> 4])
#define TINYOPT_SP_I8(b, tab) ((int32_t)(int8_t)(b))
#define TINYOPT_SP_C8(b, tab) ((int32_t)(tab)[(b)])

/* One value w times column xc of a transposed pass (four vectors, one word): on the Cortex-M4 SXTB16 splits
 * the word into lanes (x0, x2) and (x1, x3) that SMLABB/SMLATB multiply by w; vectors past n are unused. */
#if defined(TINYOPT_CMAT_DSP)
#define TINYOPT_SP_MAC4(xc, value) \
    do { \
        uint32_t xv_; \
        const int32_t w_ = (value); \
        memcpy(&xv_, (xc), 4); \
        a0 = tinyopt_cm_smlabb(tinyopt_cm_sxtb16(xv_), w_, a0); \
        a2 = tinyopt_cm_smlatb(tinyopt_cm_sxtb16(xv_), w_, a2); \
        a1 = tinyopt_cm_smlabb(tinyopt_cm_sxtb16_ror8(xv_), w_, a1); \
        a3 = tinyopt_cm_smlatb(tinyopt_cm_sxtb16_ror8(xv_), w_, a3); \
    } while (0)
#else
#define TINYOPT_SP_MAC4(xc, value) \
    do { \
        const int32_t w_ = (value); \
        a0 += w_ * (int32_t)(xc)[0]; \
        a1 += w_ * (int32_t)(xc)[1]; \
        a2 += w_ * (int32_t)(xc)[2]; \
        a3 += w_ * (int32_t)(xc)[3]; \
    } while (0)
#endif

/* Rows with one byte per value (int8, or an 8-bit codebook index). */
#define TINYOPT_SP_BYTES(name, VALUE) \
    static void name(const tinyopt_cmat_params *p, const int8_t *x, int xstride, int n, int8_t *out, \
                     int ostride, const int8_t *table) \
    { \
        const uint8_t *d = p->deltas, *v = (const uint8_t *)p->weights; \
        int32_t acc[TINYOPT_CMAT_TILE]; \
        int o; \
        for (o = 0; o < p->out_c; ++o) { \
            const int8_t *tab = table + o * p->table_stride; \
            const uint8_t *end = d + p->counts[o]; \
            const int8_t *xc = x; \
            (void)tab, (void)xstride; \
            if (n == 1) { \
                int32_t a = p->bias[o]; \
                for (; d < end; ++d, ++v) { \
                    xc += *d; \
                    a += VALUE(*v, tab) * (int32_t)*xc; \
                } \
                acc[0] = a; \
            } else { \
                int32_t a0 = p->bias[o], a1 = a0, a2 = a0, a3 = a0; \
                for (; d < end; ++d, ++v) { \
                    xc += 4 * *d; \
                    TINYOPT_SP_MAC4(xc, VALUE(*v, tab)); \
                } \
                acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3; \
            } \
            tinyopt_cmat_store(p, o, acc, n, out, ostride); \
        } \
    }

/* Rows with one nibble per value: entries in pairs, one byte per pair, a row may start mid-byte. */
#define TINYOPT_SP_NIBBLES(name, LO, HI) \
    static void name(const tinyopt_cmat_params *p, const int8_t *x, int xstride, int n, int8_t *out, \
                     int ostride, const int8_t *table) \
    { \
        const uint8_t *d = p->deltas, *v = (const uint8_t *)p->weights; \
        int32_t acc[TINYOPT_CMAT_TILE]; \
        int32_t e = 0; \
        int o; \
        for (o = 0; o < p->out_c; ++o) { \
            const int8_t *tab = table + o * p->table_stride; \
            const int32_t end = e + p->counts[o]; \
            const int8_t *xc = x; \
            (void)tab, (void)xstride; \
            if (n == 1) { \
                int32_t a = p->bias[o]; \
                if ((e & 1) && e < end) { \
                    xc += d[e]; \
                    a += HI(v[e >> 1], tab) * (int32_t)*xc; \
                    ++e; \
                } \
                for (; e + 2 <= end; e += 2) { \
                    const uint32_t b = v[e >> 1]; \
                    xc += d[e]; \
                    a += LO(b, tab) * (int32_t)*xc; \
                    xc += d[e + 1]; \
                    a += HI(b, tab) * (int32_t)*xc; \
                } \
                if (e < end) { \
                    xc += d[e]; \
                    a += LO(v[e >> 1], tab) * (int32_t)*xc; \
                    ++e; \
                } \
                acc[0] = a; \
            } else { \
                int32_t a0 = p->bias[o], a1 = a0, a2 = a0, a3 = a0; \
                for (; e < end; ++e) { \
                    const uint32_t b = v[e >> 1]; \
                    xc += 4 * d[e]; \
                    TINYOPT_SP_MAC4(xc, (e & 1) ? HI(b, tab) : LO(b, tab)); \
                } \
                acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3; \
            } \
            tinyopt_cmat_store(p, o, acc, n, out, ostride); \
        } \
    }

TINYOPT_SP_BYTES(rows_i8, TINYOPT_SP_I8)
TINYOPT_SP_BYTES(rows_c8, TINYOPT_SP_C8)
TINYOPT_SP_NIBBLES(rows_n4, TINYOPT_SP_N4_LO, TINYOPT_SP_N4_HI)
TINYOPT_SP_NIBBLES(rows_c4, TINYOPT_SP_C4_LO, TINYOPT_SP_C4_HI)

static void rows_sparse(const tinyopt_cmat_params *p, const int8_t *x, int xstride, int n, int8_t *out,
                        int ostride, int8_t *dec)
{
    static const int8_t none[1] = {0}; /* no codebook: a table pointer that is never read */
    const int8_t *tab = p->table != NULL ? p->table : none;
    (void)dec;
    if (p->bits == 4) {
        (p->table != NULL ? rows_c4 : rows_n4)(p, x, xstride, n, out, ostride, tab);
    } else {
        (p->table != NULL ? rows_c8 : rows_i8)(p, x, xstride, n, out, ostride, tab);
    }
}

void tinyopt_cconv_sparse(const tinyopt_cmat_params *p, const int8_t *in, int8_t *out, int8_t *scratch,
                          int8_t *col, int reverse, const int8_t *other)
{
    (void)other;
    tinyopt_cmat_conv(p, rows_sparse, 2, in, out, scratch, col, reverse);
}

void tinyopt_cfc_sparse(const tinyopt_cmat_params *p, const int8_t *in, int8_t *out, int8_t *scratch,
                        int8_t *col, int reverse, const int8_t *other)
{
    (void)scratch, (void)reverse, (void)other;
    tinyopt_cmat_fc(p, rows_sparse, 2, in, out, col);
}
