/* UNIDIRECTIONAL_SEQUENCE_LSTM, int8 (TFLM's 8x8->16 kernel): one sequence from the reset state. Gate
 * pre-activations int16 at 2^-12, gates int16 at 2^-15 (the 256-entry sigmoid table, interpolated), the
 * cell int16 at 2^cell_state_scale_power, the hidden state int8 at the output's parameters. */
#ifndef TINYOPT_LSTM_H
#define TINYOPT_LSTM_H

#include <stdint.h>

typedef struct {
    int time_steps, input_dimension, state_dimension;
    int32_t input_offset;                /* -input zero point */
    int32_t hidden_offset;               /* -hidden zero point: the recurrent products' input offset */
    int32_t hidden_zero_point;           /* the reset hidden state and the output product's offset */
    int32_t activation_min, activation_max;
    int32_t forget_cell_multiplier, input_cell_multiplier, output_multiplier;
    int forget_cell_shift, input_cell_shift, output_shift;
    int32_t tanh_multiplier;             /* the cell's tanh: x * tanh_multiplier >> tanh_shift (rounded) */
    int tanh_shift;
    int32_t quantized_cell_clip;         /* 0: no clip */
    const int8_t *input_weights;         /* [4][S][I]: gates input, forget, cell, output */
    const int8_t *recurrent_weights;     /* [4][S][S] */
    const int32_t *bias;                 /* [4][S] */
    const int32_t *input_multiplier;     /* [4] per gate, to 2^-12 */
    const int32_t *input_shift;
    const int32_t *recurrent_multiplier;
    const int32_t *recurrent_shift;
    const uint16_t *sigmoid_table;       /* 256 values of sigmoid(i / 24) in 0.16 fixed point */
} tinyopt_lstm_params;

/* in [T][I] -> out [T][S] (out[t] is the hidden state after step t); col: 10 * S bytes of scratch (the cell
 * and the four gates, int16), word aligned. scratch, reverse and other are unused (the rows_col call). */
void tinyopt_lstm(const tinyopt_lstm_params *p, const int8_t *in, int8_t *out, int8_t *scratch, int8_t *col,
                  int reverse, const int8_t *other);

#endif
