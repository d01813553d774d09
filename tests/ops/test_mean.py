"""MEAN over any axes against TFLM (60 seeded configurations), the C kernel against the numpy runtime,
convert, and the ONNX / PyTorch doors over any axes."""

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
from tinyopt.ops.mean import mean_multiplier

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("seed", range(60))
def test_mean_over_any_axes_matches_tflm(seed):
    g, xs, axes, keep = random_reduction("MEAN", seed, int8=bool(seed % 2))
    out = assert_matches_reference(g, xs)[0]
    if seed % 2 == 0:  # float: independently, numpy's mean over the same (non-batch) axes
        rank = len(g.tensors["x"].shape)
        ax = tuple(sorted({a % rank for a in axes} - {0}))
        np.testing.assert_allclose(out.reshape(-1), xs.mean(axis=ax, keepdims=keep).reshape(-1), rtol=1e-5,
                                   atol=1e-6)


def test_mean_multiplier_by_hand():
    # 0.5 * 2^31 = 2^30 with shift 0; count 3: extra = floor(log2 3) = 1, (2^30 << 1) // 3 = 715827882
    assert mean_multiplier(1 << 30, 0, 3) == (715827882, -1)
    # count 2^40 would want 40 extra bits: capped at 32, and at 31 + shift
    assert mean_multiplier(1 << 30, -5, 1 << 40)[1] == -5 - 26


def test_int8_mean_by_hand():
    # x = [[-3, 5, 10, 1]] scale 0.5 zp 1 (real -2, 2, 4.5, 0); mean = 1.125 -> out scale 0.25 zp -2: 2.5 -> 3
    # TFLM: sum 13 - 1*4 = 9; multiplier 2.0 -> (2^30, 2) readapted by 4: (2^30 << 2) / 4 = 2^30, shift 0;
    # 9 * 0.5 = 4.5 -> 5 (half away from zero), + zp -2 = 3
    g = single_op_model("MEAN", [qtensor("x", (1, 4), 0.5, 1), const_i32("axes", [1])],
                        qtensor("y", (1,), 0.25, -2), dict(keep_dims=False))
    out = assert_matches_reference(g, np.array([[-3, 5, 10, 1]], np.int8))[0]
    assert out.tolist() == [3]


@needs_cc
@pytest.mark.parametrize("seed", range(12))
def test_c_kernel_equals_runtime_over_any_axes(seed, tmp_path):
    g, _, _, _ = random_reduction("MEAN", 1000 + seed, int8=True)
    xs = random_int8(np.random.default_rng(seed), (16, *g.tensors["x"].shape[1:]))
    assert_c_equals_runtime(g, xs, tmp_path)


def test_converted_mean_over_the_last_axis_runs_in_tflm():
    g = Graph("t")
    g.add_tensor(Tensor("x", (1, 3, 5, 8)))
    g.add_tensor(const_i32("axes", [-1]))
    g.add_tensor(Tensor("m", (1,)))
    g.add_tensor(const_i32("axes2", [1]))
    g.add_tensor(Tensor("y", (1,)))
    g.add_node(Node("m", "MEAN", ["x", "axes"], ["m"], {"keep_dims": True}))
    g.add_node(Node("y", "MEAN", ["m", "axes2"], ["y"], {"keep_dims": False}))
    g.inputs, g.outputs = ["x"], ["y"]
    g.infer_shapes()
    rng = np.random.default_rng(0)
    q = convert_and_match_tflm(g, rng.normal(size=(32, 3, 5, 8)).astype(np.float32),
                               rng.normal(size=(8, 3, 5, 8)).astype(np.float32))
    assert [n.op for n in q.nodes] == ["MEAN", "MEAN"] and q.tensors[q.outputs[0]].shape == (1, 5, 1)


@pytest.mark.parametrize("axes,keep", [([1], 1), ([2], 0), ([3], 0), ([1, 3], 0), ([2, 3], 1), ([-1, 1], 1),
                                       ([1, 2, 3], 0), (None, 1)])
def test_onnx_reduce_mean_over_any_axes_matches_ort(tmp_path, axes, keep):
    attrs = {"keepdims": keep} if axes is None else {"axes": axes, "keepdims": keep}
    path = onnx_file(tmp_path, [helper.make_node("ReduceMean", ["x"], ["y"], **attrs)], (1, 3, 4, 5),
                     opset=13)
    x = np.random.default_rng(0).normal(size=(3, 3, 4, 5)).astype(np.float32)
    g = assert_onnx_matches_ort(path, x)
    assert "MEAN" in {n.op for n in g.nodes}


def test_onnx_reduce_mean_axes_as_input_from_opset_18(tmp_path):
    path = onnx_file(tmp_path, [helper.make_node("ReduceMean", ["x", "ax"], ["y"], keepdims=0)], (1, 6, 4),
                     inits=[("ax", np.array([1], np.int64))], opset=18)
    assert_onnx_matches_ort(path, np.random.default_rng(1).normal(size=(2, 6, 4)).astype(np.float32))


class _Means(torch.nn.Module):
    def __init__(self, dims, keep):
        super().__init__()
        self.dims, self.keep = dims, keep

    def forward(self, x):
        return x.mean(dim=self.dims, keepdim=self.keep)


@pytest.mark.parametrize("shape,dims,keep",
                         [((3, 4, 5), 1, False), ((3, 4, 5), 2, False), ((3, 4, 5), 3, True),
                          ((3, 4, 5), (2, 3), False), ((3, 4, 5), -1, False),
                          ((6, 7), -1, True), ((6, 7), 1, False), ((10,), 1, True)])
def test_torch_mean_over_any_dim_matches_torch(shape, dims, keep):
    assert_torch_matches(_Means(dims, keep), shape)


def test_mean_over_the_batch_axis_without_keepdim_is_refused():
    from tinyopt.errors import UnsupportedOpError

    with pytest.raises(UnsupportedOpError, match="batch axis"):
        assert_torch_matches(_Means(0, False), (3, 4, 5))


@needs_cc
def test_c_kernel_over_unit_axes_only(tmp_path):
    """Axes of size 1 only: nothing to walk, each output is its one input requantized."""
    g = single_op_model("MEAN", [qtensor("x", (1, 1, 5, 3), 0.05, 2), const_i32("axes", [1])],
                        qtensor("y", (1,), 0.07, -4), dict(keep_dims=False))
    assert_c_equals_runtime(g, random_int8(np.random.default_rng(0), (12, 1, 5, 3)), tmp_path)
