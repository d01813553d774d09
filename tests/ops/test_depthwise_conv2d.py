"""DEPTHWISE_CONV_2D against TFLM: depth multiplier > 1, stride 2 on odd sizes, SAME/VALID, dilation,
per-channel scales, zero-point extremes."""

from __future__ import annotations

import numpy as np
import pytest

from runtime._reference import assert_matches_reference, qtensor, random_int8
from tinyopt.export.tflite import single_op_model

CASES = {
    "m2_same_stride2_odd": dict(in_hw=(7, 5), cin=3, m=2, k=(3, 3),
                                attrs=dict(stride=(2, 2), padding="SAME")),
    "m3_valid": dict(in_hw=(6, 6), cin=2, m=3, k=(3, 2), attrs=dict(stride=(1, 2), padding="VALID",
                                                                    activation="RELU")),
    "m1_dilation2_zp": dict(in_hw=(9, 8), cin=4, m=1, k=(3, 3), in_zp=-128, out_zp=127,
                            attrs=dict(stride=(1, 1), dilation=(2, 2), padding="SAME", activation="RELU6")),
    "m1_scales_span": dict(in_hw=(5, 5), cin=21, m=1, k=(3, 3), spread=True, in_zp=127, out_zp=-128,
                           attrs=dict(stride=(2, 2), padding="SAME")),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_depthwise_matches_tflm(case):
    c = dict(CASES[case])
    rng = np.random.default_rng(10 + sorted(CASES).index(case))
    cout = c["cin"] * c["m"]
    w = rng.integers(-127, 128, size=(1, *c["k"], cout)).astype(np.int8)
    w_scales = (2.0 ** -np.linspace(20, 0, cout) if c.get("spread")
                else np.full(cout, 0.02)).astype(np.float32)
    in_scale = np.float32(0.03)
    bias = rng.integers(-3000, 3000, size=cout).astype(np.int32)
    x = qtensor("x", (1, *c["in_hw"], c["cin"]), in_scale, c.get("in_zp", 0))
    wt = qtensor("w", w.shape, w_scales, np.zeros(cout, np.int64), data=w, axis=3)
    bt = qtensor("b", (cout,), in_scale * w_scales, np.zeros(cout, np.int64), data=bias, dtype="int32",
                 axis=0)
    y = qtensor("y", (1, 1, 1, cout), 0.04, c.get("out_zp", 0))
    g = single_op_model("DEPTHWISE_CONV_2D", [x, wt, bt], y, dict(c["attrs"], depth_multiplier=c["m"]))
    assert_matches_reference(g, random_int8(rng, (24, *x.shape[1:])))
