"""PACK against TFLM (60 seeded shapes, axes and input counts; int8 and float32), converted (inputs of
different ranges requantized to the output's parameters), through the door (torch.stack) and in C."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ops._data_movement import (
    HAVE_CC,
    act,
    c_equals_runtime,
    converted_matches_tflm,
    matches_tflm,
    ops_of,
    rows,
    torch_matches,
)
from runtime._reference import qtensor
from tinyopt.errors import UnsupportedOpError
from tinyopt.export.tflite import single_op_model
from tinyopt.graph.ir import Graph, Node, Tensor
from tinyopt.runtime import Interpreter

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("seed", range(60))
def test_matches_tflm(seed):
    rng = np.random.default_rng(seed)
    rank = int(rng.integers(2, 5))
    shape = (1, *(int(d) for d in rng.integers(1, 5, size=rank - 1)))
    n = int(rng.integers(1, 5))
    axis = int(rng.integers(1, rank + 1))
    axis = axis - rank - 1 if rng.random() < 0.3 else axis
    is_int = seed % 2 == 1
    ins = [act(f"x{k}", shape, is_int) for k in range(n)]
    g = single_op_model("PACK", ins, act("y", (1,), is_int), {"values_count": n, "axis": axis})
    xs = [rows(rng, shape, is_int) for _ in range(n)]
    out = matches_tflm(g, xs)[0]
    np.testing.assert_array_equal(out, np.stack(xs, axis=axis % (rank + 1)))  # independently: numpy


def test_stack_on_the_batch_axis_is_refused():
    g = single_op_model("PACK", [Tensor("a", (1, 3)), Tensor("b", (1, 3))], Tensor("y", (1,)),
                        {"values_count": 2, "axis": 0})
    with pytest.raises(UnsupportedOpError, match="leading dimension 2, not batch 1") as e:
        Interpreter(g)
    assert "Fix:" in str(e.value)


def test_converted_graph_matches_tflm():
    """Two inputs with their own ranges: convert requantizes them to the output's parameters first."""
    g = Graph("pack")
    shift = np.linspace(2, 5, 12, dtype=np.float32).reshape(1, 4, 3)
    for t in (Tensor("x", (1, 4, 3)), Tensor("c", (1, 4, 3), data=shift), Tensor("h", (1,)),
              Tensor("y", (1,))):
        g.add_tensor(t)
    g.add_node(Node("add", "ADD", ["x", "c"], ["h"], {"activation": "NONE"}))
    g.add_node(Node("p", "PACK", ["x", "h"], ["y"], {"values_count": 2, "axis": 2}))
    g.inputs, g.outputs = ["x"], ["y"]
    g = g.infer_shapes().validate()
    q = converted_matches_tflm(g)
    assert "QUANTIZE" in ops_of(q)


def test_torch_stack_matches():
    class Stack(torch.nn.Module):
        def forward(self, x):
            return torch.stack([x, x * 2, x + 1], dim=2)

    g = torch_matches(Stack(), (5,), layout="plain")
    assert "PACK" in ops_of(g)


@pytest.mark.skipif(not HAVE_CC, reason="no host C compiler (cc)")
@pytest.mark.parametrize("axis", [1, 2, 3])
def test_c_library_equals_runtime(axis, tmp_path):
    """unstacked along the channels, stacked back in another order along a new axis (the concatenation
    kernel, one run per input per outer index)."""
    g = Graph("pack")
    parts = ["a", "b", "c"]
    for t in (qtensor("x", (1, 3, 4, 3), 0.1, 1), *(qtensor(p, (1,), 0.1, 1) for p in parts),
              qtensor("y", (1,), 0.1, 1)):
        g.add_tensor(t)
    g.add_node(Node("u", "UNPACK", ["x"], parts, {"num": 3, "axis": 3}))
    g.add_node(Node("p", "PACK", ["c", "a", "b"], ["y"], {"values_count": 3, "axis": axis}))
    g.inputs, g.outputs = ["x"], ["y"]
    c_equals_runtime(g.infer_shapes().validate(), tmp_path)
