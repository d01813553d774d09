"""SUM over any axes against TFLM (60 seeded configurations), the C kernel, convert, and the doors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from onnx import helper

from ops._oracles import (
    assert_c_equals_runtime,
    assert_onnx_matches_ort,
    assert_torch_matches,
    const_i32,
    convert_and_match_tflm,
    needs_cc,
    onnx_file,
    random_reduction,
)
from runtime._reference import assert_matches_reference, qtensor, random_int8
from tinyopt.export.tflite import single_op_model
from tinyopt.graph.ir import Graph, Node, Tensor

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("seed", range(60))
def test_sum_over_any_axes_matches_tflm(seed):
    g, xs, axes, keep = random_reduction("SUM", seed, int8=bool(seed % 2))
    out = assert_matches_reference(g, xs)[0]
    if seed % 2 == 0:
        rank = len(g.tensors["x"].shape)
        ax = tuple(sorted({a % rank for a in axes} - {0}))
        np.testing.assert_allclose(out.reshape(-1), xs.sum(axis=ax, keepdims=keep).reshape(-1), rtol=1e-5,
                                   atol=1e-5)


def test_int8_sum_by_hand():
    # x = [-3, 5, 10, 1] scale 0.5 zp 1: real -2 + 2 + 4.5 + 0 = 4.5; output scale 0.25 zp 0 -> 18
    # TFLM: (13 - 4 * 1) = 9 times 0.5 / 0.25 = 2 -> 18
    g = single_op_model("SUM", [qtensor("x", (1, 4), 0.5, 1), const_i32("axes", [1])],
                        qtensor("y", (1,), 0.25, 0), dict(keep_dims=True))
    assert assert_matches_reference(g, np.array([[-3, 5, 10, 1]], np.int8))[0].tolist() == [[18]]


@needs_cc
@pytest.mark.parametrize("seed", range(8))
def test_c_kernel_equals_runtime(seed, tmp_path):
    g, _, _, _ = random_reduction("SUM", 2000 + seed, int8=True)
    xs = random_int8(np.random.default_rng(seed), (16, *g.tensors["x"].shape[1:]))
    assert_c_equals_runtime(g, xs, tmp_path)


def test_converted_sum_runs_in_tflm():
    g = Graph("t")
    g.add_tensor(Tensor("x", (1, 4, 6)))
    g.add_tensor(const_i32("axes", [1]))
    g.add_tensor(Tensor("y", (1,)))
    g.add_node(Node("y", "SUM", ["x", "axes"], ["y"], {"keep_dims": False}))
    g.inputs, g.outputs = ["x"], ["y"]
    g.infer_shapes()
    rng = np.random.default_rng(0)
    convert_and_match_tflm(g, rng.normal(size=(32, 4, 6)).astype(np.float32),
                           rng.normal(size=(8, 4, 6)).astype(np.float32))


@pytest.mark.parametrize("axes,keep,opset", [([1], 1, 11), ([2, 3], 0, 11), ([3], 0, 13), ([1, 2], 1, 13)])
def test_onnx_reduce_sum_matches_ort(tmp_path, axes, keep, opset):
    if opset >= 13:  # axes became an input
        nodes = [helper.make_node("ReduceSum", ["x", "ax"], ["y"], keepdims=keep)]
        inits = [("ax", np.array(axes, np.int64))]
    else:
        nodes, inits = [helper.make_node("ReduceSum", ["x"], ["y"], axes=axes, keepdims=keep)], []
    path = onnx_file(tmp_path, nodes, (1, 3, 4, 5), inits, opset=opset)
    g = assert_onnx_matches_ort(path, np.random.default_rng(0).normal(size=(2, 3, 4, 5)).astype(np.float32))
    assert "SUM" in {n.op for n in g.nodes}


class _Sums(torch.nn.Module):
    def __init__(self, dims, keep):
        super().__init__()
        self.dims, self.keep = dims, keep

    def forward(self, x):
        return torch.sum(x, self.dims, keepdim=self.keep) + x.sum(dim=self.dims, keepdim=self.keep)


@pytest.mark.parametrize("shape,dims,keep",
                         [((3, 4, 5), 1, True), ((3, 4, 5), (2, 3), False), ((6, 7), 2, False)])
def test_torch_sum_matches_torch(shape, dims, keep):
    assert_torch_matches(_Sums(dims, keep), shape, atol=1e-4)
