/* FULLY_CONNECTED, int8: TFLM's reference integer dense layer (weights zero point 0), with the input
 * offset folded into the bias. Per-channel multipliers cover both per-tensor and per-channel models. */
/* On a host without the Arm DSP path the int8 dot products are plain loops: let GCC vectorize them even
 * when the library is built with -O2 (its -O2 cost model leaves such loops scalar). */
#if defined(__GNUC__) && !defined(__clang__) && !(defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP)
#pragma GCC optimize("O3")
#endif
#include "tinyopt_fixedpoint.h"
#include "tinyopt_kernels.h"
#include "tinyopt_simd.h"

void tinyopt_fully_connected(const tinyopt_fc_params *p, const int8_t *in, int8_t *out)
{
    int b, oc;
#if defined(TINYOPT_HAVE_MM2X2_ASM)
    if (p->rq != NULL) { /* every filter pair and its requantization in one asm routine */
        for (b = 0; b < p->batches; ++b) {
            tinyopt_fcq_asm(in + b * p->accum_depth, p->wpairs, p->accum_depth / 4, p->rq, out + b * p->out_c,
                            p->out_c / 2);
        }
        return;
    }
#endif
    for (b = 0; b < p->batches; ++b) {
        const int8_t *x = in + b * p->accum_depth;
        for (oc = 0; oc < p->out_c; ++oc) {
            int32_t acc = tinyopt_dot_s8(x, p->weights + oc * p->accum_depth, p->accum_depth, p->bias[oc]);
            acc = (p->small_acc ? tinyopt_mbqm_small(acc, p->multiplier[oc], p->shift[oc])
                                : tinyopt_mbqm(acc, p->multiplier[oc], p->shift[oc])) + p->output_offset;
            out[b * p->out_c + oc] = tinyopt_clamp8(acc, p->output_activation_min, p->output_activation_max);
        }
    }
}
