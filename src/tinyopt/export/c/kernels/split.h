/* SPLIT, SPLIT_V and UNPACK: per outer index, each output's run of bytes in turn. */
#ifndef TINYOPT_SPLIT_H
#define TINYOPT_SPLIT_H

#include <stdint.h>

typedef struct {
    int outer, parts;           /* outer: product of the axes before the split axis */
    const int32_t *run;         /* [parts] bytes of each output per outer index */
} tinyopt_split_params;

void tinyopt_split(const tinyopt_split_params *p, const int8_t *const *in, int8_t *const *out);

#endif
