/* DEPTHWISE_CONV_2D with compressed weights (see tinyopt_cmat.h): the filters are stored tap-major,
 * [KH*KW][C*M], row_stride bytes per tap: int8 (bits 8) or signed nibbles (bits 4, channel c in the low
 * half of byte c/2 when c is even). Output channel c reads input channel c / depth_multiplier. Each
 * output pixel gathers its taps' input pointers once (the zero-point row pad_row at padded taps: with the
 * input offset folded into the bias they contribute exactly 0, as in TFLM's reference); channels then go
 * four at a time on the Cortex-M4 (SXTB16 lanes, SMLABB/SMLATT) when the multiplier is 1 and the
 * channels a multiple of 4, one at a time otherwise. */
#include <string.h>

#include "tinyopt_cmat.h"

#define TINYOPT_CDW_MAX_TAPS 64

static inline int32_t tap_weight(const tinyopt_cmat_params *p, const uint8_t *wt, int c)
{
    if (p->bits == 4) {
        return (int32_t)((uint32_t)wt[c >> 1] << (28 - 4 * (c & 1))) >> 28;
    }
    return (int8_t)wt[c];
}

#if defined(TINYOPT_CMAT_DSP)
/* Weights of channels [c, c+4) at one tap as lane pairs (w_c, w_c+2), (w_c+1, w_c+3), times 16 for
 * nibbles (the sums are divided by 16 after the taps). */
static inline void tap_lanes(const tinyopt_cmat_params *p, const uint8_t *wt, int c, uint32_t *even, uint32_t *odd)
{
    if (p->bits == 4) {
        uint16_t h;
        uint32_t u;
        memcpy(&h, wt + (c >> 1), 2);
        u = ((uint32_t)h | ((uint32_t)h << 8)) & 0x00FF00FFu; /* bytes 0 and 2: (n0 n1), (n2 n3) */
        *even = tinyopt_cm_sxtb16((u << 4) & 0x00F000F0u);
        *odd = tinyopt_cm_sxtb16(u & 0x00F000F0u);
    } else {
        uint32_t v;
        memcpy(&v, wt + c, 4);
        *even = tinyopt_cm_sxtb16(v);
        *odd = tinyopt_cm_sxtb16_ror8(v);
    }
}
#endif

void tinyopt_cdw(const tinyopt_cmat_params *p, const int8_t *in, int8_t *out, int8_t *scratch, int reverse,
                 const int8_t *other)
{
    const int C = p->in_c, O = p->out_c, M = p->depth_multiplier, K = p->depth, row_bytes = p->out_w * O;
    const uint8_t *weights = (const uint8_t *)p->weights;
    const int8_t *taps[TINYOPT_CDW_MAX_TAPS];
    int32_t acc[4];
    int r, ox, c, k, ky, kx;
    (void)other;
    for (r = 0; r < p->out_h; ++r) {
        const int oy = reverse ? p->out_h - 1 - r : r;
        int8_t *dst = out + oy * row_bytes;
        int8_t *row = scratch != NULL ? scratch : dst;
        for (ox = 0; ox < p->out_w; ++ox) {
            int8_t *y = row + ox * O;
            for (ky = 0, k = 0; ky < p->filter_h; ++ky) {
                const int iy = oy * p->stride_h - p->padding_h + ky * p->dilation_h;
                for (kx = 0; kx < p->filter_w; ++kx, ++k) {
                    const int ix = ox * p->stride_w - p->padding_w + kx * p->dilation_w;
                    const int inside = iy >= 0 && iy < p->in_h && ix >= 0 && ix < p->in_w;
                    taps[k] = inside ? in + (iy * p->in_w + ix) * C : p->pad_row;
                }
            }
            c = 0;
#if defined(TINYOPT_CMAT_DSP)
            if (M == 1 && O % 4 == 0) {
                const int scale = p->bits == 4 ? 4 : 0;
                for (; c < O; c += 4) {
                    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
                    const uint8_t *wt = weights;
                    for (k = 0; k < K; ++k, wt += p->row_stride) {
                        uint32_t xv, we, wo, xe, xo;
                        memcpy(&xv, taps[k] + c, 4);
                        tap_lanes(p, wt, c, &we, &wo);
                        xe = tinyopt_cm_sxtb16(xv);
                        xo = tinyopt_cm_sxtb16_ror8(xv);
                        a0 = tinyopt_cm_smlabb(xe, (int32_t)we, a0);
                        a2 = tinyopt_cm_smlatt(xe, we, a2);
                        a1 = tinyopt_cm_smlabb(xo, (int32_t)wo, a1);
                        a3 = tinyopt_cm_smlatt(xo, wo, a3);
                    }
                    acc[0] = (a0 >> scale) + p->bias[c];
                    acc[1] = (a1 >> scale) + p->bias[c + 1];
                    acc[2] = (a2 >> scale) + p->bias[c + 2];
                    acc[3] = (a3 >> scale) + p->bias[c + 3];
                    for (k = 0; k < 4; ++k) {
                        tinyopt_cmat_store(p, c + k, acc + k, 1, y, 0);
                    }
                }
            }
#endif
            for (; c < O; ++c) {
                const uint8_t *wt = weights;
                acc[0] = p->bias[c];
                for (k = 0; k < K; ++k, wt += p->row_stride) {
                    acc[0] += tap_weight(p, wt, c) * (int32_t)taps[k][c / M];
                }
                tinyopt_cmat_store(p, c, acc, 1, y, 0);
            }
        }
        if (scratch != NULL) {
            memcpy(dst, scratch, (size_t)row_bytes);
        }
    }
}
