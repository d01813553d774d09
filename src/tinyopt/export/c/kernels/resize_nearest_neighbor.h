/* RESIZE_NEAREST_NEIGHBOR: every output pixel is a copy of one input pixel. */
#ifndef TINYOPT_RESIZE_NEAREST_NEIGHBOR_H
#define TINYOPT_RESIZE_NEAREST_NEIGHBOR_H

#include <stdint.h>

typedef struct {
    int in_w, channels, out_h, out_w;
    const int32_t *in_y;        /* source row of each output row (computed at generation time) */
    const int32_t *in_x;        /* source column of each output column */
} tinyopt_resize_nearest_neighbor_params;

void tinyopt_resize_nearest_neighbor(const tinyopt_resize_nearest_neighbor_params *p, const int8_t *in,
                                     int8_t *out);

#endif
