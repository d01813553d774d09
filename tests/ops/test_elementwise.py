"""ADD, SUB, MUL against TFLM: different operand scales, zero-point extremes, broadcasting a per-channel
constant, saturating outputs and fused activations."""

from __future__ import annotations

import numpy as np
import pytest

from runtime._reference import assert_matches_reference, qtensor, random_int8
from tinyopt.export.tflite import single_op_model


@pytest.mark.parametrize("op", ["ADD", "SUB", "MUL"])
@pytest.mark.parametrize("s1,z1,s2,z2,so,zo,act", [
    (0.05, 0, 0.05, 0, 0.1, 0, "NONE"),
    (0.02, -128, 0.3, 127, 0.07, -5, "RELU"),
    (0.5, 127, 0.001, -128, 0.01, 127, "RELU6"),  # output saturates
])
def test_binary_matches_tflm(op, s1, z1, s2, z2, so, zo, act):
    rng = np.random.default_rng(40)
    a = qtensor("a", (1, 4, 5, 3), s1, z1)
    b = qtensor("b", (1, 4, 5, 3), s2, z2)
    y = qtensor("y", (1, 4, 5, 3), so, zo)
    g = single_op_model(op, [a, b], y, dict(activation=act))
    assert_matches_reference(g, [random_int8(rng, (20, 4, 5, 3)),
                                 random_int8(rng, (20, 4, 5, 3), extremes=False)])


@pytest.mark.parametrize("op", ["ADD", "MUL"])
def test_broadcast_constant_matches_tflm(op):
    rng = np.random.default_rng(41)
    a = qtensor("a", (1, 3, 3, 4), 0.04, 3)
    c = qtensor("c", (1, 1, 1, 4), 0.02, -10, data=rng.integers(-128, 128, (1, 1, 1, 4)).astype(np.int8))
    y = qtensor("y", (1, 3, 3, 4), 0.05, 0)
    g = single_op_model(op, [a, c], y, dict(activation="NONE"))
    assert_matches_reference(g, random_int8(rng, (20, 3, 3, 4)))
