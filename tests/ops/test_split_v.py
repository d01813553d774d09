"""SPLIT_V against TFLM (60 seeded shapes, axes and part sizes, one of them -1; int8 and float32; every
output compared), converted, and in C (the split kernel with parts of different sizes)."""

from __future__ import annotations

import numpy as np
import pytest

from ops._data_movement import HAVE_CC, act, c_equals_runtime, ci, converted_matches_tflm, matches_tflm, rows
from runtime._reference import qtensor
from tinyopt.errors import ModelFormatError
from tinyopt.export.tflite import single_op_model
from tinyopt.graph.ir import Graph, Node, Tensor


def _config(seed: int):
    rng = np.random.default_rng(seed)
    rank = int(rng.integers(2, 6))
    shape = [1, *(int(d) for d in rng.integers(1, 5, size=rank - 1))]
    axis = int(rng.integers(1, rank))
    sizes = [int(s) for s in rng.integers(1, 4, size=int(rng.integers(1, 5)))]
    shape[axis] = sum(sizes)
    given = list(sizes)
    if rng.random() < 0.4:
        given[int(rng.integers(0, len(sizes)))] = -1
    return rng, tuple(shape), axis - rank if rng.random() < 0.3 else axis, sizes, given


@pytest.mark.parametrize("seed", range(60))
def test_matches_tflm(seed):
    rng, shape, axis, sizes, given = _config(seed)
    is_int = seed % 2 == 1
    outs = [act(f"y{k}", (1,), is_int) for k in range(len(sizes))]
    g = single_op_model("SPLIT_V", [act("x", shape, is_int), ci("sizes", given), ci("axis", [axis])], outs,
                        {"num_splits": len(sizes)})
    x = rows(rng, shape, is_int)
    got = matches_tflm(g, x)
    got = got if len(sizes) > 1 else got[:1]
    want = np.split(x, np.cumsum(sizes)[:-1], axis=axis % len(shape))  # independently: numpy's split
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("given,match", [([1, 1], "into \\[1, 1\\]"), ([-1, -1], "more than one -1"),
                                         ([4, -1], "into \\[4, -1\\]")])
def test_bad_sizes_name_the_node(given, match):
    with pytest.raises(ModelFormatError, match=match) as e:
        single_op_model("SPLIT_V", [Tensor("x", (1, 3, 2)), ci("s", given), ci("a", [1])],
                        [Tensor("p", (1,)), Tensor("q", (1,))], {"num_splits": 2})
    assert "SPLIT_V" in str(e.value) and "Fix:" in str(e.value)


def test_converted_graph_matches_tflm():
    g = single_op_model("SPLIT_V", [Tensor("x", (1, 4, 7)), ci("s", [2, -1, 1]), ci("a", [-1])],
                        [Tensor("p", (1,)), Tensor("q", (1,)), Tensor("r", (1,))], {"num_splits": 3})
    converted_matches_tflm(g)


@pytest.mark.skipif(not HAVE_CC, reason="no host C compiler (cc)")
@pytest.mark.parametrize("axis", [1, 2, 3])
def test_c_library_equals_runtime(axis, tmp_path):
    shape = [1, 4, 5, 6]
    sizes = {1: [1, 3], 2: [2, 1, 2], 3: [3, 1, 2]}[axis]
    parts = [f"y{k}" for k in range(len(sizes))]
    g = Graph("split_v")
    for t in (qtensor("x", shape, 0.2, -5), ci("s", sizes), ci("a", [axis]),
              *(qtensor(p, (1,), 0.2, -5) for p in parts), qtensor("z", (1,), 0.2, -5)):
        g.add_tensor(t)
    g.add_node(Node("s", "SPLIT_V", ["x", "s", "a"], parts, {"num_splits": len(sizes)}))
    g.add_node(Node("c", "CONCATENATION", parts[::-1], ["z"], {"axis": axis}))
    g.inputs, g.outputs = ["x"], ["z"]
    c_equals_runtime(g.infer_shapes().validate(), tmp_path)
