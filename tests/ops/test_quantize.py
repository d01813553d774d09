"""QUANTIZE against TFLM: 60 seeded requantizations int8 → int8 (scales up and down, every zero point range)
and float32 → int8 with exact halves; the C kernel (int8 → int8, in place over its dying input) equals the
runtime, and a float → int8 QUANTIZE is refused by the C library (its input is int8)."""

from __future__ import annotations

import numpy as np
import pytest

from ops._data_movement import HAVE_CC, c_equals_runtime, matches_tflm
from runtime._reference import qtensor, random_int8
from tinyopt.errors import UnsupportedOpError
from tinyopt.export.c import generate_sources
from tinyopt.export.tflite import single_op_model
from tinyopt.graph.ir import Graph, Node, Tensor


def _params(rng):
    return float(np.float32(10 ** rng.uniform(-3, 0))), int(rng.integers(-128, 128))


@pytest.mark.parametrize("seed", range(60))
def test_matches_tflm(seed):
    rng = np.random.default_rng(seed)
    shape = (1, *(int(d) for d in rng.integers(1, 6, size=int(rng.integers(1, 4)))))
    so, zo = _params(rng)
    if seed % 2:
        si, zi = _params(rng)
        g = single_op_model("QUANTIZE", [qtensor("x", shape, si, zi)], qtensor("y", (1,), so, zo))
        x = random_int8(rng, (6, *shape[1:]))
        out = matches_tflm(g, x)[0]
        # independently, in float64: within one step of round((x - zi) * si / so) + zo, saturated
        want = np.clip(np.round((x.astype(np.float64) - zi) * si / so) + zo, -128, 127)
        assert np.abs(out.astype(np.float64) - want).max() <= 1
    else:
        g = single_op_model("QUANTIZE", [Tensor("x", shape)], qtensor("y", (1,), so, zo))
        x = (rng.normal(size=(6, *shape[1:])) * 100 * so).astype(np.float32)
        x.flat[0] = np.float32(2.5 * np.float32(so))  # an exact half: TFLM rounds it away from zero
        out = matches_tflm(g, x)[0]
        assert out.flat[0] == np.clip(3 + zo, -128, 127)


def _requant_chain():
    """requantize → requantize → requantize: the middle one reads an arena buffer that dies there."""
    g = Graph("requant")
    for t in (qtensor("x", (1, 5, 7), 0.02, 5), qtensor("a", (1,), 0.05, -20), qtensor("b", (1,), 0.013, 31),
              qtensor("y", (1,), 0.1, 0)):
        g.add_tensor(t)
    g.add_node(Node("q1", "QUANTIZE", ["x"], ["a"]))
    g.add_node(Node("q2", "QUANTIZE", ["a"], ["b"]))
    g.add_node(Node("q3", "QUANTIZE", ["b"], ["y"]))
    g.inputs, g.outputs = ["x"], ["y"]
    return g.infer_shapes().validate()


@pytest.mark.skipif(not HAVE_CC, reason="no host C compiler (cc)")
def test_c_library_equals_runtime_in_place(tmp_path):
    g = _requant_chain()
    lib = generate_sources(g)
    a, b = lib.plan.planner.buffers["a"], lib.plan.planner.buffers["b"]
    assert a.offset == b.offset  # element i is written after it is read: the same bytes
    c_equals_runtime(g, tmp_path, n=20)


def test_c_library_refuses_a_float_quantize():
    g = Graph("f")
    for t in (qtensor("x", (1, 4), 0.1, 0), Tensor("f", (1,)), qtensor("y", (1,), 0.1, 0)):
        g.add_tensor(t)
    g.add_node(Node("dq", "DEQUANTIZE", ["x"], ["f"]))
    g.add_node(Node("q", "QUANTIZE", ["f"], ["y"]))
    g.inputs, g.outputs = ["x"], ["y"]
    g = g.infer_shapes().validate()
    from tinyopt.ops import get

    with pytest.raises(UnsupportedOpError, match="a QUANTIZE from float32") as e:
        get("QUANTIZE").pack_c(g, 1, g.nodes[1])
    assert "node 1 'q' (QUANTIZE)" in str(e.value) and "Fix:" in str(e.value)
