/* PRELU, int8 (TFLM's reference): x + input_offset is requantized by s_in / s_out when non-negative; below,
 * its product with alpha + alpha_offset is requantized by s_in * s_alpha / s_out. alpha repeats over the
 * input in blocks of alpha_size values (one per channel, or the input's whole trailing shape). Element i is
 * read before it is written, so the output may overlap the input. */
#include "tinyopt_fixedpoint.h"
#include "tinyopt_prelu.h"

void tinyopt_prelu(const tinyopt_prelu_params *p, const int8_t *in, int8_t *out)
{
    int o, k;
    for (o = 0; o < p->outer; ++o) {
        for (k = 0; k < p->alpha_size; ++k) {
            const int32_t v = p->input_offset + in[k];
            const int32_t y = v >= 0 ? tinyopt_mbqm(v, p->output_multiplier_1, p->output_shift_1)
                                     : tinyopt_mbqm(v * (p->alpha_offset + p->alpha[k]), p->output_multiplier_2,
                                                    p->output_shift_2);
            out[k] = tinyopt_clamp8(p->output_offset + y, -128, 127);
        }
        in += p->alpha_size;
        out += p->alpha_size;
    }
}
