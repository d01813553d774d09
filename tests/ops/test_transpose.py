"""TRANSPOSE against TFLM: 60 seeded random shapes and permutations, int8 and float32."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from runtime._reference import assert_matches_reference, qtensor, random_int8
from tinyopt.export.tflite import single_op_model
from tinyopt.graph.ir import Tensor
from tinyopt.runtime import Interpreter


def _case(seed: int):
    rng = np.random.default_rng(seed)
    rank = int(rng.integers(2, 6))
    shape = (1, *(int(d) for d in rng.integers(1, 6, size=rank - 1)))
    perm = [0, *(int(p) + 1 for p in rng.permutation(rank - 1))]
    return rng, shape, perm


@pytest.mark.parametrize("seed", range(60))
def test_transpose_matches_tflm(seed):
    rng, shape, perm = _case(seed)
    p = np.asarray(perm, np.int32)
    if seed % 2:
        x, y = qtensor("x", shape, 0.05, -3), qtensor("y", (1,), 0.05, -3)
        inputs = random_int8(rng, (4, *shape[1:]))
    else:
        x, y = Tensor("x", shape), Tensor("y", (1,))
        inputs = rng.normal(size=(4, *shape[1:])).astype(np.float32)
    g = single_op_model("TRANSPOSE", [x, Tensor("perm", p.shape, "int32", data=p)], y)
    assert g.tensors["y"].shape == tuple(shape[i] for i in perm)
    out = assert_matches_reference(g, inputs)[0]
    # independently: numpy's transpose of each row
    np.testing.assert_array_equal(out, np.transpose(inputs.reshape(4, *shape), [0, *(q + 1 for q in perm)])
                                  .reshape(out.shape))


def test_nhwc_to_nchw_of_a_converted_onnx_model_runs_in_the_runtime():
    """A permutation that is not a layout change stays a TRANSPOSE node and runs."""
    x = Tensor("x", (1, 2, 3, 4))
    p = np.array([0, 2, 1, 3], np.int32)
    g = single_op_model("TRANSPOSE", [x, Tensor("perm", (4,), "int32", data=p)], Tensor("y", (1,)))
    data = np.arange(24, dtype=np.float32).reshape(1, 2, 3, 4)
    np.testing.assert_array_equal(Interpreter(g).run(data)[0], data.transpose(0, 2, 1, 3))


@pytest.mark.skipif(shutil.which("cc") is None, reason="no host C compiler (cc)")
@pytest.mark.parametrize("seed", [1, 3, 5, 7, 9])
def test_c_library_equals_runtime(seed, tmp_path):
    """The C library's strided walk: up to 6-D (size-1 axes dropped, contiguous runs merged)."""
    from ops._data_movement import c_equals_runtime

    rng = np.random.default_rng(seed)
    rank = int(rng.integers(3, 7))
    shape = (1, *(int(d) for d in rng.integers(2, 4, size=rank - 1)))
    perm = [0, *(int(p) + 1 for p in rng.permutation(rank - 1))]
    p = np.asarray(perm, np.int32)
    g = single_op_model("TRANSPOSE",
                        [qtensor("x", shape, 0.05, -3), Tensor("perm", p.shape, "int32", data=p)],
                        qtensor("y", (1,), 0.05, -3))
    c_equals_runtime(g, tmp_path)


def test_simplified_walk_by_hand():
    from tinyopt.ops._movement import simplify_walk

    # NHWC (1, 4, 5, 3) → NCHW: output (c, h, w) with steps (1, 15, 3); h and w are one run of 20 pixels
    assert simplify_walk([1, 3, 4, 5], [60, 1, 15, 3]) == ([3, 20], [1, 3])
    # perm (0, 1, 3, 2, 4) of (1, 2, 4, 1, 3) only moves a unit axis: the input order, one run of 24
    assert simplify_walk([1, 2, 4, 1, 3], [12, 12, 3, 12, 1]) == ([24], [1])


LAYOUT_CASES = [((1, 3, 4), "ncl"), ((1, 1, 4), "ncl"), ((1, 3, 4, 5), "nchw"), ((1, 3, 1, 5), "nchw"),
                ((1, 3, 4), "plain"), ((1, 2, 3, 4), "plain"), ((3, 1, 4), "ordered"), ((2, 3, 4), "ordered"),
                ((2, 3, 4, 5), "ordered"), ((2, 1, 4, 5), "ordered"), ((2, 3, 4, 1), "ordered")]


@pytest.mark.parametrize("shape,layout", LAYOUT_CASES, ids=lambda v: str(v))
def test_framework_transposes_of_every_layout_equal_numpy(shape, layout):
    """Every permutation of a framework value held in each door layout (NCHW/NCL maps in NHWC, plain, and
    values whose batch is not their leading axis: batch@k, unbatched), with and without the channels-first
    views: the graph computes np.transpose of the framework value; one TRANSPOSE at most, none when only
    unit axes move, and every graph tensor keeps a batch of one in front."""
    import itertools

    from tinyopt.graph.torch_import import NchwBuilder, ordered, to_graph_array
    from tinyopt.ops.transpose import build

    rng = np.random.default_rng(len(shape))
    a = rng.normal(size=shape).astype(np.float32)
    for perm in list(itertools.permutations(range(len(shape))))[1:]:
        for view in (True, False):
            b = NchwBuilder("t", None, "onnx")
            x = b.input("x", shape, layout)
            y = build(b, "t", x, list(perm), view)
            b.g.outputs.append(y.name)
            g = b.g.validate()
            ops = [n.op for n in g.nodes]
            assert ops.count("TRANSPOSE") <= 1
            assert all(t.shape[0] == 1 for t in g.tensors.values() if t.data is None)
            want = np.transpose(a, perm)
            if "TRANSPOSE" not in ops:  # the same bytes: only unit axes moved, or a change of view
                long = [ax for ax in perm if shape[ax] != 1]
                assert long == sorted(long) or y.layout in ("nchw", "ncl") or x.layout in ("nchw", "ncl")
            out = Interpreter(g).run(to_graph_array(a, x.layout))[0]
            got = out.reshape(want.shape) if ordered(y.layout) else (
                out.transpose(0, 3, 1, 2) if y.layout == "nchw" else out[:, 0].transpose(0, 2, 1))
            np.testing.assert_array_equal(got, want, err_msg=f"perm {perm} view {view} -> {y.layout}")
