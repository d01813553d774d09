/* FULLY_CONNECTED, int8: the entries of layers packed for the Cortex-M4 loops (twin words; their
 * parameter block is tinyopt_fc_params in kernels.h): groups of 6 filters then pairs (fully_connected_fc6.c),
 * or pairs alone (smaller layers). col: the widened input vector (8 bytes per 4 inputs + 4, word aligned),
 * or NULL: the loops then read the int8 input directly (a few % more instructions, no buffer). Other
 * builds run the portable loop. scratch, reverse and other are unused (the rows_col call). */
#ifndef TINYOPT_FULLY_CONNECTED_H
#define TINYOPT_FULLY_CONNECTED_H

#include <stdint.h>

#include "tinyopt_kernels.h"

void tinyopt_fully_connected_fc6(const tinyopt_fc_params *p, const int8_t *in, int8_t *out, int8_t *scratch,
                                 int8_t *col, int reverse, const int8_t *other);
void tinyopt_fully_connected_pairs(const tinyopt_fc_params *p, const int8_t *in, int8_t *out, int8_t *scratch,
                                   int8_t *col, int reverse, const int8_t *other);

#if defined(TINYOPT_HAVE_MM2X2_ASM)
/* Input vector b of the layer widened into col: per block of 4 values its (x0, x2) and (x1, x3) lanes,
 * then a sentinel word; col NULL: the vector itself (int8). */
const void *tinyopt_fc_lanes(const tinyopt_fc_params *p, const int8_t *in, int b, int8_t *col);
/* n filters as twin pairs, one pair at a time: each pair's words, then the pairs' starting accumulators
 * and [m, r, s] per filter. x: the lanes, or with bytes the int8 input vector. */
void tinyopt_fc_pairs(const void *x, int bytes, const int32_t *w, const int32_t *rq, int blocks, int8_t *out,
                      int n);
void tinyopt_fc_widen(const int8_t *x, int blocks, int32_t *lanes);
void tinyopt_fc2q(const int32_t *lanes, const int32_t *w, int blocks, int32_t *acc);
void tinyopt_fc2b(const int8_t *x, const int32_t *w, int blocks, int32_t *acc);
#endif

#endif
