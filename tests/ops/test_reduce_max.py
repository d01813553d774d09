"""REDUCE_MAX over any axes against TFLM (60 seeded configurations), the C kernel, convert, the doors."""

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
from tinyopt.errors import ModelFormatError
from tinyopt.export.tflite import single_op_model
from tinyopt.graph.ir import Graph, Node, Tensor
from tinyopt.runtime import Interpreter

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("seed", range(60))
def test_reduce_max_over_any_axes_matches_tflm(seed):
    g, xs, axes, keep = random_reduction("REDUCE_MAX", seed, int8=bool(seed % 2), same_quant=True)
    out = assert_matches_reference(g, xs)[0]
    rank = len(g.tensors["x"].shape)
    ax = tuple(sorted({a % rank for a in axes} - {0}))
    np.testing.assert_array_equal(out.reshape(-1), xs.max(axis=ax, keepdims=keep).reshape(-1))


def test_int8_output_must_keep_the_input_quantization():
    g = single_op_model("REDUCE_MAX", [qtensor("x", (1, 4), 0.5, 1), const_i32("axes", [1])],
                        qtensor("y", (1,), 0.25, 1), dict(keep_dims=True))
    with pytest.raises(ModelFormatError, match="input's scale and zero point"):
        Interpreter(g)


@needs_cc
@pytest.mark.parametrize("seed", range(8))
def test_c_kernel_equals_runtime(seed, tmp_path):
    g, _, _, _ = random_reduction("REDUCE_MAX", 3000 + seed, int8=True, same_quant=True)
    xs = random_int8(np.random.default_rng(seed), (16, *g.tensors["x"].shape[1:]))
    assert_c_equals_runtime(g, xs, tmp_path)


def test_converted_reduce_max_runs_in_tflm():
    g = Graph("t")
    g.add_tensor(Tensor("x", (1, 4, 6, 3)))
    g.add_tensor(const_i32("axes", [2]))
    g.add_tensor(Tensor("y", (1,)))
    g.add_node(Node("y", "REDUCE_MAX", ["x", "axes"], ["y"], {"keep_dims": True}))
    g.inputs, g.outputs = ["x"], ["y"]
    g.infer_shapes()
    rng = np.random.default_rng(0)
    q = convert_and_match_tflm(g, rng.normal(size=(32, 4, 6, 3)).astype(np.float32),
                               rng.normal(size=(8, 4, 6, 3)).astype(np.float32))
    assert q.tensors[q.outputs[0]].quant == q.tensors[q.inputs[0]].quant


@pytest.mark.parametrize("axes,keep", [([1], 1), ([2, 3], 0), ([3], 0)])
def test_onnx_reduce_max_matches_ort(tmp_path, axes, keep):
    path = onnx_file(tmp_path, [helper.make_node("ReduceMax", ["x"], ["y"], axes=axes, keepdims=keep)],
                     (1, 3, 4, 5), opset=13)
    g = assert_onnx_matches_ort(path, np.random.default_rng(0).normal(size=(2, 3, 4, 5)).astype(np.float32))
    assert "REDUCE_MAX" in {n.op for n in g.nodes}


class _Amax(torch.nn.Module):
    def __init__(self, dims, keep):
        super().__init__()
        self.dims, self.keep = dims, keep

    def forward(self, x):
        return torch.amax(x, self.dims, keepdim=self.keep)


@pytest.mark.parametrize("shape,dims,keep",
                         [((3, 4, 5), 1, True), ((3, 4, 5), (2, 3), False), ((6, 7), -1, False)])
def test_torch_amax_matches_torch(shape, dims, keep):
    assert_torch_matches(_Amax(dims, keep), shape)


def test_torch_max_over_a_dim_gives_values_and_indices():
    from tinyopt.graph.torch_import import from_torch

    class Values(torch.nn.Module):
        def forward(self, x):
            return x.max(2, keepdim=True)[0]

    class Indices(torch.nn.Module):
        def forward(self, x):
            return torch.max(x, dim=1)[1]

    g = assert_torch_matches(Values(), (3, 4, 5))
    assert [n.op for n in g.nodes] == ["REDUCE_MAX"]  # the unread indices are not built
    g = from_torch(Indices(), (6, 7))
    assert [n.op for n in g.nodes] == ["ARG_MAX", "RESHAPE"]  # (N, C, L) over C: (1, 1, L) -> (1, L)
    x = torch.randn(3, 6, 7, generator=torch.Generator().manual_seed(0))
    got = Interpreter(g).run(x.numpy().transpose(0, 2, 1)[:, None].copy())[0]
    np.testing.assert_array_equal(got.reshape(3, 7), Indices()(x).numpy())
