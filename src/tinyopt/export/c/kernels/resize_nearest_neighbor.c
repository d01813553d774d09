/* RESIZE_NEAREST_NEIGHBOR, int8: TFLM's ResizeNearestNeighbor. Which source pixel each output pixel copies
 * depends on the sizes and the align_corners / half_pixel_centers flags only; the generator computes those
 * tables with TFLM's float arithmetic, so the kernel itself only copies. */
#include <string.h>

#include "tinyopt_resize_nearest_neighbor.h"

void tinyopt_resize_nearest_neighbor(const tinyopt_resize_nearest_neighbor_params *p, const int8_t *in,
                                     int8_t *out)
{
    int oy, ox;
    const int c = p->channels;
    for (oy = 0; oy < p->out_h; ++oy) {
        const int8_t *row = in + (size_t)p->in_y[oy] * p->in_w * c;
        for (ox = 0; ox < p->out_w; ++ox) {
            memcpy(out, row + (size_t)p->in_x[ox] * c, (size_t)c);
            out += c;
        }
    }
}
