"""SQUEEZE against TFLM (60 seeded shapes with unit axes, listed or all; int8 and float32), converted, and in
C, where its output is its input's bytes (no kernel runs)."""

from __future__ import annotations

import numpy as np
import pytest

from ops._data_movement import HAVE_CC, act, c_equals_runtime, converted_matches_tflm, matches_tflm, rows
from runtime._reference import qtensor
from tinyopt.errors import ModelFormatError
from tinyopt.export.c import generate_sources
from tinyopt.export.tflite import graph_to_tflite_bytes, single_op_model
from tinyopt.graph.ir import Graph, Node, Tensor
from tinyopt.graph.tflite_import import tflite_bytes_to_graph


def _config(seed: int):
    """A shape with unit axes after the batch, and some of them listed (negative half of the time)."""
    rng = np.random.default_rng(seed)
    rank = int(rng.integers(3, 7))
    shape = [1, *(int(d) if rng.random() < 0.5 else 1 for d in rng.integers(2, 5, size=rank - 1))]
    shape[int(rng.integers(1, rank))] = 1
    ones = [k for k in range(1, rank) if shape[k] == 1]
    picked = rng.choice(ones, size=int(rng.integers(1, len(ones) + 1)), replace=False)
    dims = tuple(int(k - rank) if rng.random() < 0.5 else int(k) for k in picked)
    return rng, tuple(shape), dims


@pytest.mark.parametrize("seed", range(60))
def test_matches_tflm(seed):
    rng, shape, dims = _config(seed)
    is_int = seed % 2 == 1
    g = single_op_model("SQUEEZE", [act("x", shape, is_int)], act("y", (1,), is_int), {"squeeze_dims": dims})
    x = rows(rng, shape, is_int)
    out = matches_tflm(g, x)[0]
    axes = {k % len(shape) for k in dims}
    want = x.reshape(len(x), *(d for k, d in enumerate(shape) if k not in axes and k != 0))  # by hand
    np.testing.assert_array_equal(out, want)


def test_no_dims_squeezes_every_unit_axis():
    g = single_op_model("SQUEEZE", [Tensor("x", (1, 3, 1, 2, 1))], Tensor("y", (1,)), {"squeeze_dims": ()})
    assert g.tensors["y"].shape == (3, 2)  # the batch too, as TFLite does (the runtime refuses a batch of 3)


def test_squeeze_dims_survive_a_tflite_round_trip():
    g = single_op_model("SQUEEZE", [Tensor("x", (1, 3, 1, 1))], Tensor("y", (1,)), {"squeeze_dims": (-1,)})
    back = tflite_bytes_to_graph(graph_to_tflite_bytes(g))
    assert back.nodes[0].attrs["squeeze_dims"] == (-1,) and back.tensors[back.outputs[0]].shape == (1, 3, 1)


def test_a_non_unit_axis_is_refused():
    with pytest.raises(ModelFormatError, match="axis 1 has size 3, not 1") as e:
        single_op_model("SQUEEZE", [Tensor("x", (1, 3, 1))], Tensor("y", (1,)), {"squeeze_dims": (1,)})
    assert "SQUEEZE" in str(e.value) and "Fix:" in str(e.value)


def test_converted_graph_matches_tflm():
    converted_matches_tflm(single_op_model("SQUEEZE", [Tensor("x", (1, 4, 1, 3))], Tensor("y", (1,)),
                                           {"squeeze_dims": (2,)}))


@pytest.mark.skipif(not HAVE_CC, reason="no host C compiler (cc)")
def test_c_library_aliases_the_input(tmp_path):
    g = Graph("squeeze")
    for t in (qtensor("x", (1, 4, 1, 3), 0.1, 0), qtensor("a", (1,), 0.05, 3), qtensor("b", (1,), 0.05, 3),
              qtensor("y", (1,), 0.2, -1)):
        g.add_tensor(t)
    g.add_node(Node("rq", "QUANTIZE", ["x"], ["a"]))
    g.add_node(Node("sq", "SQUEEZE", ["a"], ["b"], {"squeeze_dims": (2,)}))
    g.add_node(Node("rq2", "QUANTIZE", ["b"], ["y"]))
    g.inputs, g.outputs = ["x"], ["y"]
    g = g.infer_shapes().validate()
    lib = generate_sources(g)
    assert lib.prepared[1].aliases and lib.plan.root["b"] == lib.plan.root["a"]  # no copy, no kernel
    c_equals_runtime(g, tmp_path)


def test_a_chain_of_squeezes_survives_the_passes():
    """remove_identities folds RESHAPE chains; a SQUEEZE's axes count in its own input, so two stay two."""
    from tinyopt.graph.passes import remove_identities
    from tinyopt.runtime import Interpreter

    g = Graph("chain")
    for t in (Tensor("x", (1, 3, 1, 2, 1)), Tensor("a", (1,)), Tensor("y", (1,))):
        g.add_tensor(t)
    g.add_node(Node("s1", "SQUEEZE", ["x"], ["a"], {"squeeze_dims": (2,)}))
    g.add_node(Node("s2", "SQUEEZE", ["a"], ["y"], {"squeeze_dims": (3,)}))
    g.inputs, g.outputs = ["x"], ["y"]
    h = remove_identities(g.infer_shapes().validate())
    x = np.arange(6, dtype=np.float32).reshape(1, 3, 1, 2, 1)
    assert h.tensors[h.outputs[0]].shape == (1, 3, 2)
    np.testing.assert_array_equal(Interpreter(h).run(x)[0], x.reshape(1, 3, 2))
    back = tflite_bytes_to_graph(graph_to_tflite_bytes(h))  # the importer re-infers every shape
    np.testing.assert_array_equal(matches_tflm(back, x)[0], x.reshape(1, 3, 2))
