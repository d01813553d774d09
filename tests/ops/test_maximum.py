"""MAXIMUM against TFLM (60 seeded broadcast configurations, int8 and float32), the C kernel, convert,
and the ONNX / PyTorch doors."""

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
from runtime._reference import assert_matches_reference, qtensor, random_int8
from tinyopt.errors import ModelFormatError
from tinyopt.export.tflite import single_op_model
from tinyopt.graph.ir import Graph, Node, Tensor
from tinyopt.ops._broadcast import broadcast_walk
from tinyopt.runtime import Interpreter

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _numpy_oracle(g, xs, fn):
    a = xs[0]
    b = xs[1] if len(xs) > 1 else g.tensors["b"].data
    rank = len(g.tensors["y"].shape)
    if len(xs) > 1:  # rows of a lower-rank activation: unit axes after the batch
        b = b.reshape(b.shape[:1] + (1,) * (rank - b.ndim) + b.shape[1:])
    a = a.reshape(a.shape[:1] + (1,) * (rank - a.ndim) + a.shape[1:])
    return fn(a, b)


@pytest.mark.parametrize("seed", range(60))
def test_maximum_with_broadcasting_matches_tflm(seed):
    g, xs = random_binary("MAXIMUM", seed, int8=bool(seed % 2), same_quant=True)
    out = assert_matches_reference(g, xs)[0]
    np.testing.assert_array_equal(out.reshape(-1), _numpy_oracle(g, xs, np.maximum).reshape(-1))


def test_int8_operands_with_other_quantization_are_refused():
    g = single_op_model("MAXIMUM", [qtensor("a", (1, 4), 0.1, 0), qtensor("b", (1, 4), 0.2, 0)],
                        qtensor("y", (1,), 0.1, 0))
    with pytest.raises(ModelFormatError, match="one scale and zero point"):
        Interpreter(g)


def test_broadcast_walk_merges_and_pads():
    assert broadcast_walk((1, 3, 4, 5, 2), (1, 3, 4, 5, 2), (1, 3, 1, 5, 2)) == \
        ([1, 3, 4, 10], [0, 40, 10, 1], [0, 10, 0, 1])
    assert broadcast_walk((1, 2, 3, 2, 3, 2), (1, 2, 1, 2, 1, 2), (1, 1, 3, 1, 3, 1)) is None


@needs_cc
@pytest.mark.parametrize("axes,swap", [([2], False), ([1, 2], True), ([3], False), ([1], True)])
def test_c_kernel_equals_runtime_on_two_activations(axes, swap, tmp_path):
    g = branch_graph("MAXIMUM", (1, 4, 6, 8), axes, swap=swap)
    assert_c_equals_runtime(g, random_int8(np.random.default_rng(len(axes)), (20, 4, 6, 8)), tmp_path)


@needs_cc
@pytest.mark.parametrize("shape", [(8,), (1, 6, 1), (4, 6, 8), ()])
def test_c_kernel_equals_runtime_with_a_constant(shape, tmp_path):
    rng = np.random.default_rng(len(shape))
    c = rng.integers(-128, 128, size=shape).astype(np.int8)
    q = (0.05, -3)
    for swap in (False, True):
        ins = [qtensor("x", (1, 4, 6, 8), *q), qtensor("c", shape, *q, data=c)]
        g = single_op_model("MAXIMUM", ins[::-1] if swap else ins, qtensor("y", (1,), *q))
        assert_c_equals_runtime(g, random_int8(rng, (10, 4, 6, 8)), tmp_path / str(swap))


def test_converted_maximum_of_two_branches_runs_in_tflm():
    g = Graph("t")
    g.add_tensor(Tensor("x", (1, 5, 6)))
    g.add_tensor(Tensor("c", (6,), data=np.linspace(-0.5, 0.5, 6).astype(np.float32)))
    g.add_tensor(Tensor("h", (1,)))
    g.add_tensor(Tensor("y", (1,)))
    g.add_node(Node("h", "MAXIMUM", ["x", "c"], ["h"]))
    g.add_node(Node("y", "MAXIMUM", ["h", "x"], ["y"]))
    g.inputs, g.outputs = ["x"], ["y"]
    g.infer_shapes()
    rng = np.random.default_rng(0)
    q = convert_and_match_tflm(g, rng.normal(size=(32, 5, 6)).astype(np.float32),
                               rng.normal(size=(8, 5, 6)).astype(np.float32))
    # both inputs of each MAXIMUM share its output's parameters (a QUANTIZE inserted where they differ)
    for n in (n for n in q.nodes if n.op == "MAXIMUM"):
        assert len({(float(q.tensors[t].quant.scale[0]), int(q.tensors[t].quant.zero_point[0]))
                    for t in [*n.inputs, *n.outputs]}) == 1


def test_onnx_max_of_three_operands_matches_ort(tmp_path):
    nodes = [helper.make_node("ReduceMean", ["x"], ["m"], axes=[1], keepdims=1),
             helper.make_node("Max", ["x", "m", "c"], ["y"])]
    path = onnx_file(tmp_path, nodes, (1, 3, 4, 5), inits=[("c", np.float32(0.1))], opset=13)
    g = assert_onnx_matches_ort(path, np.random.default_rng(0).normal(size=(3, 3, 4, 5)).astype(np.float32))
    assert [n.op for n in g.nodes].count("MAXIMUM") == 2


def test_torch_maximum_and_max_of_two_tensors_match_torch():
    class M(torch.nn.Module):
        def forward(self, x):
            return torch.maximum(x, x.mean(dim=2, keepdim=True)) + torch.max(x, x.sum(dim=1, keepdim=True))

    g = assert_torch_matches(M(), (3, 4, 5))
    assert [n.op for n in g.nodes].count("MAXIMUM") == 2
