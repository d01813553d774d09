"""The C library's element-wise kernels against the numpy runtime (and TFLM through it): the 256-entry
tables of LOGISTIC / TANH / RELU / RELU6, and ADD / SUB / MUL with broadcasting or a constant operand."""

from __future__ import annotations

import numpy as np
import pytest

from ops._oracles import assert_c_equals_runtime, branch_graph, needs_cc
from runtime._reference import assert_matches_reference, qtensor, random_int8
from tinyopt.export.tflite import single_op_model


@needs_cc
@pytest.mark.parametrize("op,qy",
                         [("LOGISTIC", (1 / 256, -128)), ("TANH", (1 / 128, 0)), ("RELU", (0.03, -128)),
                          ("RELU6", None)])
def test_table_kernels_equal_the_runtime(op, qy, tmp_path):
    rng = np.random.default_rng(len(op))
    x = qtensor("x", (1, 5, 7, 3), 0.047, -9)
    g = single_op_model(op, [x], qtensor("y", (1,), *(qy or (0.047, -9))))
    xs = random_int8(rng, (24, 5, 7, 3))
    assert_matches_reference(g, xs)  # the runtime is TFLM's ...
    assert_c_equals_runtime(g, xs, tmp_path)  # ... and the table reproduces it


@needs_cc
@pytest.mark.parametrize("op", ["ADD", "SUB", "MUL"])
@pytest.mark.parametrize("axes,swap", [([3], False), ([1, 2], True), ([1, 2, 3], False)])
def test_broadcast_arithmetic_equals_the_runtime(op, axes, swap, tmp_path):
    """x (1,4,6,8) against its own reduction over ``axes`` (a squeeze-excite-like broadcast)."""
    g = branch_graph(op, (1, 4, 6, 8), axes, attrs={"activation": "RELU" if op == "ADD" else "NONE"},
                     swap=swap, qy=(0.06, 5), reducer="MEAN")
    xs = random_int8(np.random.default_rng(len(axes) + 7 * swap), (20, 4, 6, 8))
    assert_matches_reference(g, xs)
    assert_c_equals_runtime(g, xs, tmp_path)


@needs_cc
@pytest.mark.parametrize("op", ["ADD", "SUB", "MUL"])
def test_constant_operand_arithmetic_equals_the_runtime(op, tmp_path):
    """A per-channel and a scalar constant (hard sigmoid's + 3 and / 6 after conversion)."""
    rng = np.random.default_rng(11)
    for shape in ((8,), (1,)):
        c = rng.integers(-128, 128, size=shape).astype(np.int8)
        g = single_op_model(op, [qtensor("x", (1, 3, 5, 8), 0.05, -4), qtensor("c", shape, 0.02, 3, data=c)],
                            qtensor("y", (1,), 0.07, 2), {"activation": "NONE"})
        xs = random_int8(rng, (16, 3, 5, 8))
        assert_matches_reference(g, xs)
        assert_c_equals_runtime(g, xs, tmp_path / f"{op}{shape[0]}")
