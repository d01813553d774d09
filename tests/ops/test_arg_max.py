"""ARG_MAX against TFLM (60 seeded shapes and axes, int8 and float32, ties included), NaN rows, convert
(int32 indices kept unquantized), and the ONNX / PyTorch doors with and without keepdims."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from onnx import helper

from ops._oracles import const_i32, convert_and_match_tflm, from_graph_layout, ort_run, to_nhwc
from runtime._reference import assert_matches_reference, qtensor
from tinyopt.export.tflite import single_op_model
from tinyopt.graph.ir import Graph, Node, Tensor
from tinyopt.runtime import Interpreter

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _case(seed: int):
    rng = np.random.default_rng(seed)
    rank = int(rng.integers(2, 6))
    shape = (1, *(int(d) for d in rng.integers(1, 7, size=rank - 1)))
    axis = int(rng.integers(1, rank))
    if rng.random() < 0.3:
        axis -= rank
    return rng, shape, axis


@pytest.mark.parametrize("seed", range(60))
def test_arg_max_matches_tflm(seed):
    rng, shape, axis = _case(seed)
    if seed % 2:
        x = qtensor("x", shape, 0.1, -4)
        xs = rng.integers(-5, 5, size=(5, *shape[1:])).astype(np.int8)  # few values: many ties
    else:
        x = Tensor("x", shape)
        xs = np.round(rng.normal(size=(5, *shape[1:])), 1).astype(np.float32)
    g = single_op_model("ARG_MAX", [x, const_i32("axis", [axis])], Tensor("y", (1,), "int32"))
    out = assert_matches_reference(g, xs)[0]
    want = np.argmax(xs, axis=axis % len(shape))  # numpy: the first maximum as well
    np.testing.assert_array_equal(out.reshape(-1), want.reshape(-1))


def test_nan_rows_as_tflm_scans_them():
    """TFLM moves on a strict '>' from index 0: a NaN there is never beaten, a later one never wins."""
    g = single_op_model("ARG_MAX", [Tensor("x", (1, 4)), const_i32("axis", [1])], Tensor("y", (1,), "int32"))
    xs = np.array([[np.nan, 1.0, np.nan, 3.0], [1.0, np.nan, 3.0, np.nan],
                   [-np.inf, np.nan, -np.inf, np.nan]],
                  np.float32)
    out = assert_matches_reference(g, xs)[0]
    assert out.tolist() == [0, 2, 0]


def test_converted_classifier_head_keeps_int32_indices():
    g = Graph("t")
    g.add_tensor(Tensor("x", (1, 6, 10)))
    g.add_tensor(Tensor("w", (4, 10), data=np.random.default_rng(0).normal(size=(4, 10)).astype(np.float32)))
    g.add_tensor(Tensor("h", (1,)))
    g.add_tensor(const_i32("axis", [2]))
    g.add_tensor(Tensor("y", (1,), "int32"))
    g.add_node(Node("h", "FULLY_CONNECTED", ["x", "w"], ["h"], {"activation": "NONE", "keep_num_dims": True}))
    g.add_node(Node("y", "ARG_MAX", ["h", "axis"], ["y"]))
    g.inputs, g.outputs = ["x"], ["y"]
    g.infer_shapes()
    rng = np.random.default_rng(1)
    xs = rng.normal(size=(8, 6, 10)).astype(np.float32)
    q = convert_and_match_tflm(g, rng.normal(size=(64, 6, 10)).astype(np.float32), xs)
    y = q.tensors[q.outputs[0]]
    assert y.dtype == "int32" and y.quant is None
    from tinyopt.convert import convert_graph

    # no DEQUANTIZE of indices
    qf = convert_graph(g, rng.normal(size=(64, 6, 10)).astype(np.float32), io="float")
    assert qf.tensors[qf.outputs[0]].dtype == "int32" and qf.nodes[-1].op == "ARG_MAX"
    float_idx = Interpreter(g).run(xs)[0]
    assert (Interpreter(qf).run(xs)[0] == float_idx).mean() > 0.9


@pytest.mark.parametrize("axis,keep", [(1, 1), (1, 0), (2, 0), (3, 1), (3, 0), (-1, 0)])
def test_onnx_arg_max_matches_ort(tmp_path, axis, keep):
    import onnx

    node = helper.make_node("ArgMax", ["x"], ["y"], axis=axis, keepdims=keep)
    graph = helper.make_graph([node], "t",
                              [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 4, 5])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.INT64, None)])
    model = onnx.shape_inference.infer_shapes(helper.make_model(graph,
                                                                opset_imports=[helper.make_opsetid("", 13)]))
    model.ir_version = 8
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    from tinyopt.graph.onnx_import import load_onnx

    x = np.random.default_rng(0).normal(size=(3, 3, 4, 5)).astype(np.float32)
    want = ort_run(path, x)
    g = load_onnx(path)
    got = Interpreter(g).run(to_nhwc(x))[0]
    assert got.dtype == np.int32
    if want.ndim == 4:  # keepdims on NCHW: our NHWC graph holds it transposed
        want = want.transpose(0, 2, 3, 1)
    elif want.ndim == 3 and axis % 4 in (2, 3):  # (N, C, L) left: the ncl view (N, 1, L, C)
        want = want.transpose(0, 2, 1)[:, None]
    np.testing.assert_array_equal(got.reshape(want.shape), want)


@pytest.mark.parametrize("shape,dim,keep",
                         [((3, 4, 5), 1, False), ((3, 4, 5), 2, True), ((3, 4, 5), 3, False),
                          ((6, 7), 2, False), ((6, 7), 1, True), ((9,), 1, False)])
def test_torch_argmax_matches_torch(shape, dim, keep):
    from tinyopt.graph.torch_import import from_torch

    class M(torch.nn.Module):
        def forward(self, x):
            return torch.argmax(x, dim=dim, keepdim=keep)

    g = from_torch(M(), shape)
    x = torch.randn(4, *shape, generator=torch.Generator().manual_seed(0))
    want = M()(x).numpy()
    got = Interpreter(g).run(to_nhwc(x.numpy()))[0]
    np.testing.assert_array_equal(from_graph_layout(got, want.shape), want)


def test_check_accepts_int32_indices_and_their_reshape(tmp_path):
    import onnx

    from tinyopt.graph.onnx_import import load_onnx
    from tinyopt.runtime.support import check_support

    node = helper.make_node("ArgMax", ["x"], ["y"], axis=1, keepdims=1)
    graph = helper.make_graph([node], "t",
                              [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 4, 5])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.INT64, None)])
    model = onnx.shape_inference.infer_shapes(helper.make_model(graph,
                                                                opset_imports=[helper.make_opsetid("", 13)]))
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "m.onnx"))
    g = load_onnx(tmp_path / "m.onnx")
    rows = check_support(g, "tflm")
    assert [r.op for r in rows] == ["ARG_MAX", "RESHAPE"] and all(r.supported for r in rows), rows


def test_refusals_name_the_fix(tmp_path):
    import onnx

    from tinyopt.errors import UnsupportedOpError
    from tinyopt.graph.onnx_import import load_onnx
    from tinyopt.graph.torch_import import from_torch

    node = helper.make_node("ArgMax", ["x"], ["y"], axis=1, keepdims=0, select_last_index=1)
    graph = helper.make_graph([node], "t",
                              [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.INT64, None)])
    model = onnx.shape_inference.infer_shapes(helper.make_model(graph,
                                                                opset_imports=[helper.make_opsetid("", 13)]))
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "m.onnx"))
    with pytest.raises(UnsupportedOpError, match="select_last_index") as e:
        load_onnx(tmp_path / "m.onnx")
    assert "first index of a tie" in str(e.value)

    class NoDim(torch.nn.Module):
        def forward(self, x):
            return torch.argmax(x)

    with pytest.raises(UnsupportedOpError, match="give argmax a dim"):
        from_torch(NoDim(), (5,))
