/* GATHER with constant indices: slices of the input along one axis, picked by an index list. */
#ifndef TINYOPT_GATHER_H
#define TINYOPT_GATHER_H

#include <stdint.h>

typedef struct {
    int batches, outer, axis_size, coords, inner;  /* TFLM's loop extents */
    const int32_t *index;       /* [batches][coords] positions along the axis */
} tinyopt_gather_params;

void tinyopt_gather(const tinyopt_gather_params *p, const int8_t *in, int8_t *out);

#endif
