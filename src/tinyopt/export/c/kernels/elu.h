/* ELU, int8: a 256-entry table computed at generation time (see elu.c). */
#ifndef TINYOPT_ELU_H
#define TINYOPT_ELU_H

#include <stdint.h>

typedef struct {
    int size;
    const int8_t *table; /* output for each input byte: table[(uint8_t)x] */
} tinyopt_elu_params;

void tinyopt_elu(const tinyopt_elu_params *p, const int8_t *in, int8_t *out);

#endif
