/* TRANSPOSE_CONV, int8: TFLM's per-channel TransposeConv. The reference scatters every input pixel into an
 * int32 buffer the size of the output; this kernel gathers instead, one output value at a time, from the
 * input pixels whose scatter reaches it: input row iy reaches output row oy through kernel row ky when
 * oy + padding_h = iy * stride_h + ky. The same products are summed (integer addition does not care about
 * order), so the results are identical and no scratch buffer is needed. Kernel rows and columns that
 * are all zero (the padding the framework doors add to reproduce a framework's crop) are skipped. */
#include "tinyopt_fixedpoint.h"
#include "tinyopt_transpose_conv.h"

void tinyopt_transpose_conv(const tinyopt_transpose_conv_params *p, const int8_t *const *in,
                            int8_t *const *out)
{
    const int8_t *x = in[0];
    int8_t *y = out[0];
    int oy, ox, oc, ky, kx, ic;
    for (oy = 0; oy < p->out_h; ++oy) {
        for (ox = 0; ox < p->out_w; ++ox) {
            for (oc = 0; oc < p->out_c; ++oc) {
                int32_t acc = 0;
                for (ky = p->tap_y0; ky < p->tap_y1; ++ky) {
                    const int ty = oy + p->padding_h - ky;
                    const int iy = ty / p->stride_h;
                    if (ty < 0 || ty % p->stride_h != 0 || iy >= p->in_h) {
                        continue;
                    }
                    for (kx = p->tap_x0; kx < p->tap_x1; ++kx) {
                        const int tx = ox + p->padding_w - kx;
                        const int ix = tx / p->stride_w;
                        const int8_t *xp, *wp;
                        if (tx < 0 || tx % p->stride_w != 0 || ix >= p->in_w) {
                            continue;
                        }
                        xp = x + (iy * p->in_w + ix) * p->in_c;
                        wp = p->weights + ((oc * p->filter_h + ky) * p->filter_w + kx) * p->in_c;
                        for (ic = 0; ic < p->in_c; ++ic) {
                            acc += (xp[ic] + p->input_offset) * wp[ic];
                        }
                    }
                }
                acc = tinyopt_mbqm(acc + p->bias[oc], p->multiplier[oc], p->shift[oc]) + p->output_offset;
                *y++ = tinyopt_clamp8(acc, p->output_activation_min, p->output_activation_max);
            }
        }
    }
}
