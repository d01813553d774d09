"""LOG_SOFTMAX against TFLM (60 seeded configurations, int8 with its fixed 16/256 output and float32),
the fixed-point log by hand, convert, and the doors over any axis."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from onnx import helper

from ops._oracles import (
    assert_onnx_matches_ort,
    assert_torch_matches,
    convert_and_match_tflm,
    dequantized,
    onnx_file,
)
from runtime._reference import assert_matches_reference, qtensor, random_int8
from tinyopt.errors import ModelFormatError
from tinyopt.export.tflite import single_op_model
from tinyopt.graph.ir import Graph, Node, Tensor
from tinyopt.ops._gemmlowp import log_x_for_x_greater_than_or_equal_to_1
from tinyopt.runtime import Interpreter

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("seed", range(60))
def test_log_softmax_matches_tflm(seed):
    rng = np.random.default_rng(seed)
    rank = int(rng.integers(2, 5))
    shape = (1, *(int(d) for d in rng.integers(1, 12 if seed % 2 else 8, size=rank - 1)))  # float: TFLM's
    if seed % 2:  # default arena (10x the small model) holds a few kB of float32
        x = qtensor("x", shape, float(rng.uniform(0.005, 0.5)), int(rng.integers(-30, 30)))
        g = single_op_model("LOG_SOFTMAX", [x], qtensor("y", (1,), 16 / 256, 127))
        xs = random_int8(rng, (5, *shape[1:]))
    else:
        g = single_op_model("LOG_SOFTMAX", [Tensor("x", shape)], Tensor("y", (1,)))
        xs = (rng.normal(size=(5, *shape[1:])) * 3).astype(np.float32)
    out = assert_matches_reference(g, xs)[0]
    if seed % 2 == 0:
        x64 = xs.astype(np.float64)
        want = x64 - x64.max(-1, keepdims=True)
        want = want - np.log(np.exp(want).sum(-1, keepdims=True))
        np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)


def test_fixed_point_log_by_hand():
    # Q12.19 inputs 1, e and 100 -> Q5.26 logs 0, 1 and 4.605 (within a few units of 2^-26)
    x = np.array([1 << 19, int(np.e * (1 << 19)), 100 << 19])
    got = log_x_for_x_greater_than_or_equal_to_1(x, 12, 5) / float(1 << 26)
    np.testing.assert_allclose(got, np.log([1.0, np.e, 100.0]), atol=1e-6)


def test_int8_output_parameters_are_fixed():
    g = single_op_model("LOG_SOFTMAX", [qtensor("x", (1, 4), 0.1, 0)], qtensor("y", (1,), 1 / 256, -128))
    with pytest.raises(ModelFormatError, match="scale 0.0625 and zero point 127"):
        Interpreter(g)


def test_converted_log_softmax_runs_in_tflm():
    g = Graph("t")
    g.add_tensor(Tensor("x", (1, 10)))
    g.add_tensor(Tensor("y", (1,)))
    g.add_node(Node("y", "LOG_SOFTMAX", ["x"], ["y"]))
    g.inputs, g.outputs = ["x"], ["y"]
    g.infer_shapes()
    rng = np.random.default_rng(0)
    xs = (rng.normal(size=(8, 10)) * 2).astype(np.float32)
    q = convert_and_match_tflm(g, (rng.normal(size=(64, 10)) * 2).astype(np.float32), xs)
    x = q.tensors[q.inputs[0]]
    xq = np.clip(np.round(xs / x.quant.scale[0]) + x.quant.zero_point[0], -128, 127).astype(np.int8)
    got = dequantized(q, Interpreter(q).run(xq)[0])
    want = torch.log_softmax(torch.from_numpy(xs), dim=1).numpy()
    big = want > -7  # below -8 the int8 output saturates at -128 (16/256 steps under 127)
    np.testing.assert_allclose(got[big], want[big], atol=0.1)


@pytest.mark.parametrize("axis", [1, 2, 3, -1])
def test_onnx_log_softmax_matches_ort(tmp_path, axis):
    path = onnx_file(tmp_path, [helper.make_node("LogSoftmax", ["x"], ["y"], axis=axis)], (1, 3, 4, 5),
                     opset=13)
    g = assert_onnx_matches_ort(path, np.random.default_rng(0).normal(size=(2, 3, 4, 5)).astype(np.float32))
    assert [n.op for n in g.nodes].count("LOG_SOFTMAX") == 1


@pytest.mark.parametrize("shape,dim", [((3, 4, 5), 1), ((3, 4, 5), 2), ((6, 7), 2), ((9,), -1)])
def test_torch_log_softmax_matches_torch(shape, dim):
    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = torch.nn.LogSoftmax(dim=dim)

        def forward(self, x):
            return self.m(x) + torch.log_softmax(x, dim)

    assert_torch_matches(M(), shape)
