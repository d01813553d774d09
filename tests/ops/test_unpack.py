"""UNPACK against TFLM (60 seeded shapes and axes; int8 and float32; every output compared), converted,
through the door (torch.unbind) and in C (the split kernel)."""

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
from tinyopt.errors import ModelFormatError
from tinyopt.export.tflite import single_op_model
from tinyopt.graph.ir import Graph, Node, Tensor

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("seed", range(60))
def test_matches_tflm(seed):
    rng = np.random.default_rng(seed)
    rank = int(rng.integers(2, 6))
    shape = (1, *(int(d) for d in rng.integers(1, 5, size=rank - 1)))
    axis = int(rng.integers(1, rank))
    is_int = seed % 2 == 1
    n = shape[axis]
    g = single_op_model("UNPACK", [act("x", shape, is_int)], [act(f"y{k}", (1,), is_int) for k in range(n)],
                        {"num": n, "axis": axis - rank if rng.random() < 0.3 else axis})
    x = rows(rng, shape, is_int)
    got = matches_tflm(g, x)
    for k, a in enumerate(got):
        np.testing.assert_array_equal(a, np.take(x, k, axis=axis))  # independently: numpy


def test_num_must_be_the_axis_size():
    with pytest.raises(ModelFormatError, match="num 2 for axis 1 of size 3") as e:
        single_op_model("UNPACK", [Tensor("x", (1, 3))], [Tensor("a", (1,)), Tensor("b", (1,))],
                        {"num": 2, "axis": 1})
    assert "UNPACK" in str(e.value) and "Fix:" in str(e.value)


def test_converted_graph_matches_tflm():
    g = single_op_model("UNPACK", [Tensor("x", (1, 2, 3, 2))], [Tensor(f"y{k}", (1,)) for k in range(3)],
                        {"num": 3, "axis": 2})
    converted_matches_tflm(g)


def test_torch_unbind_matches():
    class Unbind(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv1d(3, 4, 1)

        def forward(self, x):
            a, b, c = torch.unbind(x, 1)    # channels of (N, C, L): SPLIT, then the axis dropped
            p = self.conv(x).unbind(2)      # positions of (N, C, L)
            q = torch.stack(p, 1).unbind(1)  # a plain (N, L, C): UNPACK
            return torch.cat([c - a, b, p[3], q[0]], 1)

    g = torch_matches(Unbind(), (3, 5), layout="plain")
    assert {"UNPACK", "SPLIT"} <= set(ops_of(g))


@pytest.mark.skipif(not HAVE_CC, reason="no host C compiler (cc)")
@pytest.mark.parametrize("axis", [1, 2])
def test_c_library_equals_runtime(axis, tmp_path):
    g = Graph("unpack")
    shape = (1, 3, 4, 2)
    parts = [f"y{k}" for k in range(shape[axis])]
    for t in (qtensor("x", shape, 0.1, -2), *(qtensor(p, (1,), 0.1, -2) for p in parts),
              qtensor("z", (1,), 0.1, -2)):
        g.add_tensor(t)
    g.add_node(Node("u", "UNPACK", ["x"], parts, {"num": shape[axis], "axis": axis}))
    g.add_node(Node("c", "CONCATENATION", parts[::-1], ["z"], {"axis": 1}))
    g.inputs, g.outputs = ["x"], ["z"]
    c_equals_runtime(g.infer_shapes().validate(), tmp_path)
