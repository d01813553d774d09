"""EXPAND_DIMS against TFLM (60 seeded shapes and axes, negative ones counted from the end of the output;
int8 and float32), converted, and in C, where its output is its input's bytes (no kernel runs)."""

from __future__ import annotations

import numpy as np
import pytest

from ops._data_movement import HAVE_CC, act, c_equals_runtime, ci, converted_matches_tflm, matches_tflm, rows
from runtime._reference import qtensor
from tinyopt.errors import ModelFormatError
from tinyopt.export.c import generate_sources
from tinyopt.export.tflite import single_op_model
from tinyopt.graph.ir import Graph, Node, Tensor


@pytest.mark.parametrize("seed", range(60))
def test_matches_tflm(seed):
    rng = np.random.default_rng(seed)
    rank = int(rng.integers(1, 5))
    shape = (1, *(int(d) for d in rng.integers(1, 5, size=rank - 1)))
    axis = int(rng.integers(-rank - 1, rank + 1))
    is_int = seed % 2 == 1
    g = single_op_model("EXPAND_DIMS", [act("x", shape, is_int), ci("axis", [axis])], act("y", (1,), is_int))
    x = rows(rng, shape, is_int)
    out = matches_tflm(g, x)[0]
    k = axis + rank + 1 if axis < 0 else axis
    want = np.stack([np.expand_dims(r[None], k) for r in x])  # independently: numpy, one row at a time
    np.testing.assert_array_equal(out, want.reshape(out.shape))
    assert g.tensors["y"].shape == np.expand_dims(np.zeros(shape), k).shape


def test_axis_out_of_range_is_refused():
    with pytest.raises(ModelFormatError, match="axis 4 is out of range") as e:
        single_op_model("EXPAND_DIMS", [Tensor("x", (1, 3, 2)), ci("a", [4])], Tensor("y", (1,)))
    assert "EXPAND_DIMS" in str(e.value) and "Fix:" in str(e.value)


def test_converted_graph_matches_tflm():
    converted_matches_tflm(single_op_model("EXPAND_DIMS", [Tensor("x", (1, 4, 3)), ci("a", [-2])],
                                           Tensor("y", (1,))))


@pytest.mark.skipif(not HAVE_CC, reason="no host C compiler (cc)")
def test_c_library_aliases_the_input(tmp_path):
    g = Graph("expand")
    for t in (qtensor("x", (1, 4, 3), 0.1, 0), ci("ax", [2]), qtensor("a", (1,), 0.05, 3),
              qtensor("b", (1,), 0.05, 3), qtensor("y", (1,), 0.2, -1)):
        g.add_tensor(t)
    g.add_node(Node("rq", "QUANTIZE", ["x"], ["a"]))
    g.add_node(Node("ex", "EXPAND_DIMS", ["a", "ax"], ["b"]))
    g.add_node(Node("rq2", "QUANTIZE", ["b"], ["y"]))
    g.inputs, g.outputs = ["x"], ["y"]
    g = g.infer_shapes().validate()
    lib = generate_sources(g)
    assert lib.prepared[1].aliases and lib.plan.root["b"] == lib.plan.root["a"]
    c_equals_runtime(g, tmp_path)
