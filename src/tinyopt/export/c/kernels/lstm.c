/* UNIDIRECTIONAL_SEQUENCE_LSTM, int8 (see lstm.h). Line by line the numpy kernel of
 * ops/unidirectional_sequence_lstm.py and ops/_lstm.py, which equal TFLM's lstm_eval. */
#include "tinyopt_fixedpoint.h"
#include "tinyopt_lstm.h"

static int16_t sat16(int32_t v)
{
    return (int16_t)(v < -32768 ? -32768 : v > 32767 ? 32767 : v);
}

/* Q3.12 (times 3: the table's 1/24 step in 9 index bits) -> Q0.15: reference_integer_ops::Logistic. */
static int16_t logistic16(int32_t v, const uint16_t *table)
{
    const int32_t a = v < 0 ? -v : v;
    const int32_t uh = a >> 9;
    int32_t res;
    if (uh >= 255) {
        res = 0x7FFF << 10;
    } else {
        const int32_t ua = table[uh], ub = table[uh + 1];
        res = (ua << 9) + (a & 0x1FF) * (ub - ua);
    }
    res = v >= 0 ? res + (1 << 9) : (1 << 25) - res + (1 << 9) - 1;
    return (int16_t)(res >> 10);
}

/* reference_integer_ops::Tanh: 2 sigmoid(2x) - 1 on 8 index bits. */
static int16_t tanh16(int32_t v, const uint16_t *table)
{
    const int32_t a = v < 0 ? -v : v;
    const int32_t uh = a >> 8;
    int32_t res;
    if (uh >= 255) {
        res = 0xFFFF << 8;
    } else {
        const int32_t ua = table[uh], ub = table[uh + 1];
        res = (ua << 8) + (a & 0xFF) * (ub - ua);
    }
    res = v >= 0 ? res - (1 << 23) + (1 << 7) : -res + (1 << 23) + (1 << 7) - 1;
    return (int16_t)(res >> 8);
}

/* MulElementwise of two int16 operands (offsets 0), requantized and clamped. */
static int32_t mul16(int32_t a, int32_t b, int32_t multiplier, int shift, int32_t offset, int32_t lo, int32_t hi)
{
    const int32_t v = tinyopt_mbqm(a * b, multiplier, shift) + offset;
    return v < lo ? lo : v > hi ? hi : v;
}

void tinyopt_lstm(const tinyopt_lstm_params *p, const int8_t *in, int8_t *out, int8_t *scratch, int8_t *col,
                  int reverse, const int8_t *other)
{
    const int n = p->state_dimension, m = p->input_dimension;
    int16_t *cell = (int16_t *)(void *)col;
    int16_t *gate = cell + n;            /* [4][S] */
    int t, g, s, k;
    (void)scratch;
    (void)reverse;
    (void)other;
    for (s = 0; s < n; ++s) {
        cell[s] = 0;
    }
    for (t = 0; t < p->time_steps; ++t) {
        const int8_t *x = in + (long)t * m;
        const int8_t *h = t > 0 ? out + (long)(t - 1) * n : 0; /* the hidden state is the last output */
        int8_t *y = out + (long)t * n;
        for (g = 0; g < 4; ++g) {
            const int8_t *wx = p->input_weights + (long)g * n * m;
            const int8_t *wh = p->recurrent_weights + (long)g * n * n;
            for (s = 0; s < n; ++s) {
                int32_t ax = p->bias[g * n + s], ah = 0, pre;
                for (k = 0; k < m; ++k) {
                    ax += (x[k] + p->input_offset) * wx[s * m + k];
                }
                for (k = 0; k < n; ++k) {
                    ah += ((h ? h[k] : p->hidden_zero_point) + p->hidden_offset) * wh[s * n + k];
                }
                ax = sat16(tinyopt_mbqm(ax, p->input_multiplier[g], (int)p->input_shift[g]));
                ah = sat16(tinyopt_mbqm(ah, p->recurrent_multiplier[g], (int)p->recurrent_shift[g]));
                pre = sat16(ax + ah);
                gate[g * n + s] = g == 2 ? tanh16(pre * 3, p->sigmoid_table) : logistic16(pre * 3, p->sigmoid_table);
            }
        }
        for (s = 0; s < n; ++s) {
            const int32_t i_ = gate[s], f = gate[n + s], c = gate[2 * n + s], o = gate[3 * n + s];
            int32_t v = mul16(f, cell[s], p->forget_cell_multiplier, p->forget_cell_shift, 0, -32768, 32767);
            int32_t th;
            v += mul16(i_, c, p->input_cell_multiplier, p->input_cell_shift, 0, -32768, 32767);
            v = sat16(v);
            if (p->quantized_cell_clip > 0) {
                v = v < -p->quantized_cell_clip ? -p->quantized_cell_clip :
                    v > p->quantized_cell_clip ? p->quantized_cell_clip : v;
            }
            cell[s] = (int16_t)v;
            th = (int32_t)(((int64_t)v * p->tanh_multiplier + (p->tanh_shift > 0 ? (1 << (p->tanh_shift - 1)) : 0))
                           >> p->tanh_shift);
            y[s] = (int8_t)mul16(tanh16(th, p->sigmoid_table), o, p->output_multiplier, p->output_shift,
                                 p->hidden_zero_point, p->activation_min, p->activation_max);
        }
    }
}
