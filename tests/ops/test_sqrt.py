"""SQRT against TFLM (60 seeded shapes, float32 only in TFLM), and the power doors (ONNX Pow, torch pow,
**, square): each constant exponent becomes the operator that computes it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from onnx import helper

from ops._oracles import assert_onnx_matches_ort, assert_torch_matches, onnx_file, random_unary
from runtime._reference import assert_matches_reference
from tinyopt.errors import UnsupportedOpError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("seed", range(60))
def test_sqrt_matches_tflm(seed):
    g, xs = random_unary("SQRT", seed, low=0.0)
    out = assert_matches_reference(g, xs)[0]
    np.testing.assert_allclose(out, np.sqrt(xs.astype(np.float64)), rtol=1e-6)


@pytest.mark.parametrize("exponent,op",
                         [(2.0, "MUL"), (0.5, "SQRT"), (-0.5, "RSQRT"), (-1.0, "DIV"), (1.0, None)])
def test_onnx_pow_with_a_constant_exponent_matches_ort(tmp_path, exponent, op):
    nodes = [helper.make_node("Exp", ["x"], ["e"]), helper.make_node("Pow", ["e", "p"], ["y"])]
    path = onnx_file(tmp_path, nodes, (1, 3, 4), inits=[("p", np.float32(exponent))], opset=13)
    g = assert_onnx_matches_ort(path, np.random.default_rng(0).normal(size=(2, 3, 4)).astype(np.float32))
    assert [n.op for n in g.nodes] == ["EXP"] + ([op] if op else [])


def test_onnx_pow_with_another_exponent_is_refused(tmp_path):
    path = onnx_file(tmp_path, [helper.make_node("Pow", ["x", "p"], ["y"])], (1, 4),
                     inits=[("p", np.float32(3.0))], opset=13)
    from tinyopt.graph.onnx_import import load_onnx

    with pytest.raises(UnsupportedOpError, match="exponent 3") as e:
        load_onnx(path)
    assert "Pow" in str(e.value) and "Fix:" in str(e.value)


def test_torch_sqrt_and_powers_match_torch():
    class M(torch.nn.Module):
        def forward(self, x):
            v = x * x + 1
            return (torch.sqrt(v) + v ** 0.5 + torch.pow(v, -0.5) + x ** 2 + torch.square(x) + v.pow(-1)
                    + v ** 1)

    g = assert_torch_matches(M(), (3, 4, 5))
    ops = [n.op for n in g.nodes]
    assert ops.count("SQRT") == 2 and ops.count("RSQRT") == 1 and ops.count("DIV") == 1
