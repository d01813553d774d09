"""CONCATENATION against TFLM (60 seeded shapes, axes and input counts; int8 and float32), TFLM's limits
(no fused activation, at most 10 inputs), converted (inputs requantized to the output's parameters),
through the doors (torch.cat of tensors or of a chunk() tuple, ONNX Concat) and in C."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ops._data_movement import (
    HAVE_CC,
    act,
    c_equals_runtime,
    ci,
    converted_matches_tflm,
    export_onnx,
    matches_tflm,
    onnx_matches,
    ops_of,
    rows,
    torch_matches,
)
from runtime._reference import qtensor
from tinyopt.errors import UnsupportedOpError
from tinyopt.export.c import generate_sources
from tinyopt.export.tflite import single_op_model
from tinyopt.graph.ir import Graph, Node, Tensor
from tinyopt.graph.passes import fuse_activations
from tinyopt.runtime import Interpreter

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _config(seed: int):
    rng = np.random.default_rng(seed)
    rank = int(rng.integers(2, 6))
    base = [1, *(int(d) for d in rng.integers(1, 5, size=rank - 1))]
    axis = int(rng.integers(1, rank))
    shapes = []
    for _ in range(int(rng.integers(1, 5))):
        s = list(base)
        s[axis] = int(rng.integers(1, 4))
        shapes.append(tuple(s))
    return rng, shapes, axis - rank if rng.random() < 0.3 else axis


@pytest.mark.parametrize("seed", range(60))
def test_matches_tflm(seed):
    rng, shapes, axis = _config(seed)
    is_int = seed % 2 == 1
    ins = [act(f"x{k}", s, is_int) for k, s in enumerate(shapes)]
    g = single_op_model("CONCATENATION", ins, act("y", (1,), is_int), {"axis": axis, "activation": "NONE"})
    xs = [rows(rng, s, is_int) for s in shapes]
    out = matches_tflm(g, xs)[0]
    np.testing.assert_array_equal(out, np.concatenate(xs, axis=axis % len(shapes[0])))  # independently: numpy


def test_tflm_limits_are_refused():
    g = single_op_model("CONCATENATION", [Tensor(f"x{k}", (1, 2)) for k in range(11)], Tensor("y", (1,)),
                        {"axis": 1, "activation": "NONE"})
    with pytest.raises(UnsupportedOpError, match="11 inputs") as e:
        Interpreter(g)
    assert "CONCATENATION" in str(e.value) and "Fix:" in str(e.value)
    g = single_op_model("CONCATENATION", [Tensor("a", (1, 2)), Tensor("b", (1, 2))], Tensor("y", (1,)),
                        {"axis": 1, "activation": "RELU"})
    with pytest.raises(UnsupportedOpError, match="fused RELU"):
        Interpreter(g)


def test_a_relu_after_a_concatenation_is_not_fused_into_it():
    g = Graph("cat")
    for t in (Tensor("a", (1, 2)), Tensor("b", (1, 3)), Tensor("c", (1,)), Tensor("y", (1,))):
        g.add_tensor(t)
    g.add_node(Node("cat", "CONCATENATION", ["a", "b"], ["c"], {"axis": 1, "activation": "NONE"}))
    g.add_node(Node("relu", "RELU", ["c"], ["y"]))
    g.inputs, g.outputs = ["a", "b"], ["y"]
    assert ops_of(fuse_activations(g.infer_shapes().validate())) == ["CONCATENATION", "RELU"]


def test_converted_graph_requantizes_its_inputs_and_matches_tflm():
    g = Graph("cat")
    shift = np.full((1, 3, 2), 4.0, np.float32)
    for t in (Tensor("x", (1, 3, 2)), Tensor("k", (1, 3, 2), data=shift), Tensor("h", (1,)),
              Tensor("y", (1,))):
        g.add_tensor(t)
    g.add_node(Node("add", "ADD", ["x", "k"], ["h"], {"activation": "NONE"}))
    g.add_node(Node("cat", "CONCATENATION", ["h", "x"], ["y"], {"axis": 2, "activation": "NONE"}))
    g.inputs, g.outputs = ["x"], ["y"]
    q = converted_matches_tflm(g.infer_shapes().validate())
    assert "QUANTIZE" in ops_of(q)


class Cat(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 1)

    def forward(self, x):
        y = self.conv(x)
        return torch.cat([torch.cat(y.chunk(2, 1)[::-1], 1), x, y[:, :1]], dim=1)


def test_cat_matches_torch_and_onnx(tmp_path):
    assert ops_of(torch_matches(Cat(), (3, 4, 2))).count("CONCATENATION") == 2
    onnx_matches(export_onnx(Cat(), (3, 4, 2), tmp_path / "c.onnx"), (3, 4, 2))


def test_cat_of_a_chunk_tuple():
    class Swap(torch.nn.Module):
        def forward(self, x):
            return torch.cat(x.chunk(3, dim=2), dim=1)

    torch_matches(Swap(), (2, 3, 6))


@pytest.mark.skipif(not HAVE_CC, reason="no host C compiler (cc)")
@pytest.mark.parametrize("axis,sizes,order", [(3, [1, 2, 3], [2, 0, 1, 0]), (1, [1, 3], [1, 0]),
                                              (2, [2, 2, 2], [1, 1, 2])])
def test_c_library_equals_runtime(axis, sizes, order, tmp_path):
    """An input split into parts of different sizes, joined again in another order (a part twice)."""
    g = Graph("cat")
    parts = [f"p{k}" for k in range(len(sizes))]
    for t in (qtensor("x", (1, 4, 6, 6), 0.1, 2), ci("s", sizes), ci("ax", [axis]),
              *(qtensor(p, (1,), 0.1, 2) for p in parts), qtensor("y", (1,), 0.1, 2)):
        g.add_tensor(t)
    g.add_node(Node("split", "SPLIT_V", ["x", "s", "ax"], parts, {"num_splits": len(sizes)}))
    g.add_node(Node("cat", "CONCATENATION", [parts[k] for k in order], ["y"],
                    {"axis": axis, "activation": "NONE"}))
    g.inputs, g.outputs = ["x"], ["y"]
    c_equals_runtime(g.infer_shapes().validate(), tmp_path)


def test_c_refuses_a_constant_operand():
    k = qtensor("k", (1, 2), 0.1, 0, data=np.ones((1, 2), np.int8))
    g = single_op_model("CONCATENATION", [qtensor("x", (1, 2), 0.1, 0), k], qtensor("y", (1,), 0.1, 0),
                        {"axis": 1, "activation": "NONE"})
    with pytest.raises(UnsupportedOpError, match="constant operand 'k'") as e:
        generate_sources(g)
    assert "Fix:" in str(e.value)
