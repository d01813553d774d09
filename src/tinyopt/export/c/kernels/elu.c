/* ELU, int8: TFLM builds a 256-entry table in Prepare (float arithmetic, once); the generator builds the
 * same table, so inference is one lookup per element and no float. Element i is read before it is
 * written, so the output may overlap the input. */
#include "tinyopt_elu.h"

void tinyopt_elu(const tinyopt_elu_params *p, const int8_t *in, int8_t *out)
{
    int i;
    for (i = 0; i < p->size; ++i) {
        out[i] = p->table[(uint8_t)in[i]];
    }
}
