"""LOG against TFLM (60 seeded shapes, float32: TFLM has no int8 LOG), and the doors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from onnx import helper

from ops._oracles import assert_onnx_matches_ort, assert_torch_matches, onnx_file, random_unary
from runtime._reference import assert_matches_reference, qtensor
from tinyopt.errors import UnsupportedOpError
from tinyopt.export.tflite import single_op_model
from tinyopt.graph.ir import Tensor
from tinyopt.runtime import Interpreter

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("seed", range(60))
def test_log_matches_tflm(seed):
    g, xs = random_unary("LOG", seed, low=0.01)
    out = assert_matches_reference(g, xs)[0]
    np.testing.assert_allclose(out, np.log(xs.astype(np.float64)), rtol=1e-5, atol=1e-6)


def test_log_of_zero_and_negatives_as_tflm():
    g = single_op_model("LOG", [Tensor("x", (1, 3))], Tensor("y", (1,)))
    out = Interpreter(g).run(np.array([[0.0, -1.0, 1.0]], np.float32))[0]
    assert out[0, 0] == -np.inf and np.isnan(out[0, 1]) and out[0, 2] == 0.0


def test_int8_log_is_refused():
    g = single_op_model("LOG", [qtensor("x", (1, 4), 0.1, 0)], qtensor("y", (1,), 0.1, 0))
    with pytest.raises(UnsupportedOpError, match="float32 only"):
        Interpreter(g)


def test_onnx_log_matches_ort(tmp_path):
    path = onnx_file(tmp_path, [helper.make_node("Exp", ["x"], ["e"]), helper.make_node("Log", ["e"], ["y"])],
                     (1, 3, 4), opset=13)
    assert_onnx_matches_ort(path, np.random.default_rng(0).normal(size=(2, 3, 4)).astype(np.float32))


def test_torch_log_matches_torch():
    class M(torch.nn.Module):
        def forward(self, x):
            return torch.log(x.exp() + 1)

    assert_torch_matches(M(), (6,))
