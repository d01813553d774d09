"""FULLY_CONNECTED against TFLM: per-tensor (float32 scale product) and per-channel weights, fused
activations, zero-point extremes, no bias."""

from __future__ import annotations

import numpy as np
import pytest

from runtime._reference import assert_matches_reference, qtensor, random_int8
from tinyopt.export.tflite import single_op_model


@pytest.mark.parametrize("per_channel,activation,in_zp,out_zp,with_bias", [
    (False, "NONE", 0, 0, True),
    (True, "RELU", -128, 5, True),
    (True, "RELU6", 127, -128, False),
    (False, "RELU_N1_TO_1", -3, 127, True),
])
def test_fully_connected_matches_tflm(per_channel, activation, in_zp, out_zp, with_bias):
    rng = np.random.default_rng(200 + in_zp)
    i, o = 37, 11
    w = rng.integers(-127, 128, size=(o, i)).astype(np.int8)
    w_scales = np.asarray(2.0 ** -rng.uniform(0, 12, o) if per_channel else [0.0123], np.float32)
    in_scale = np.float32(0.0371)
    x = qtensor("x", (1, i), in_scale, in_zp)
    zeros = np.zeros(len(w_scales), np.int64)
    wt = qtensor("w", w.shape, w_scales, zeros, data=w, axis=0 if per_channel else None)
    bt = None
    if with_bias:
        bias = rng.integers(-20000, 20000, size=o).astype(np.int32)
        bt = qtensor("b", (o,), in_scale * w_scales, zeros, data=bias, dtype="int32",
                     axis=0 if per_channel else None)
    y = qtensor("y", (1, o), 0.05, out_zp)
    g = single_op_model("FULLY_CONNECTED", [x, wt, bt], y, dict(activation=activation))
    assert_matches_reference(g, random_int8(rng, (30, i)))
