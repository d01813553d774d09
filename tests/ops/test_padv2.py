"""PADV2 against TFLM (60 seeded shapes, paddings and pad values; int8 and float32), the value's
quantization checked, converted (a max pool's -FLT_MAX becomes -128) and in C."""

from __future__ import annotations

import numpy as np
import pytest

from ops._data_movement import HAVE_CC, act, c_equals_runtime, ci, converted_matches_tflm, matches_tflm, rows
from runtime._reference import qtensor
from tinyopt.errors import ModelFormatError
from tinyopt.export.tflite import single_op_model
from tinyopt.graph.ir import Graph, Node, Tensor
from tinyopt.ops.padv2 import LOWEST
from tinyopt.runtime import Interpreter


def _config(seed: int):
    rng = np.random.default_rng(seed)
    rank = int(rng.integers(2, 6))
    shape = (1, *(int(d) for d in rng.integers(1, 5, size=rank - 1)))
    pads = [[0, 0]] + [[int(a), int(b)] for a, b in rng.integers(0, 3, size=(rank - 1, 2))]
    return rng, shape, pads


@pytest.mark.parametrize("seed", range(60))
def test_matches_tflm(seed):
    rng, shape, pads = _config(seed)
    is_int = seed % 2 == 1
    if is_int:
        v = qtensor("v", (1,), 0.05, -3, data=np.array([rng.integers(-128, 128)], np.int8))
    else:
        v = Tensor("v", (1,), data=np.array([rng.normal()], np.float32))
    g = single_op_model("PADV2", [act("x", shape, is_int), ci("p", pads), v], act("y", (1,), is_int))
    x = rows(rng, shape, is_int)
    out = matches_tflm(g, x)[0]
    np.testing.assert_array_equal(out, np.pad(x, pads, constant_values=v.data[0]))  # independently: numpy


def test_the_value_must_carry_the_output_parameters():
    v = qtensor("v", (1,), 0.1, 0, data=np.array([-128], np.int8))
    g = single_op_model("PADV2", [qtensor("x", (1, 3), 0.05, -3), ci("p", [[0, 0], [1, 1]]), v],
                        qtensor("y", (1,), 0.05, -3))
    with pytest.raises(ModelFormatError, match="pad value's quantization differs") as e:
        Interpreter(g)
    assert "PADV2" in str(e.value) and "Fix:" in str(e.value)


def test_lowest_value_converts_to_minus_128():
    g = single_op_model("PADV2", [Tensor("x", (1, 4, 4, 2)), ci("p", [[0, 0], [1, 1], [0, 2], [0, 0]]),
                                  Tensor("v", (1,), data=np.array([LOWEST], np.float32))], Tensor("y", (1,)))
    q = converted_matches_tflm(g)
    v = q.tensors[q.nodes[-1].inputs[2]]
    assert v.data.tolist() == [-128] and v.quant == q.tensors[q.outputs[0]].quant


@pytest.mark.skipif(not HAVE_CC, reason="no host C compiler (cc)")
@pytest.mark.parametrize("seed", [1, 3, 5, 7])
def test_c_library_equals_runtime(seed, tmp_path):
    rng, shape, pads = _config(seed)
    v = qtensor("v", (1,), 0.05, -3, data=np.array([rng.integers(-128, 128)], np.int8))
    g = Graph("padv2")
    for t in (qtensor("x", shape, 0.05, -3), ci("p", pads), v, qtensor("y", (1,), 0.05, -3)):
        g.add_tensor(t)
    g.add_node(Node("pad", "PADV2", ["x", "p", "v"], ["y"]))
    g.inputs, g.outputs = ["x"], ["y"]
    c_equals_runtime(g.infer_shapes().validate(), tmp_path)
