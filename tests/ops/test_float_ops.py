"""Float kernels against TFLM's float reference kernels (calibration runs on them): same geometry code
as the int8 path, compared with a float tolerance."""

from __future__ import annotations

import numpy as np
import pytest

from runtime._reference import assert_matches_reference
from tinyopt.export.tflite import single_op_model
from tinyopt.graph.ir import Tensor


def ft(name, shape, data=None):
    return Tensor(name, shape, "float32", data=None if data is None else np.asarray(data, np.float32))


@pytest.mark.parametrize("op,attrs,wshape", [
    ("CONV_2D", dict(stride=(2, 2), padding="SAME", activation="RELU"), (4, 3, 3, 3)),
    ("CONV_2D", dict(stride=(1, 2), dilation=(2, 1), padding="VALID", activation="RELU6"), (2, 2, 3, 3)),
    ("DEPTHWISE_CONV_2D", dict(stride=(2, 2), padding="SAME", depth_multiplier=2), (1, 3, 3, 6)),
])
def test_float_conv_matches_tflm(op, attrs, wshape):
    rng = np.random.default_rng(70)
    w = ft("w", wshape, rng.normal(0, 1, wshape))
    cout = wshape[0] if op == "CONV_2D" else wshape[3]
    b = ft("b", (cout,), rng.normal(0, 1, cout))
    g = single_op_model(op, [ft("x", (1, 7, 9, 3)), w, b], ft("y", (1, 1, 1, cout)), attrs)
    assert_matches_reference(g, rng.normal(0, 2, (6, 7, 9, 3)).astype(np.float32))


@pytest.mark.parametrize("op,attrs", [
    ("AVERAGE_POOL_2D", dict(filter=(3, 3), stride=(2, 2), padding="SAME")),
    ("MAX_POOL_2D", dict(filter=(2, 3), stride=(2, 2), padding="VALID", activation="RELU")),
    ("SOFTMAX", dict(beta=0.5)),
    ("LOGISTIC", {}),
    ("TANH", {}),
    ("RELU", {}),
    ("RELU6", {}),
])
def test_float_unary_matches_tflm(op, attrs):
    rng = np.random.default_rng(71)
    g = single_op_model(op, [ft("x", (1, 5, 7, 3))], ft("y", (1, 1, 1, 3)), attrs)
    assert_matches_reference(g, rng.normal(0, 4, (6, 5, 7, 3)).astype(np.float32))


@pytest.mark.parametrize("op", ["ADD", "SUB", "MUL"])
def test_float_binary_matches_tflm(op):
    rng = np.random.default_rng(72)
    g = single_op_model(op, [ft("a", (1, 3, 4, 2)), ft("b", (1, 3, 4, 2))], ft("y", (1, 3, 4, 2)),
                        dict(activation="RELU6"))
    assert_matches_reference(g, [rng.normal(0, 4, (5, 3, 4, 2)).astype(np.float32),
                                 rng.normal(0, 4, (5, 3, 4, 2)).astype(np.float32)])


def test_float_fully_connected_and_mean_match_tflm():
    rng = np.random.default_rng(73)
    g = single_op_model("FULLY_CONNECTED", [ft("x", (1, 12)), ft("w", (5, 12), rng.normal(0, 1, (5, 12))),
                                            ft("b", (5,), rng.normal(0, 1, 5))], ft("y", (1, 5)),
                        dict(activation="NONE"))
    assert_matches_reference(g, rng.normal(0, 1, (7, 12)).astype(np.float32))
    axes = Tensor("axes", (2,), "int32", data=np.array([1, 2], np.int32))
    g = single_op_model("MEAN", [ft("x", (1, 4, 5, 3)), axes], ft("y", (1, 1, 1, 3)), dict(keep_dims=True))
    assert_matches_reference(g, rng.normal(0, 1, (7, 4, 5, 3)).astype(np.float32))
