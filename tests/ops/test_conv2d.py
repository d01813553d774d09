"""CONV_2D against TFLM: stride 2 on odd sizes, SAME/VALID, dilation, per-channel scales 2^-20..2^0,
zero-point extremes and saturating fused activations."""

from __future__ import annotations

import numpy as np
import pytest

from runtime._reference import assert_matches_reference, qtensor, random_int8
from tinyopt.export.tflite import single_op_model


def conv_model(rng, in_hw, cin, cout, k, attrs, in_zp=0, out_zp=0, w_scales=None, out_scale=0.05):
    w = rng.integers(-127, 128, size=(cout, k[0], k[1], cin)).astype(np.int8)
    w_scales = np.full(cout, 0.01, np.float32) if w_scales is None else np.asarray(w_scales, np.float32)
    in_scale = 0.02
    bias = rng.integers(-5000, 5000, size=cout).astype(np.int32)
    x = qtensor("x", (1, *in_hw, cin), in_scale, in_zp)
    wt = qtensor("w", w.shape, w_scales, np.zeros(cout, np.int64), data=w, axis=0)
    bt = qtensor("b", (cout,), in_scale * w_scales, np.zeros(cout, np.int64), data=bias, dtype="int32",
                 axis=0)
    y = qtensor("y", (1, 1, 1, cout), out_scale, out_zp)
    return single_op_model("CONV_2D", [x, wt, bt], y, attrs)


CASES = {
    "same_stride2_odd": dict(in_hw=(7, 9), cin=3, cout=4, k=(3, 3),
                             attrs=dict(stride=(2, 2), padding="SAME", activation="NONE")),
    "valid_stride2x1_odd": dict(in_hw=(9, 5), cin=2, cout=3, k=(4, 3),
                                attrs=dict(stride=(2, 1), padding="VALID", activation="RELU")),
    "same_dilation2": dict(in_hw=(8, 7), cin=2, cout=3, k=(3, 3),
                           attrs=dict(stride=(1, 1), dilation=(2, 2), padding="SAME", activation="RELU6")),
    "zp_minus128_relu6": dict(in_hw=(5, 5), cin=4, cout=5, k=(2, 2), in_zp=-128, out_zp=127,
                              attrs=dict(stride=(1, 1), padding="SAME", activation="RELU6")),
    "zp_127_saturating": dict(in_hw=(6, 4), cin=3, cout=2, k=(3, 1), in_zp=127, out_zp=-128, out_scale=0.001,
                              attrs=dict(stride=(3, 2), padding="SAME", activation="NONE")),
    "scales_2^-20_to_2^0": dict(in_hw=(5, 6), cin=8, cout=21, k=(3, 3),
                                w_scales=2.0 ** -np.arange(20, -1, -1), out_scale=0.5,
                                attrs=dict(stride=(2, 2), padding="SAME", activation="NONE")),
    "wide_1x1_k600": dict(in_hw=(3, 3), cin=600, cout=4, k=(1, 1), out_scale=2.0,
                          attrs=dict(stride=(1, 1), padding="VALID", activation="NONE")),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_conv2d_matches_tflm(case):
    rng = np.random.default_rng(sorted(CASES).index(case))
    g = conv_model(rng, **CASES[case])
    x = random_int8(rng, (24, *g.tensors["x"].shape[1:]))
    assert_matches_reference(g, x)
