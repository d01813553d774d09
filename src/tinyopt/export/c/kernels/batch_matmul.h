/* BATCH_MATMUL: lhs @ rhs over the last two axes, batch axes broadcast (all extended to rank 5). */
#ifndef TINYOPT_BATCH_MATMUL_H
#define TINYOPT_BATCH_MATMUL_H

#include <stdint.h>

typedef struct {
    int lhs_b0, lhs_b1, lhs_b2, rhs_b0, rhs_b1, rhs_b2, out_b0, out_b1, out_b2; /* batch axes; 1 broadcasts */
    int rows, cols, depth;      /* the output's last two axes and the summed axis */
    int adj_x, adj_y;           /* 1: that operand is stored with its last two axes swapped */
    int32_t lhs_offset, rhs_offset, output_offset, output_multiplier;
    int output_shift;
    const int8_t *lhs_data;     /* a constant operand, or NULL: it comes from the arena */
    const int8_t *rhs_data;
} tinyopt_batch_matmul_params;

/* in: the non-constant operands in order (one or two). */
void tinyopt_batch_matmul(const tinyopt_batch_matmul_params *p, const int8_t *const *in, int8_t *const *out);

#endif
