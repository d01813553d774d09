"""Layer normalization at the doors (nn.LayerNorm, F.layer_norm, ONNX LayerNormalization and the exported
ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div/Mul/Add pattern): decomposed into MEAN, SQUARED_DIFFERENCE, ADD,
RSQRT, SUB, MUL and ADD with the same float function (checked against PyTorch and ONNX Runtime), and the
decomposition converted to int8 runs bit-exact in TFLM."""

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
    export_onnx,
    onnx_file,
    to_nhwc,
)
from tinyopt.runtime import Interpreter

pytestmark = pytest.mark.usefixtures("one_torch_thread")
DECOMPOSED = ["MEAN", "SQUARED_DIFFERENCE", "MEAN", "ADD", "RSQRT", "SUB", "MUL", "MUL", "ADD"]


def _layer_norm(shape):
    torch.manual_seed(0)
    m = torch.nn.LayerNorm(shape, eps=1e-4)
    with torch.no_grad():
        m.weight.uniform_(0.5, 1.5)
        m.bias.uniform_(-0.5, 0.5)
    return m


@pytest.mark.parametrize("in_shape,norm_shape", [((6, 8), (8,)), ((3, 4, 5), (5,)), ((3, 4, 5), (4, 5)),
                                                 ((3, 4, 5), (3, 4, 5)), ((16,), (16,))])
def test_nn_layer_norm_matches_torch(in_shape, norm_shape):
    g = assert_torch_matches(_layer_norm(norm_shape), in_shape, atol=1e-4)
    assert [n.op for n in g.nodes] == DECOMPOSED


def test_f_layer_norm_without_affine_matches_torch():
    class M(torch.nn.Module):
        def forward(self, x):
            return F.layer_norm(x, (x.shape[-1],))

    g = assert_torch_matches(M(), (5, 7), atol=1e-4)
    assert [n.op for n in g.nodes] == DECOMPOSED[:7]


@pytest.mark.parametrize("axis", [-1, 2, 1])
def test_onnx_layer_normalization_matches_ort(tmp_path, axis):
    shape = (1, 3, 4, 5)
    rng = np.random.default_rng(0)
    scale = rng.uniform(0.5, 1.5, size=shape[axis % 4:]).astype(np.float32)
    bias = rng.uniform(-0.5, 0.5, size=shape[axis % 4:]).astype(np.float32)
    node = helper.make_node("LayerNormalization", ["x", "s", "b"], ["y"], axis=axis, epsilon=1e-3)
    path = onnx_file(tmp_path, [node], shape, inits=[("s", scale), ("b", bias)], opset=17)
    g = assert_onnx_matches_ort(path, rng.normal(size=(2, *shape[1:])).astype(np.float32), atol=1e-4)
    assert [n.op for n in g.nodes] == DECOMPOSED


def test_exported_layer_norm_pattern_matches_ort_and_converts(tmp_path):
    """torch.onnx at opset 14 writes LayerNorm as ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div, Mul, Add:
    each op goes through its own record (Pow 2 -> MUL, Div by Sqrt -> MUL by RSQRT), and converts."""
    path = export_onnx(_layer_norm((8,)), (6, 8), tmp_path / "ln.onnx", opset=14)
    import onnx

    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert "Pow" in ops and "Sqrt" in ops and "Div" in ops  # the exporter's decomposed pattern
    rng = np.random.default_rng(1)
    g = assert_onnx_matches_ort(path, rng.normal(size=(3, 6, 8)).astype(np.float32), atol=1e-4)
    assert {n.op for n in g.nodes} == {"MEAN", "SUB", "MUL", "ADD", "RSQRT"}
    xs = to_nhwc(rng.normal(size=(8, 6, 8)).astype(np.float32))
    convert_and_match_tflm(g, to_nhwc(rng.normal(size=(64, 6, 8)).astype(np.float32)), xs)


def test_converted_layer_norm_runs_in_tflm_and_stays_close():
    from tinyopt.graph.torch_import import from_torch

    m = _layer_norm((16,)).eval()
    g = from_torch(m, (5, 16))
    rng = np.random.default_rng(2)
    calib = to_nhwc((rng.normal(size=(128, 5, 16)) * 2 + 1).astype(np.float32))
    xs = to_nhwc((rng.normal(size=(8, 5, 16)) * 2 + 1).astype(np.float32))
    q = convert_and_match_tflm(g, calib, xs)
    assert [n.op for n in q.nodes] == DECOMPOSED
    x = q.tensors[q.inputs[0]]
    xq = np.clip(np.round(xs / x.quant.scale[0]) + x.quant.zero_point[0], -128, 127).astype(np.int8)
    got = dequantized(q, Interpreter(q).run(xq)[0])
    want = Interpreter(g).run(xs)[0]
    # int8 end to end: within a few percent of the output range
    assert np.abs(got - want).max() < 0.08 * (want.max() - want.min())


def test_layer_norm_over_the_batch_axis_is_refused():
    from tinyopt.errors import UnsupportedOpError

    with pytest.raises(UnsupportedOpError, match="layer norm over the last 2 axes"):
        assert_torch_matches(torch.nn.LayerNorm((1, 16)), (16,))


def test_f_layer_norm_with_weight_tensors_is_refused():
    from tinyopt.errors import UnsupportedOpError
    from tinyopt.graph.torch_import import from_torch

    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(6))

        def forward(self, x):
            return F.layer_norm(x, (6,), self.w)

    with pytest.raises(UnsupportedOpError, match="tensor attribute used directly"):  # the importer's rule
        from_torch(M(), (6,))
