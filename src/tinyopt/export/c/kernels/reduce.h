/* MEAN, SUM and REDUCE_MAX over any axes, int8 (reduce.c). */
#ifndef TINYOPT_REDUCE_H
#define TINYOPT_REDUCE_H

#include <stdint.h>

/* The input is walked as groups of kept and of reduced axes (size, stride in elements; unit axes
 * dropped, neighbours merged): output element o is the reduction of the `count` input elements at
 * kept offset(o) + reduced offset(r). */
typedef struct {
    int op;                     /* 0: int32 sum, then requantize (MEAN, SUM); 1: maximum (REDUCE_MAX) */
    int32_t outer, count;       /* output elements; input elements reduced into each */
    int kept_rank, reduce_rank; /* used entries of the arrays below (at most 4 each) */
    const int32_t *kept_dims, *kept_strides, *reduce_dims, *reduce_strides;
    int32_t input_zero_point, output_zero_point, multiplier;
    int shift;
} tinyopt_reduce_params;

void tinyopt_reduce(const tinyopt_reduce_params *p, const int8_t *in, int8_t *out);
void tinyopt_reduce_sums(const tinyopt_reduce_params *p, const int32_t *sums, int8_t *out);

#endif
