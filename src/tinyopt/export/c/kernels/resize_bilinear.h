/* RESIZE_BILINEAR: every output pixel interpolates its four nearest input pixels. */
#ifndef TINYOPT_RESIZE_BILINEAR_H
#define TINYOPT_RESIZE_BILINEAR_H

#include <stdint.h>

typedef struct {
    int in_h, in_w, channels, out_h, out_w;
    int32_t height_scale_10, width_scale_10; /* source step per output pixel, in 1/1024 pixel */
    int half_pixel_centers;
} tinyopt_resize_bilinear_params;

void tinyopt_resize_bilinear(const tinyopt_resize_bilinear_params *p, const int8_t *in, int8_t *out);

#endif
