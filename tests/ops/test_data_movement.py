"""MEAN, PAD, CONCATENATION, RESHAPE, QUANTIZE, DEQUANTIZE against TFLM."""

from __future__ import annotations

import numpy as np
import pytest

from runtime._reference import assert_matches_reference, qtensor, random_int8
from tinyopt.export.tflite import single_op_model
from tinyopt.graph.ir import Tensor


def const_i32(name, values):
    v = np.asarray(values, np.int32)
    return Tensor(name, v.shape, "int32", data=v)


@pytest.mark.parametrize("si,zi,so,zo,shape,keep", [
    (0.05, 0, 0.05, 0, (1, 5, 7, 3), True),      # same params: pure average with rounding
    (0.1, -128, 0.02, 127, (1, 3, 11, 4), True),  # rescaled, output saturates
    (0.02, 40, 0.3, -7, (1, 9, 9, 2), False),     # count 81: 1/count folded into the multiplier
])
def test_mean_matches_tflm(si, zi, so, zo, shape, keep):
    rng = np.random.default_rng(60)
    x = qtensor("x", shape, si, zi)
    y = qtensor("y", (1, 1, 1, shape[3]) if keep else (1, shape[3]), so, zo)
    g = single_op_model("MEAN", [x, const_i32("axes", [1, 2])], y, dict(keep_dims=keep))
    assert_matches_reference(g, random_int8(rng, (20, *shape[1:])))


def test_pad_uses_output_zero_point():
    rng = np.random.default_rng(61)
    x = qtensor("x", (1, 3, 4, 2), 0.1, -9)
    y = qtensor("y", (1, 1, 1, 1), 0.1, -9)
    g = single_op_model("PAD", [x, const_i32("p", [[0, 0], [1, 2], [0, 3], [0, 0]])], y)
    out = assert_matches_reference(g, random_int8(rng, (10, 3, 4, 2)))[0]
    assert out.shape == (10, 6, 7, 2) and (out[:, 0] == -9).all()


def test_concatenation_matches_tflm():
    rng = np.random.default_rng(62)
    a = qtensor("a", (1, 2, 3, 2), 0.07, 4)
    b = qtensor("b", (1, 2, 3, 5), 0.07, 4)
    y = qtensor("y", (1, 2, 3, 7), 0.07, 4)
    g = single_op_model("CONCATENATION", [a, b], y, dict(axis=3, activation="NONE"))
    assert_matches_reference(g, [random_int8(rng, (10, 2, 3, 2)), random_int8(rng, (10, 2, 3, 5))])


def test_reshape_matches_tflm():
    rng = np.random.default_rng(63)
    x = qtensor("x", (1, 2, 3, 4), 0.1, 0)
    y = qtensor("y", (1, 24), 0.1, 0)
    g = single_op_model("RESHAPE", [x, const_i32("s", [1, 24])], y, dict(new_shape=(1, 24)))
    out = assert_matches_reference(g, random_int8(rng, (5, 2, 3, 4)))[0]
    assert out.shape == (5, 24)


@pytest.mark.parametrize("scale,zp", [(0.02, 0), (0.1, -128), (0.003, 127)])
def test_quantize_and_dequantize_match_tflm(scale, zp):
    rng = np.random.default_rng(64)
    xf = Tensor("xf", (1, 40), "float32")
    q = qtensor("q", (1, 40), scale, zp)
    g = single_op_model("QUANTIZE", [xf], q)
    x = rng.normal(0, 1, (8, 40)).astype(np.float32)
    # Exact halves (k + 0.5) * scale test the rounding direction; large values saturate.
    x[0] = (np.arange(40) - 20 + 0.5) * np.float32(scale)
    x[1] = np.linspace(-1e3, 1e3, 40)
    assert_matches_reference(g, x)
    qi = qtensor("qi", (1, 40), scale, zp)
    g2 = single_op_model("DEQUANTIZE", [qi], Tensor("f", (1, 40), "float32"))
    assert_matches_reference(g2, random_int8(rng, (8, 40)))


def test_requantize_int8_to_int8_matches_tflm():
    rng = np.random.default_rng(65)
    g = single_op_model("QUANTIZE", [qtensor("a", (1, 30), 0.05, 3)], qtensor("b", (1, 30), 0.011, -20))
    assert_matches_reference(g, random_int8(rng, (10, 30)))

