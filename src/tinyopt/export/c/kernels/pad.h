/* PAD and PADV2: the output filled with the pad value, then the input's rows copied into place. */
#ifndef TINYOPT_PAD_H
#define TINYOPT_PAD_H

#include <stdint.h>

typedef struct {
    int32_t value;              /* the padded value: the output zero point (PAD) or the given one (PADV2) */
    int32_t out_size;           /* output bytes */
    int32_t start;              /* output offset of input element 0 (the pads before, every axis) */
    const int32_t *count;       /* [5] input extents, outermost first (1 for missing axes) */
    const int32_t *step;        /* [5] output offset step of each input axis (the last is 1) */
} tinyopt_pad_params;

void tinyopt_pad(const tinyopt_pad_params *p, const int8_t *in, int8_t *out);

#endif
