"""MINIMUM against TFLM (60 seeded broadcast configurations), the C kernel, convert, the doors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from onnx import helper

from ops._oracles import (
    assert_c_equals_runtime,
    assert_onnx_matches_ort,
    assert_torch_matches,
    branch_graph,
    convert_and_match_tflm,
    needs_cc,
    onnx_file,
    random_binary,
)
from runtime._reference import assert_matches_reference, random_int8
from tinyopt.graph.ir import Graph, Node, Tensor

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("seed", range(60))
def test_minimum_with_broadcasting_matches_tflm(seed):
    g, xs = random_binary("MINIMUM", 500 + seed, int8=bool(seed % 2), same_quant=True)
    out = assert_matches_reference(g, xs)[0]
    rank = len(g.tensors["y"].shape)
    a = xs[0].reshape(xs[0].shape[:1] + (1,) * (rank - xs[0].ndim) + xs[0].shape[1:])
    b = g.tensors["b"].data if len(xs) == 1 else xs[1].reshape(xs[1].shape[:1] + (1,) * (rank - xs[1].ndim)
                                                               + xs[1].shape[1:])
    np.testing.assert_array_equal(out.reshape(-1), np.minimum(a, b).reshape(-1))


@needs_cc
@pytest.mark.parametrize("axes,swap", [([2], True), ([1, 3], False)])
def test_c_kernel_equals_runtime_on_two_activations(axes, swap, tmp_path):
    g = branch_graph("MINIMUM", (1, 3, 5, 7), axes, swap=swap)
    assert_c_equals_runtime(g, random_int8(np.random.default_rng(1), (20, 3, 5, 7)), tmp_path)


def test_converted_clamp_runs_in_tflm():
    """min(max(x, -0.5), 0.8): the constants are quantized with each node's output parameters."""
    g = Graph("t")
    g.add_tensor(Tensor("x", (1, 12)))
    g.add_tensor(Tensor("lo", (1,), data=np.array([-0.5], np.float32)))
    g.add_tensor(Tensor("hi", (1,), data=np.array([0.8], np.float32)))
    g.add_tensor(Tensor("h", (1,)))
    g.add_tensor(Tensor("y", (1,)))
    g.add_node(Node("h", "MAXIMUM", ["x", "lo"], ["h"]))
    g.add_node(Node("y", "MINIMUM", ["h", "hi"], ["y"]))
    g.inputs, g.outputs = ["x"], ["y"]
    g.infer_shapes()
    rng = np.random.default_rng(0)
    convert_and_match_tflm(g, rng.normal(size=(32, 12)).astype(np.float32),
                           rng.normal(size=(8, 12)).astype(np.float32))


def test_onnx_min_matches_ort(tmp_path):
    nodes = [helper.make_node("ReduceMax", ["x"], ["m"], axes=[3], keepdims=1),
             helper.make_node("Min", ["c", "m", "x"], ["y"])]
    path = onnx_file(tmp_path, nodes, (1, 3, 4, 5), inits=[("c", np.linspace(-1, 1, 5).astype(np.float32))],
                     opset=13)
    g = assert_onnx_matches_ort(path, np.random.default_rng(0).normal(size=(3, 3, 4, 5)).astype(np.float32))
    assert [n.op for n in g.nodes].count("MINIMUM") == 2


def test_torch_minimum_matches_torch():
    class N(torch.nn.Module):
        def forward(self, x):
            return torch.minimum(x, x.amax(dim=1, keepdim=True))

    g = assert_torch_matches(N(), (3, 4, 5))
    assert "MINIMUM" in {n.op for n in g.nodes}
