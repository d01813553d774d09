/* The strided walk behind STRIDED_SLICE, SLICE, TRANSPOSE, DEPTH_TO_SPACE, SPACE_TO_DEPTH and
 * BROADCAST_TO: output element (i0, ..., i4), in order, is input element start + sum(ik * step[k]). */
#ifndef TINYOPT_STRIDED_SLICE_H
#define TINYOPT_STRIDED_SLICE_H

#include <stdint.h>

typedef struct {
    int32_t start;              /* input offset of output element 0 */
    const int32_t *count;       /* [5] output extent of each loop (outermost first) */
    const int32_t *step;        /* [5] input offset step of each loop: may be 0 (repeat) or negative */
} tinyopt_strided_slice_params;

void tinyopt_strided_slice(const tinyopt_strided_slice_params *p, const int8_t *in, int8_t *out);

#endif
