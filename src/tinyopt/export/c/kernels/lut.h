/* An int8 element-wise operator as a 256-entry table (lut.c): LOGISTIC, TANH, RELU, RELU6 ... whose int8
 * output depends on the input value alone. The table is computed at generation time by the bit-exact
 * numpy kernel on all 256 inputs, so the library equals it by construction. */
#ifndef TINYOPT_LUT_H
#define TINYOPT_LUT_H

#include <stdint.h>

typedef struct {
    int32_t size;             /* elements */
    const int8_t *table;      /* table[x + 128] = the operator's output for input x */
} tinyopt_lut_params;

/* Safe in place (out == in): element i is written after it is read. */
void tinyopt_lut(const tinyopt_lut_params *p, const int8_t *in, int8_t *out);

#endif
