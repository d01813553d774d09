/* BATCH_MATMUL, int8: TFLM's BatchMatMul (FullyConnected's arithmetic on every pair of matrices): the sum
 * of (lhs - lhs_zp) * (rhs - rhs_zp), one per-tensor requantization, no fused activation. */
#include "tinyopt_batch_matmul.h"
#include "tinyopt_fixedpoint.h"

void tinyopt_batch_matmul(const tinyopt_batch_matmul_params *p, const int8_t *const *in, int8_t *const *out)
{
    const int8_t *lhs = p->lhs_data ? p->lhs_data : in[0];
    const int8_t *rhs = p->rhs_data ? p->rhs_data : in[p->lhs_data ? 0 : 1];
    const int lsize = p->rows * p->depth, rsize = p->depth * p->cols;
    int8_t *y = out[0];
    int b0, b1, b2, i, j, k;
    for (b0 = 0; b0 < p->out_b0; ++b0) {
        for (b1 = 0; b1 < p->out_b1; ++b1) {
            for (b2 = 0; b2 < p->out_b2; ++b2) {
                const int8_t *l = lhs + (((p->lhs_b0 > 1 ? b0 : 0) * p->lhs_b1 + (p->lhs_b1 > 1 ? b1 : 0)) *
                                         p->lhs_b2 + (p->lhs_b2 > 1 ? b2 : 0)) * lsize;
                const int8_t *r = rhs + (((p->rhs_b0 > 1 ? b0 : 0) * p->rhs_b1 + (p->rhs_b1 > 1 ? b1 : 0)) *
                                         p->rhs_b2 + (p->rhs_b2 > 1 ? b2 : 0)) * rsize;
                for (i = 0; i < p->rows; ++i) {
                    for (j = 0; j < p->cols; ++j) {
                        int32_t acc = 0;
                        for (k = 0; k < p->depth; ++k) {
                            const int32_t a = p->adj_x ? l[k * p->rows + i] : l[i * p->depth + k];
                            const int32_t b = p->adj_y ? r[j * p->depth + k] : r[k * p->cols + j];
                            acc += (a + p->lhs_offset) * (b + p->rhs_offset);
                        }
                        acc = tinyopt_mbqm(acc, p->output_multiplier, p->output_shift) + p->output_offset;
                        *y++ = tinyopt_clamp8(acc, -128, 127);
                    }
                }
            }
        }
    }
}
