"""LOOKUP_TABLE: the C library's form of a float island (DEQUANTIZE → EXP / LOG / SQRT in float → QUANTIZE,
what convert keeps for operators TFLM runs in float only). The oracle is TFLM running the island itself: on
60 seeded configurations the runtime's table equals TFLM's bytes, and the generated C library equals both."""

from __future__ import annotations

import numpy as np
import pytest

from ops._data_movement import HAVE_CC, c_equals_runtime
from runtime._reference import random_int8, run_tflm
from tinyopt.convert import convert_graph
from tinyopt.errors import UnsupportedOpError
from tinyopt.export.tflite import graph_to_tflite_bytes
from tinyopt.graph.ir import Graph, Node, Tensor
from tinyopt.ops.exp import Exp
from tinyopt.ops.log import Log
from tinyopt.ops.lookup_table import LookupTable, fuse_float_islands
from tinyopt.ops.sqrt import Sqrt
from tinyopt.runtime import Interpreter

FLOAT_ONLY = (Exp.name, Log.name, Sqrt.name)


def _island(seed: int):
    """A float graph x → op → y of a random shape, converted with calibration data the op takes (positive
    for LOG and SQRT; a range that may or may not hold 0): the int8 island and seeded int8 inputs."""
    rng = np.random.default_rng(seed)
    op = FLOAT_ONLY[seed % 3]
    shape = (1, *(int(d) for d in rng.integers(1, 6, size=int(rng.integers(1, 4)))))
    lo = float(rng.uniform(0.01, 1.0)) if op != Exp.name else float(rng.uniform(-4, 0))
    hi = lo + float(rng.uniform(0.1, 8.0))
    f = Graph("island")
    f.add_tensor(Tensor("x", shape))
    f.add_tensor(Tensor("y", (1,)))
    f.add_node(Node("y", op, ["x"], ["y"]))
    f.inputs, f.outputs = ["x"], ["y"]
    calib = rng.uniform(lo, hi, size=(16, *shape[1:])).astype(np.float32)
    q = convert_graph(f.infer_shapes(), calib)
    assert [n.op for n in q.nodes] == ["DEQUANTIZE", op, "QUANTIZE"]
    return q, random_int8(rng, (6, *shape[1:]))


@pytest.mark.parametrize("seed", range(60))
def test_table_equals_tflm_running_the_island(seed):
    q, xs = _island(seed)
    want = run_tflm(graph_to_tflite_bytes(q), [xs])[0]
    fused = fuse_float_islands(q)
    assert [n.op for n in fused.nodes] == [LookupTable.name]
    assert all(t.dtype != "float32" for t in fused.tensors.values())  # no float left for the C library
    got = Interpreter(fused).run(xs)[0]
    np.testing.assert_array_equal(got, want.reshape(got.shape))
    np.testing.assert_array_equal(Interpreter(q).run(xs)[0], got)  # the island in our runtime: the same bytes


def test_table_by_hand():
    """SQRT with input scale 1/16, zero point -128 and output scale 1/64, zero point -128: input value v is
    (v + 128) / 16, the output round(sqrt((v + 128) / 16) * 64) - 128 (v = -124: sqrt(0.25) = 0.5 → -96)."""
    g = Graph("hand")
    from tinyopt.graph.ir import QuantParams

    g.add_tensor(Tensor("x", (1, 4), "int8", quant=QuantParams([1 / 16], [-128])))
    g.add_tensor(Tensor("xf", (1, 4)))
    g.add_tensor(Tensor("yf", (1, 4)))
    g.add_tensor(Tensor("y", (1, 4), "int8", quant=QuantParams([1 / 64], [-128])))
    g.nodes = [Node("dq", "DEQUANTIZE", ["x"], ["xf"]), Node("s", Sqrt.name, ["xf"], ["yf"]),
               Node("q", "QUANTIZE", ["yf"], ["y"])]
    g.inputs, g.outputs = ["x"], ["y"]
    fused = fuse_float_islands(g.validate())
    table = fused.tensors[fused.nodes[0].inputs[1]].data
    assert table[-124 + 128] == -96 and table[0] == -128 and table[255] == 127  # sqrt(16) * 64 saturates
    hand = np.clip(np.floor(np.sqrt(np.arange(256) / 16) * 64 + 0.5) - 128, -128, 127)
    np.testing.assert_array_equal(table, hand)


def test_an_island_whose_float_value_is_read_twice_is_left_alone():
    """The DEQUANTIZE's float output also feeds a second node: a table would lose that reader, so the C
    generator keeps the nodes and refuses the float one by name."""
    q, _ = _island(0)
    dq, op, quant = q.nodes
    q.add_tensor(Tensor("twice", q.tensors[op.outputs[0]].shape))
    q.add_node(Node("twice", op.op, [dq.outputs[0]], ["twice"]))
    y = q.tensors[quant.outputs[0]]
    q.add_tensor(Tensor("twice_q", y.shape, "int8", quant=y.quant))
    q.add_node(Node("twice_q", "QUANTIZE", ["twice"], ["twice_q"]))
    q.outputs.append("twice_q")
    assert fuse_float_islands(q.validate()) is q
    from tinyopt.export.c import generate_sources

    with pytest.raises(UnsupportedOpError, match="DEQUANTIZE"):
        generate_sources(q)


@pytest.mark.skipif(not HAVE_CC, reason="no host C compiler (cc)")
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_c_library_equals_runtime_and_tflm(seed, tmp_path):
    q, xs = _island(seed)
    got = c_equals_runtime(q, tmp_path)  # the generator fuses the island: host library = runtime
    want = run_tflm(graph_to_tflite_bytes(q), [random_int8(np.random.default_rng(0), (6, *xs.shape[1:]))])[0]
    np.testing.assert_array_equal(got, want.reshape(got.shape))
