"""SOFTMAX over any axis at the doors: the axis mapped from NCHW onto the graph, TRANSPOSE -> SOFTMAX ->
TRANSPOSE when it is not the last graph axis; against ONNX Runtime, PyTorch and (converted) TFLM."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from onnx import helper

from ops._oracles import (
    assert_onnx_matches_ort,
    assert_torch_matches,
    convert_and_match_tflm,
    onnx_file,
    to_nhwc,
)
from tinyopt.graph.torch_import import from_torch

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("axis,transposes", [(1, 0), (2, 2), (3, 2), (-1, 2), (-3, 0)])
def test_onnx_softmax_on_any_axis_matches_ort(tmp_path, axis, transposes):
    path = onnx_file(tmp_path, [helper.make_node("Softmax", ["x"], ["y"], axis=axis)], (1, 3, 4, 5), opset=13)
    g = assert_onnx_matches_ort(path, np.random.default_rng(0).normal(size=(2, 3, 4, 5)).astype(np.float32))
    assert [n.op for n in g.nodes].count("TRANSPOSE") == transposes


class _Softmax(torch.nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.sm = torch.nn.Softmax(dim=dim)
        self.dim = dim

    def forward(self, x):
        return self.sm(x) * torch.softmax(x, self.dim)


@pytest.mark.parametrize("shape,dim",
                         [((3, 4, 5), 1), ((3, 4, 5), 2), ((3, 4, 5), 3), ((6, 7), 1), ((6, 7), 2),
                          ((2, 3, 4), -2)])
def test_torch_softmax_on_any_dim_matches_torch(shape, dim):
    assert_torch_matches(_Softmax(dim), shape)


def test_softmax_after_a_flatten_keeps_the_flatten_order():
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Softmax(dim=1), torch.nn.Linear(18, 4))
    g = assert_torch_matches(m, (2, 3, 3))
    assert [n.op for n in g.nodes] == ["RESHAPE", "SOFTMAX", "FULLY_CONNECTED"]


def test_converted_softmax_over_height_runs_in_tflm():
    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(2, 3, 3, padding=1)

        def forward(self, x):
            return torch.softmax(self.conv(x), dim=2)

    torch.manual_seed(0)
    m = M().eval()
    g = from_torch(m, (2, 6, 5))
    assert [n.op for n in g.nodes] == ["CONV_2D", "TRANSPOSE", "SOFTMAX", "TRANSPOSE"]
    rng = np.random.default_rng(0)
    calib = to_nhwc(rng.normal(size=(32, 2, 6, 5)).astype(np.float32))
    q = convert_and_match_tflm(g, calib, to_nhwc(rng.normal(size=(6, 2, 6, 5)).astype(np.float32)))
    assert [n.op for n in q.nodes] == ["CONV_2D", "TRANSPOSE", "SOFTMAX", "TRANSPOSE"]
