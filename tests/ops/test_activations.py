"""SOFTMAX, LOGISTIC, TANH, RELU, RELU6 against TFLM over every int8 input value and several input
scales (the fixed-point exp, reciprocal, logistic and tanh are exercised across their whole range)."""

from __future__ import annotations

import numpy as np
import pytest

from runtime._reference import assert_matches_reference, qtensor, random_int8
from tinyopt.export.tflite import single_op_model

ALL_INT8 = np.arange(-128, 128, dtype=np.int8).reshape(16, 1, 16)


@pytest.mark.parametrize("scale,zp,beta",
                         [(0.1, 0, 1.0), (0.0039, -128, 1.0), (0.5, 20, 0.7), (1e-3, 127, 1.0)])
def test_softmax_matches_tflm(scale, zp, beta):
    rng = np.random.default_rng(50)
    x = qtensor("x", (1, 10), scale, zp)
    y = qtensor("y", (1, 10), 1 / 256, -128)
    g = single_op_model("SOFTMAX", [x], y, dict(beta=beta))
    assert_matches_reference(g, random_int8(rng, (40, 10)))


@pytest.mark.parametrize("op,out", [("LOGISTIC", (1 / 256, -128)), ("TANH", (1 / 128, 0))])
@pytest.mark.parametrize("scale,zp", [(0.1, 0), (0.01, -128), (0.25, 127), (0.0625, 3)])
def test_logistic_tanh_every_value(op, out, scale, zp):
    x = qtensor("x", (1, 1, 16), scale, zp)
    y = qtensor("y", (1, 1, 16), *out)
    assert_matches_reference(single_op_model(op, [x], y), ALL_INT8)


@pytest.mark.parametrize("op", ["RELU", "RELU6"])
@pytest.mark.parametrize("scale,zp,so,zo",
                         [(0.05, 0, 0.05, 0), (0.1, -128, 0.03, -100), (0.02, 127, 0.02, 127)])
def test_relu_every_value(op, scale, zp, so, zo):
    if op == "RELU6":
        so, zo = scale, zp  # TFLM's RELU6 kernel clamps without requantizing: output shares input params
    x = qtensor("x", (1, 1, 16), scale, zp)
    y = qtensor("y", (1, 1, 16), so, zo)
    assert_matches_reference(single_op_model(op, [x], y), ALL_INT8)


def test_softmax_known_values():
    # Two equal logits → each 0.5 → q = 0.5 * 256 - 128 = 0; far-apart logits → 127 and -128.
    from tinyopt.runtime import Interpreter

    x = qtensor("x", (1, 2), 0.1, 0)
    g = single_op_model("SOFTMAX", [x], qtensor("y", (1, 2), 1 / 256, -128), dict(beta=1.0))
    out = Interpreter(g).run(np.array([[5, 5], [127, -128]], np.int8))[0]
    assert out.tolist() == [[0, 0], [127, -128]]


def test_random_rows_shape_and_dtype():
    rng = np.random.default_rng(51)
    x = qtensor("x", (1, 3, 7), 0.2, -4)
    g = single_op_model("SOFTMAX", [x], qtensor("y", (1, 3, 7), 1 / 256, -128), dict(beta=1.0))
    assert_matches_reference(g, random_int8(rng, (12, 3, 7)))


# (dtype, input scale, output scale, x, TFLM's output). The double ratio of the scales gives the multiplier
# 1214005405 (shift 1) for the first, the float32 ratio 1214005376: x is doubled first, and 222 x m / 2^31 =
# 125.5000010 against 125.4999980, which the high multiply rounds to 126 / 125.
RELU_TIES = [("int8", 0.7602121829986572, 0.6723788976669312, 111, 126),
             ("int8", 0.7498272657394409, 0.8046926856040955, 22, 20),
             ("int8", 0.7498272657394409, 0.8046926856040955, 66, 61),
             ("int16", 1.383060407533776e-05, 1.0619550266710576e-05, 20827, 27124),
             ("int16", 0.00021168295643292367, 4.0628190618008375e-05, 5201, 27099)]


@pytest.mark.parametrize("dtype,si,so,x,want", RELU_TIES)
def test_relu_multiplier_is_the_double_ratio_on_a_rounding_tie(dtype, si, so, x, want, tmp_path):
    """TFLM's RELU requantizes by the double ratio of the scales: the runtime and the C library give its
    output where the float32 ratio gives the neighbouring one."""
    from ops._activation import c_outputs
    from runtime._reference import run_tflm
    from tinyopt.export.tflite import graph_to_tflite_bytes
    from tinyopt.runtime import Interpreter
    from tinyopt.runtime.fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier

    g = single_op_model("RELU", [qtensor("x", (1, 1, 1), si, 0, dtype=dtype)],
                        qtensor("y", (1,), so, 0, dtype=dtype))
    xs = np.array([[[x]]], dtype)
    assert int(run_tflm(graph_to_tflite_bytes(g), [xs])[0].ravel()[0]) == want
    old = quantize_multiplier(float(np.float32(np.float32(si) / np.float32(so))))
    assert int(multiply_by_quantized_multiplier(x, *old)) != want  # the float32 ratio misses it
    assert int(Interpreter(g).run(xs)[0].ravel()[0]) == want
    assert int(c_outputs(g, xs, tmp_path).view(dtype).ravel()[0]) == want
