"""Calibration ranges: min/max equals numpy over the same data; an observer narrows them; bad data refused."""

from __future__ import annotations

import numpy as np
import pytest

from tinyopt import zoo
from tinyopt.convert import calibrate
from tinyopt.errors import DataError
from tinyopt.graph.ir import Graph, Node, Tensor


def relu_fc_graph():
    g = Graph("fc", source="fc.onnx")
    w = np.array([[1.0, -2.0], [0.5, 0.5]], np.float32)
    g.add_tensor(Tensor("x", (1, 2)))
    g.add_tensor(Tensor("w", (2, 2), data=w))
    g.add_tensor(Tensor("y", (1, 2)))
    g.add_node(Node("fc", "FULLY_CONNECTED", ["x", "w"], ["y"], dict(activation="RELU")))
    g.inputs, g.outputs = ["x"], ["y"]
    return g, w


def test_minmax_ranges_equal_numpy_over_all_batches():
    g, w = relu_fc_graph()
    x = np.random.default_rng(0).normal(0, 3, (100, 2)).astype(np.float32)
    r = calibrate(g, x, batch_size=16)  # 7 batches: the running min/max must cover all of them
    y = np.maximum(x @ w.T, 0)
    assert r["x"] == (float(x.min()), float(x.max()))
    assert r["y"] == pytest.approx((float(y.min()), float(y.max())), rel=1e-6)


def test_percentile_observer_narrows_the_range():
    g, _ = relu_fc_graph()
    x = np.random.default_rng(1).normal(0, 1, (20000, 2)).astype(np.float32)
    x[0] = [40.0, -40.0]  # one outlier among 40,000 values: beyond the 99.99th percentile
    mm = calibrate(g, x)
    pc = calibrate(g, x, observer="percentile")
    assert mm["x"] == (-40.0, 40.0)
    assert -10 < pc["x"][0] < 0 < pc["x"][1] < 10


@pytest.mark.parametrize("data,fragment", [
    (np.zeros((0, 2), np.float32), "calibration set is empty"),
    (np.array([[np.inf, 0.0]], np.float32), "NaN or inf"),
])
def test_bad_calibration_data(data, fragment):
    g, _ = relu_fc_graph()
    with pytest.raises(DataError, match=fragment) as e:
        calibrate(g, data)
    assert str(e.value).startswith("fc.onnx: ")


@pytest.mark.parametrize("lo,hi",
                         [(0.0, 0.0), (0.0, 2e-7), (-1e-9, 1e-9), (3.0, 3.0), (-4.0, -4.0), (0.0, 9e-7)])
def test_collapsed_ranges_give_scales_tflm_accepts(lo, hi):
    """TFLM's prepare quantizes a fused RELU6 bound as round(6 / scale) and refuses it unless it fits int32
    (kernel_util.cc, no_integer_overflow_from_quantization): the smallest scale allowed is 6 / 2**31."""
    from tinyopt.convert.calibrate import MIN_RANGE_WIDTH, choose_activation_qparams

    s, z = choose_activation_qparams(lo, hi)
    assert np.float32(6.0) / s < 2.0**31
    # the range still covers the data and 0, and 0 is a grid point
    assert (-128 - z) * s <= min(lo, 0.0) + 1e-12 and (127 - z) * s >= max(hi, 0.0) - 1e-12
    assert float(s) >= MIN_RANGE_WIDTH / 255 * (1 - 1e-6)


def test_constant_activation_range_follows_tflite_converter():
    """A constant 3.0 (width 0): widened to [-5e-7, 3], so scale = (3 + 5e-7) / 255 and the zero point
    -128 - (-5e-7) / scale = -127.99996 rounds to -128."""
    from tinyopt.convert.calibrate import choose_activation_qparams

    s, z = choose_activation_qparams(3.0, 3.0)
    assert s == np.float32((3.0 + 5e-7) / 255) and z == -128


@pytest.mark.parametrize("name", sorted(zoo.ZOO))
def test_every_converted_zoo_model_prepares_and_runs_in_tflm(name):
    """Randomly initialised zoo networks have collapsing activations (MobileNetV1's shrink to ~1e-10 by
    its 9th block); the converted .tflite must still pass TFLM's prepare and give our runtime's outputs."""
    import torch

    from runtime._reference import run_tflm
    from tinyopt.convert import convert_torch
    from tinyopt.export.tflite import graph_to_tflite_bytes
    from tinyopt.runtime import Interpreter

    torch.manual_seed(0)
    model = zoo.build(name).eval()
    shape = zoo.input_shape(name)
    rng = np.random.default_rng(1)
    g = convert_torch(model, rng.normal(0, 1, (8, *shape)).astype(np.float32), shape)
    x = rng.integers(-128, 128, (3, *g.tensors[g.inputs[0]].shape[1:])).astype(np.int8)
    tflm = run_tflm(graph_to_tflite_bytes(g), [x])[0]  # raises if TFLM's prepare refuses the model
    ours = Interpreter(g).run(x)[0]
    np.testing.assert_array_equal(ours.reshape(tflm.shape), tflm)
