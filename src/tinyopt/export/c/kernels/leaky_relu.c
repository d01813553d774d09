/* LEAKY_RELU, int8 (TFLM's reference): x - input zero point is requantized by s_in / s_out when it is
 * non-negative and by |s_in * alpha / s_out| below, negated for a negative alpha. Element i is read before
 * it is written, so the output may overlap the input. */
#include "tinyopt_fixedpoint.h"
#include "tinyopt_leaky_relu.h"

void tinyopt_leaky_relu(const tinyopt_leaky_relu_params *p, const int8_t *in, int8_t *out)
{
    int i;
    for (i = 0; i < p->size; ++i) {
        const int32_t v = in[i] - p->input_zero_point;
        int32_t y;
        if (v >= 0) {
            y = tinyopt_mbqm(v, p->output_multiplier_identity, p->output_shift_identity);
        } else {
            y = tinyopt_mbqm(v, p->output_multiplier_alpha, p->output_shift_alpha);
            y = p->alpha_negative ? -y : y;
        }
        out[i] = tinyopt_clamp8(p->output_zero_point + y, -128, 127);
    }
}
