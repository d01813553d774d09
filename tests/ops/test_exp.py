"""EXP against TFLM (60 seeded shapes, float32: TFLM has no int8 EXP), the int8 refusal and the float island
convert keeps it in, the doors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from onnx import helper

from ops._oracles import assert_onnx_matches_ort, assert_torch_matches, onnx_file, random_unary
from runtime._reference import assert_matches_reference, qtensor, random_int8
from tinyopt.errors import UnsupportedOpError
from tinyopt.export.tflite import single_op_model
from tinyopt.graph.ir import Graph, Node, Tensor
from tinyopt.runtime import Interpreter

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("seed", range(60))
def test_exp_matches_tflm(seed):
    g, xs = random_unary("EXP", seed)
    out = assert_matches_reference(g, xs)[0]
    np.testing.assert_allclose(out, np.exp(xs.astype(np.float64)), rtol=1e-6)


def test_int8_exp_is_refused_in_the_runtime_and_converts_as_a_float_island():
    """TFLM has no int8 EXP: an int8 node is refused; convert keeps it in float between DEQUANTIZE and
    QUANTIZE (the TFLite converter's float fallback), which TFLM runs and our runtime equals bit for bit."""
    g = single_op_model("EXP", [qtensor("x", (1, 4), 0.1, 0)], qtensor("y", (1,), 0.1, 0))
    with pytest.raises(UnsupportedOpError, match="TFLM runs EXP in float32 only"):
        Interpreter(g)
    f = Graph("t")
    f.add_tensor(Tensor("x", (1, 4)))
    f.add_tensor(Tensor("y", (1,)))
    f.add_node(Node("y", "EXP", ["x"], ["y"]))
    f.inputs, f.outputs = ["x"], ["y"]
    from tinyopt.convert import convert_graph

    rng = np.random.default_rng(0)
    q = convert_graph(f.infer_shapes(), rng.uniform(-2, 1, size=(16, 4)).astype(np.float32))
    assert [n.op for n in q.nodes] == ["DEQUANTIZE", "EXP", "QUANTIZE"]
    assert q.tensors[q.inputs[0]].dtype == q.tensors[q.outputs[0]].dtype == "int8"
    xs = random_int8(rng, (8, 4))
    out = assert_matches_reference(q, xs)[0]
    s, z = float(q.tensors[q.outputs[0]].quant.scale[0]), int(q.tensors[q.outputs[0]].quant.zero_point[0])
    xq = q.tensors[q.inputs[0]].quant
    x = (xs.astype(np.float64) - int(xq.zero_point[0])) * float(xq.scale[0])
    assert np.abs((out.astype(np.int64) - z) * s - np.exp(x)).max() <= s  # one output step of exp by hand


def test_onnx_exp_matches_ort(tmp_path):
    path = onnx_file(tmp_path, [helper.make_node("Exp", ["x"], ["y"])], (1, 3, 4, 5), opset=13)
    assert_onnx_matches_ort(path, np.random.default_rng(0).normal(size=(2, 3, 4, 5)).astype(np.float32))


def test_torch_exp_matches_torch():
    class M(torch.nn.Module):
        def forward(self, x):
            return torch.exp(x) + x.exp()

    g = assert_torch_matches(M(), (3, 4, 5))
    assert [n.op for n in g.nodes].count("EXP") == 2
