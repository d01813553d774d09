"""L2_NORMALIZATION against TFLM (60 seeded configurations, int8 with its fixed 1/128 output and float32),
convert, and the doors (F.normalize, ONNX LpNormalization) over any axis."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from onnx import helper

from ops._oracles import (
    assert_onnx_matches_ort,
    assert_torch_matches,
    convert_and_match_tflm,
    dequantized,
    onnx_file,
)
from runtime._reference import assert_matches_reference, qtensor, random_int8
from tinyopt.errors import ModelFormatError, UnsupportedOpError
from tinyopt.export.tflite import single_op_model
from tinyopt.graph.ir import Graph, Node, Tensor
from tinyopt.runtime import Interpreter

pytestmark = pytest.mark.usefixtures("one_torch_thread")
NONE = {"activation": "NONE"}


@pytest.mark.parametrize("seed", range(60))
def test_l2_normalization_matches_tflm(seed):
    rng = np.random.default_rng(seed)
    rank = int(rng.integers(2, 5))
    shape = (1, *(int(d) for d in rng.integers(1, 9, size=rank - 1)))
    if seed % 2:
        x = qtensor("x", shape, float(rng.uniform(0.005, 0.5)), int(rng.integers(-30, 30)))
        g = single_op_model("L2_NORMALIZATION", [x], qtensor("y", (1,), 1 / 128, 0), NONE)
        xs = random_int8(rng, (5, *shape[1:]))
    else:
        g = single_op_model("L2_NORMALIZATION", [Tensor("x", shape)], Tensor("y", (1,)), NONE)
        xs = (rng.normal(size=(5, *shape[1:])) * 3).astype(np.float32)
    out = assert_matches_reference(g, xs)[0]
    if seed % 2 == 0:
        want = xs / np.maximum(np.linalg.norm(xs.astype(np.float64), axis=-1, keepdims=True), 1e-6)
        np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6)


def test_int8_by_hand():
    # (3, 4) at zero point 0: norm 5 -> 0.6, 0.8 -> 76.8, 102.4 in 1/128 steps -> 77, 102
    g = single_op_model("L2_NORMALIZATION", [qtensor("x", (1, 2), 0.1, 0)], qtensor("y", (1,), 1 / 128, 0),
                        NONE)
    assert assert_matches_reference(g, np.array([[3, 4]], np.int8))[0].tolist() == [[77, 102]]


def test_refusals_name_the_fix():
    g = single_op_model("L2_NORMALIZATION", [qtensor("x", (1, 2), 0.1, 0)], qtensor("y", (1,), 0.1, 0), NONE)
    with pytest.raises(ModelFormatError, match="scale 0.0078125"):
        Interpreter(g)
    g = single_op_model("L2_NORMALIZATION", [Tensor("x", (1, 2, 2, 2, 2))], Tensor("y", (1,)), NONE)
    with pytest.raises(UnsupportedOpError, match="rank 4 or less"):
        Interpreter(g)


def test_converted_l2_normalization_runs_in_tflm():
    g = Graph("t")
    g.add_tensor(Tensor("x", (1, 5, 16)))
    g.add_tensor(Tensor("y", (1,)))
    g.add_node(Node("y", "L2_NORMALIZATION", ["x"], ["y"], dict(NONE)))
    g.inputs, g.outputs = ["x"], ["y"]
    g.infer_shapes()
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(8, 5, 16)).astype(np.float32)
    q = convert_and_match_tflm(g, rng.normal(size=(64, 5, 16)).astype(np.float32), xs)
    x = q.tensors[q.inputs[0]]
    xq = np.clip(np.round(xs / x.quant.scale[0]) + x.quant.zero_point[0], -128, 127).astype(np.int8)
    got = dequantized(q, Interpreter(q).run(xq)[0])
    seen = xq.astype(np.float64) - x.quant.zero_point[0]  # what the int8 model sees (clipped to its range)
    np.testing.assert_allclose(got, seen / np.linalg.norm(seen, axis=-1, keepdims=True), atol=1.01 / 128)


@pytest.mark.parametrize("axis", [1, 2, 3, -1])
def test_onnx_lp_normalization_matches_ort(tmp_path, axis):
    path = onnx_file(tmp_path, [helper.make_node("LpNormalization", ["x"], ["y"], axis=axis, p=2)],
                     (1, 3, 4, 5), opset=13)
    g = assert_onnx_matches_ort(path, np.random.default_rng(0).normal(size=(2, 3, 4, 5)).astype(np.float32))
    assert [n.op for n in g.nodes].count("L2_NORMALIZATION") == 1


@pytest.mark.parametrize("shape,dim",
                         [((3, 4, 5), 1), ((3, 4, 5), 2), ((3, 4, 5), 3), ((6, 7), 1), ((6, 7), 2),
                          ((9,), 1)])
def test_torch_normalize_matches_torch(shape, dim):
    class M(torch.nn.Module):
        def forward(self, x):
            return F.normalize(x, p=2.0, dim=dim)

    assert_torch_matches(M(), shape)
