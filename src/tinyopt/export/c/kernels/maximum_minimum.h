/* MAXIMUM and MINIMUM with broadcasting, int8 (maximum_minimum.c). */
#ifndef TINYOPT_MAXIMUM_MINIMUM_H
#define TINYOPT_MAXIMUM_MINIMUM_H

#include <stdint.h>

/* The output walked as 4 dimensions dims[0..3] (row-major); strides1/strides2 say where each input's
 * element is (0 along an axis it is broadcast over). A constant operand is input1/input2 (else NULL:
 * the operand is the next of the node's data inputs). */
typedef struct {
    int is_max;
    const int32_t *dims, *strides1, *strides2;
    const int8_t *input1, *input2;
} tinyopt_maximum_minimum_params;

void tinyopt_maximum_minimum(const tinyopt_maximum_minimum_params *p, const int8_t *const *in,
                             int8_t *const *out);

#endif
