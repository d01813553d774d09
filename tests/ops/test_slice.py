"""SLICE against TFLM (60 seeded 2-D to 5-D shapes, sizes of -1; int8 and float32), converted, through the
doors (narrow, ONNX Slice with unit steps) and in C, where it may overwrite its dying input in place."""

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
from tinyopt.errors import ModelFormatError
from tinyopt.export.c import generate_sources
from tinyopt.export.tflite import single_op_model
from tinyopt.graph.ir import Graph, Node, Tensor

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _config(seed: int):
    rng = np.random.default_rng(seed)
    rank = int(rng.integers(2, 6))
    shape = (1, *(int(d) for d in rng.integers(1, 6, size=rank - 1)))
    begin = [0] + [int(rng.integers(0, d)) for d in shape[1:]]
    size = [1] + [int(rng.integers(1, d - b + 1)) if rng.random() < 0.8 else -1
                  for d, b in zip(shape[1:], begin[1:])]
    return rng, shape, begin, size


@pytest.mark.parametrize("seed", range(60))
def test_matches_tflm(seed):
    rng, shape, begin, size = _config(seed)
    is_int = seed % 2 == 1
    g = single_op_model("SLICE", [act("x", shape, is_int), ci("b", begin), ci("s", size)],
                        act("y", (1,), is_int))
    x = rows(rng, shape, is_int)
    out = matches_tflm(g, x)[0]
    # independently: numpy slicing, a size of -1 running to the end of the axis
    sl = (slice(None), *(slice(b, None if s == -1 else b + s) for b, s in zip(begin[1:], size[1:])))
    np.testing.assert_array_equal(out, x[sl])


@pytest.mark.parametrize("begin,size,match", [
    ([0, 3, 0], [1, 2, 2], "do not fit axis 1"),
    ([0, 0, 0], [1, 0, 2], "do not fit axis 1"),
    ([0, 0], [1, 1], "for a rank-3 input"),
])
def test_bad_operands_name_the_node(begin, size, match):
    with pytest.raises(ModelFormatError, match=match) as e:
        single_op_model("SLICE", [Tensor("x", (1, 4, 2)), ci("b", begin), ci("s", size)], Tensor("y", (1,)))
    assert "SLICE" in str(e.value) and "Fix:" in str(e.value)


def test_converted_graph_matches_tflm():
    g = single_op_model("SLICE", [Tensor("x", (1, 5, 6, 3)), ci("b", [0, 1, 2, 0]), ci("s", [1, 3, -1, 2])],
                        Tensor("y", (1,)))
    converted_matches_tflm(g)


class Narrow(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(2, 6, 1)

    def forward(self, x):
        y = self.conv(x)
        s = y.narrow(1, 2, 3) + y[:, 1:4] + torch.narrow(y, 1, 3, 3)
        d = y.narrow(3, 1, y.shape[3] - 1)  # a length the model computes from the traced shape
        return torch.cat([s[:, :, :, 1:], d[:, :3]], 1)


def test_narrow_and_onnx_slice_match(tmp_path):
    m = Narrow()
    g = torch_matches(m, (2, 4, 5))
    assert "SLICE" in ops_of(g)
    h = onnx_matches(export_onnx(m, (2, 4, 5), tmp_path / "n.onnx"), (2, 4, 5))
    assert "SLICE" in ops_of(h)


def test_narrow_from_the_end():
    class FromEnd(torch.nn.Module):  # (the ONNX exporter turns a negative start into an empty Slice)
        def forward(self, x):
            return torch.narrow(x, 1, -3, 2)

    assert ops_of(torch_matches(FromEnd(), (5, 4))) == ["SLICE"]


@pytest.mark.skipif(not HAVE_CC, reason="no host C compiler (cc)")
@pytest.mark.parametrize("seed", [1, 4, 9])
def test_c_library_equals_runtime(seed, tmp_path):
    _, shape, begin, size = _config(seed)
    g = single_op_model("SLICE", [act("x", shape, True), ci("b", begin), ci("s", size)], act("y", (1,), True))
    c_equals_runtime(g, tmp_path)


@pytest.mark.skipif(not HAVE_CC, reason="no host C compiler (cc)")
def test_c_slice_runs_in_place_over_its_dying_input(tmp_path):
    """requantize → slice → requantize: the slice reads each byte at or after where it writes it, so the
    planner may put its output over its input, and the library still equals the runtime."""
    g = Graph("inplace")
    for t in (qtensor("x", (1, 6, 5, 4), 0.05, 2), qtensor("a", (1,), 0.04, -1), ci("b", [0, 1, 1, 1]),
              ci("s", [1, 4, 3, 2]), qtensor("c", (1,), 0.04, -1), qtensor("y", (1,), 0.03, 5)):
        g.add_tensor(t)
    g.add_node(Node("rq1", "QUANTIZE", ["x"], ["a"]))
    g.add_node(Node("cut", "SLICE", ["a", "b", "s"], ["c"]))
    g.add_node(Node("rq2", "QUANTIZE", ["c"], ["y"]))
    g.inputs, g.outputs = ["x"], ["y"]
    g.infer_shapes().validate()
    lib = generate_sources(g)
    pl = lib.plan.planner
    a, c = pl.buffers["a"], pl.buffers["c"]
    assert c.offset < a.offset + a.size and a.offset < c.offset + c.size  # they overlap
    assert c.offset <= a.offset  # and the slice writes at or before what it reads
    c_equals_runtime(g, tmp_path)
