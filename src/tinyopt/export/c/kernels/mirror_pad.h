/* MIRROR_PAD, int8 (mirror_pad.c): each output element copies the input element its position mirrors
 * to, REFLECT (border not repeated) or SYMMETRIC (border repeated), as TFLM's MirrorPad. */
#ifndef TINYOPT_MIRROR_PAD_H
#define TINYOPT_MIRROR_PAD_H

#include <stdint.h>

typedef struct {
    int mode;                 /* 0 REFLECT, 1 SYMMETRIC */
    int32_t size;             /* output elements */
    const int32_t *in_dims;   /* 4 dimensions, leading ones first */
    const int32_t *before;    /* padding before each dimension */
    const int32_t *out_dims;
} tinyopt_mirror_pad_params;

void tinyopt_mirror_pad(const tinyopt_mirror_pad_params *p, const int8_t *in, int8_t *out);

#endif
