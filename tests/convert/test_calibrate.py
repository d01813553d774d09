"""Calibration ranges: min/max equals numpy over the same data; an observer narrows them; bad data refused."""

from __future__ import annotations

import numpy as np
import pytest

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
