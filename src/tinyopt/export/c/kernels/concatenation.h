/* CONCATENATION and PACK: per outer index, each input's run of bytes in turn. */
#ifndef TINYOPT_CONCATENATION_H
#define TINYOPT_CONCATENATION_H

#include <stdint.h>

typedef struct {
    int outer, parts;           /* outer: product of the axes before the joined axis */
    const int32_t *run;         /* [parts] bytes of each input per outer index */
} tinyopt_concatenation_params;

void tinyopt_concatenation(const tinyopt_concatenation_params *p, const int8_t *const *in, int8_t *const *out);

#endif
