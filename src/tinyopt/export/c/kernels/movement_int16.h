/* CONCATENATION and PAD on int16 values (movement_int16.c): TFLM copies int16 values unscaled (every
 * operand has the output's scale, zero point 0); PAD fills with 0 or PADV2's value. */
#ifndef TINYOPT_MOVEMENT_INT16_H
#define TINYOPT_MOVEMENT_INT16_H

#include <stdint.h>

typedef struct {
    int32_t outer, parts;       /* outer: product of the axes before the joined axis */
    const int32_t *run;         /* [parts] elements of each input per outer index */
} tinyopt_concat16_params;

void tinyopt_concatenation_s16(const tinyopt_concat16_params *p, const int16_t *const *in, int16_t *const *out);

typedef struct {
    int32_t value;              /* the padded value */
    int32_t out_size;           /* output elements */
    int32_t start;              /* output offset of input element 0 (the pads before, every axis) */
    const int32_t *count;       /* [5] input extents, outermost first (1 for missing axes) */
    const int32_t *step;        /* [5] output offset step of each input axis (the last is 1) */
} tinyopt_pad16_params;

void tinyopt_pad_s16(const tinyopt_pad16_params *p, const int16_t *in, int16_t *out);

#endif
