"""SPLIT against TFLM (60 seeded shapes, axes and part counts; int8 and float32; every output compared),
converted, through the doors (torch.chunk / split, ONNX Split and SplitToSequence + SequenceAt) and in C
(split → concatenation)."""

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
from tinyopt.errors import ModelFormatError, UnsupportedOpError
from tinyopt.export.tflite import single_op_model
from tinyopt.graph.ir import Graph, Node, Tensor
from tinyopt.runtime import Interpreter

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _config(seed: int):
    rng = np.random.default_rng(seed)
    rank = int(rng.integers(2, 6))
    shape = [1, *(int(d) for d in rng.integers(1, 5, size=rank - 1))]
    axis = int(rng.integers(1, rank))
    n = int(rng.integers(1, 4))
    shape[axis] *= n
    return rng, tuple(shape), axis - rank if rng.random() < 0.3 else axis, n


@pytest.mark.parametrize("seed", range(60))
def test_matches_tflm(seed):
    rng, shape, axis, n = _config(seed)
    is_int = seed % 2 == 1
    outs = [act(f"y{k}", (1,), is_int) for k in range(n)]
    g = single_op_model("SPLIT", [ci("axis", [axis]), act("x", shape, is_int)], outs, {"num_splits": n})
    x = rows(rng, shape, is_int)
    got = matches_tflm(g, x)
    for a, b in zip(got, np.split(x, n, axis=axis % len(shape))):  # independently: numpy's split
        np.testing.assert_array_equal(a, b)


def test_refusals_name_the_node():
    with pytest.raises(ModelFormatError, match="num_splits 3 does not divide") as e:
        single_op_model("SPLIT", [ci("a", [1]), Tensor("x", (1, 4))],
                        [Tensor(f"y{k}", (1,)) for k in range(3)], {"num_splits": 3})
    assert "SPLIT" in str(e.value) and "Fix:" in str(e.value)
    g = single_op_model("SPLIT", [ci("a", [0]), Tensor("x", (1, 4))], [Tensor("y0", (1,))], {"num_splits": 1})
    with pytest.raises(UnsupportedOpError, match="batch axis"):
        Interpreter(g)


def test_converted_graph_keeps_the_input_parameters_and_matches_tflm():
    g = single_op_model("SPLIT", [ci("a", [3]), Tensor("x", (1, 3, 2, 6))],
                        [Tensor("p", (1,)), Tensor("q", (1,))], {"num_splits": 2})
    q = converted_matches_tflm(g)
    x = q.tensors[q.inputs[0]]
    assert all(q.tensors[o].quant == x.quant for o in q.outputs)


class Halves(torch.nn.Module):
    """ShuffleNetV2's unit: half the channels pass, the other half is convolved, then both are joined."""

    def __init__(self, uneven=True):
        super().__init__()
        self.conv = torch.nn.Conv2d(4, 4, 3, padding=1)
        self.uneven = uneven

    def forward(self, x):
        a, b = x.chunk(2, dim=1)
        p, q, r = torch.split(torch.cat((a, self.conv(b)), 1), [3, 1, 4], dim=1)
        # 4 channels in 3 chunks: torch gives 2 + 2 (ONNX: SplitToSequence into 2, 2, 0, then SequenceAt)
        s = r.chunk(3, dim=1) if self.uneven else r.chunk(2, dim=1)
        return torch.cat([s[1], q, p, s[0]], 1)


def test_chunk_and_split_match_torch_and_onnx(tmp_path):
    m = Halves()
    g = torch_matches(m, (8, 5, 6))
    assert {"SPLIT", "SPLIT_V"} <= set(ops_of(g))
    for opset, uneven in ((11, False), (13, True), (17, True)):
        path = export_onnx(Halves(uneven=uneven), (8, 5, 6), tmp_path / f"h{opset}.onnx", opset)
        assert {"SPLIT", "SPLIT_V"} & set(ops_of(onnx_matches(path, (8, 5, 6))))


def test_split_of_a_flat_tensor_matches_torch():
    class Flat(torch.nn.Module):
        def forward(self, x):
            a, b, c = x.split([2, 3, 1], dim=1)
            return torch.cat([c, a, b], 1)

    assert ops_of(torch_matches(Flat(), (6,))) == ["SPLIT_V", "CONCATENATION"]


@pytest.mark.skipif(not HAVE_CC, reason="no host C compiler (cc)")
@pytest.mark.parametrize("axis,n", [(1, 2), (2, 5), (3, 3)])
def test_c_library_equals_runtime(axis, n, tmp_path):
    """split → the parts joined in another order: the split kernel's runs and pointer lists."""
    shape = [1, 4, 5, 6]
    shape[axis] = shape[axis] // n * n if shape[axis] % n == 0 else n * 2
    g = Graph("split")
    parts = [f"y{k}" for k in range(n)]
    for t in (qtensor("x", shape, 0.1, 3), ci("a", [axis]), *(qtensor(p, (1,), 0.1, 3) for p in parts),
              qtensor("z", (1,), 0.1, 3)):
        g.add_tensor(t)
    g.add_node(Node("s", "SPLIT", ["a", "x"], parts, {"num_splits": n}))
    g.add_node(Node("c", "CONCATENATION", parts[::-1], ["z"], {"axis": axis}))
    g.inputs, g.outputs = ["x"], ["z"]
    c_equals_runtime(g.infer_shapes().validate(), tmp_path)
