"""SQUARED_DIFFERENCE against TFLM (60 seeded broadcast configurations), by hand, the C kernel, convert."""

from __future__ import annotations

import numpy as np
import pytest

from ops._oracles import (
    assert_c_equals_runtime,
    branch_graph,
    convert_and_match_tflm,
    needs_cc,
    random_binary,
)
from runtime._reference import assert_matches_reference, qtensor, random_int8
from tinyopt.export.tflite import single_op_model
from tinyopt.graph.ir import Graph, Node, Tensor
from tinyopt.runtime import Interpreter


@pytest.mark.parametrize("seed", range(60))
def test_squared_difference_matches_tflm(seed):
    g, xs = random_binary("SQUARED_DIFFERENCE", 700 + seed, int8=bool(seed % 2), max_rank=4)
    out = assert_matches_reference(g, xs)[0]
    if seed % 2 == 0:
        rank = len(g.tensors["y"].shape)
        a = xs[0].reshape(xs[0].shape[:1] + (1,) * (rank - xs[0].ndim) + xs[0].shape[1:])
        b = g.tensors["b"].data if len(xs) == 1 else \
            xs[1].reshape(xs[1].shape[:1] + (1,) * (rank - xs[1].ndim) + xs[1].shape[1:])
        np.testing.assert_allclose(out.reshape(-1), ((a - b) ** 2).reshape(-1), rtol=1e-6)


def test_int8_by_hand():
    # a = 10 (scale 0.1, zp 0: 1.0), b = -10 (scale 0.05, zp 0: -0.5); (1.5)^2 = 2.25 at scale 0.02 -> 112.5
    # TFLM: twice_max = 0.2; 10 << 7 = 1280, * 0.5 = 640; -10 << 7 = -1280, * 0.25 = -320; 960^2 = 921600,
    # times 0.2^2 / (2^14 * 0.02) = 1.220703125e-4 -> 112.5
    g = single_op_model("SQUARED_DIFFERENCE", [qtensor("a", (1, 1), 0.1, 0), qtensor("b", (1, 1), 0.05, 0)],
                        qtensor("y", (1,), 0.02, -100))
    out = assert_matches_reference(g, [np.array([[10]], np.int8), np.array([[-10]], np.int8)])[0]
    assert out.tolist() == [[13]]  # 112.5 rounds to 113 (half away), - 100


def test_rank_5_broadcast_is_refused_as_tflm_does():
    from tinyopt.errors import UnsupportedOpError

    g = single_op_model("SQUARED_DIFFERENCE", [Tensor("a", (1, 2, 2, 2, 2)), Tensor("b", (1, 1, 2, 1, 2))],
                        Tensor("y", (1,)))
    with pytest.raises(UnsupportedOpError, match="up to 4-D"):
        Interpreter(g)


@needs_cc
@pytest.mark.parametrize("axes,swap", [([3], False), ([1, 2], True), ([2], False)])
def test_c_kernel_equals_runtime(axes, swap, tmp_path):
    g = branch_graph("SQUARED_DIFFERENCE", (1, 4, 6, 8), axes, swap=swap, qy=(0.02, -128), reducer="MEAN")
    assert_c_equals_runtime(g, random_int8(np.random.default_rng(len(axes)), (20, 4, 6, 8)), tmp_path)


@needs_cc
def test_c_kernel_in_place_equals_runtime(tmp_path):
    """Same shapes, both operands dying: the planner puts the output over an input (element i is written
    after it is read) and the library still equals the runtime."""
    from tinyopt.export.c import generate_sources

    g = Graph("inplace")
    for name, q in (("x", (0.05, -3)), ("r", (0.03, 7)), ("d", (0.01, -128)), ("y", (0.01, -128))):
        g.add_tensor(qtensor(name, (1, 4, 1, 8) if name == "x" else (1,), *q))
    g.add_tensor(Tensor("unit", (1,), "int32", data=np.array([2], np.int32)))
    g.add_tensor(Tensor("hw", (2,), "int32", data=np.array([1, 3], np.int32)))
    g.add_node(Node("r", "MEAN", ["x", "unit"], ["r"], {"keep_dims": True}))  # same shape, other scale
    g.add_node(Node("d", "SQUARED_DIFFERENCE", ["x", "r"], ["d"]))
    g.add_node(Node("y", "MEAN", ["d", "hw"], ["y"], {"keep_dims": False}))
    g.inputs, g.outputs = ["x"], ["y"]
    g.infer_shapes()
    lib = generate_sources(g)
    pl = lib.plan.planner
    d, srcs = lib.plan.root["d"], [lib.plan.root[t] for t in ("x", "r")]
    assert any(pl.offset_of(d) == pl.offset_of(s) for s in srcs), pl.print_plan()
    assert_c_equals_runtime(g, random_int8(np.random.default_rng(9), (20, 4, 1, 8)), tmp_path)


@needs_cc
def test_c_kernel_with_a_constant_equals_runtime(tmp_path):
    rng = np.random.default_rng(4)
    c = rng.integers(-128, 128, size=(6, 1)).astype(np.int8)
    g = single_op_model("SQUARED_DIFFERENCE",
                        [qtensor("c", (6, 1), 0.03, 5, data=c), qtensor("x", (1, 3, 6, 4), 0.05, -3)],
                        qtensor("y", (1,), 0.04, -120))
    assert_c_equals_runtime(g, random_int8(rng, (12, 3, 6, 4)), tmp_path)


def test_converted_variance_runs_in_tflm():
    """mean((x - mean(x))^2) over the last axis: the variance half of a layer norm."""
    g = Graph("t")
    for name in ("x", "m", "d", "v"):
        g.add_tensor(Tensor(name, (1, 4, 10) if name == "x" else (1,)))
    g.add_tensor(Tensor("axes", (1,), "int32", data=np.array([2], np.int32)))
    g.add_node(Node("m", "MEAN", ["x", "axes"], ["m"], {"keep_dims": True}))
    g.add_node(Node("d", "SQUARED_DIFFERENCE", ["x", "m"], ["d"]))
    g.add_node(Node("v", "MEAN", ["d", "axes"], ["v"], {"keep_dims": True}))
    g.inputs, g.outputs = ["x"], ["v"]
    g.infer_shapes()
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(8, 4, 10)).astype(np.float32) * 2
    q = convert_and_match_tflm(g, rng.normal(size=(64, 4, 10)).astype(np.float32) * 2, xs)
    assert [n.op for n in q.nodes] == ["MEAN", "SQUARED_DIFFERENCE", "MEAN"]
