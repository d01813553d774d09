/* RESIZE_BILINEAR, int8: TFLM's ResizeBilinearInteger, which needs no float. A source coordinate is an
 * integer in 1/1024 of a pixel; its neighbours come from C's truncating division (as in the reference);
 * the four weighted pixels carry 20 fraction bits and are rounded half away from zero.
 *
 * 32 bits suffice for the sum: each axis's two weights have |w| <= 1536 and |w0| + |w1| <= 2048 (a weight
 * exceeds 1024 only at the first half-pixel row, where both neighbours are row 0), so
 * |sum| <= 128 * 2048 * 2048 = 2^29. */
#include "tinyopt_resize_bilinear.h"

/* The source coordinate of output index v and its two neighbours, clamped to the input. */
static void tinyopt_bilinear_coord(int32_t v, int32_t scale_10, int half_pixel, int32_t size, int32_t *scaled,
                                   int32_t *lo, int32_t *hi)
{
    *scaled = half_pixel ? v * scale_10 + scale_10 / 2 - (1 << 9) : v * scale_10;
    *lo = *scaled / (1 << 10) > 0 ? *scaled / (1 << 10) : 0;
    *hi = (*scaled + (1 << 10) - 1) / (1 << 10) < size - 1 ? (*scaled + (1 << 10) - 1) / (1 << 10) : size - 1;
}

void tinyopt_resize_bilinear(const tinyopt_resize_bilinear_params *p, const int8_t *in, int8_t *out)
{
    const int c = p->channels;
    const int row = p->in_w * c;
    int oy, ox, ch;
    for (oy = 0; oy < p->out_h; ++oy) {
        int32_t sy, y0, y1, wy1, wy0;
        tinyopt_bilinear_coord(oy, p->height_scale_10, p->half_pixel_centers, p->in_h, &sy, &y0, &y1);
        wy1 = sy - (1 << 10) * y0;
        wy0 = (1 << 10) - wy1;
        for (ox = 0; ox < p->out_w; ++ox) {
            int32_t sx, x0, x1, wx1, wx0, w00, w10, w01, w11;
            const int8_t *a, *b, *d, *e;
            tinyopt_bilinear_coord(ox, p->width_scale_10, p->half_pixel_centers, p->in_w, &sx, &x0, &x1);
            wx1 = sx - (1 << 10) * x0;
            wx0 = (1 << 10) - wx1;
            w00 = wy0 * wx0;
            w10 = wy1 * wx0;
            w01 = wy0 * wx1;
            w11 = wy1 * wx1;
            a = in + y0 * row + x0 * c;
            b = in + y1 * row + x0 * c;
            d = in + y0 * row + x1 * c;
            e = in + y1 * row + x1 * c;
            for (ch = 0; ch < c; ++ch) {
                const int32_t sum = a[ch] * w00 + b[ch] * w10 + d[ch] * w01 + e[ch] * w11;
                *out++ = (int8_t)((sum + (sum > 0 ? (1 << 19) : -(1 << 19))) / (1 << 20));
            }
        }
    }
}
