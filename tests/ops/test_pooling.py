"""AVERAGE_POOL_2D and MAX_POOL_2D against TFLM: SAME windows clipped at the border (stride 2, odd
sizes), VALID, fused activations that clamp."""

from __future__ import annotations

import numpy as np
import pytest

from runtime._reference import assert_matches_reference, qtensor, random_int8
from tinyopt.export.tflite import single_op_model


@pytest.mark.parametrize("op", ["AVERAGE_POOL_2D", "MAX_POOL_2D"])
@pytest.mark.parametrize("attrs", [
    dict(filter=(3, 3), stride=(2, 2), padding="SAME", activation="NONE"),
    dict(filter=(2, 3), stride=(2, 1), padding="VALID", activation="RELU"),
    dict(filter=(5, 7), stride=(1, 1), padding="VALID", activation="RELU6"),
])
def test_pool_matches_tflm(op, attrs):
    rng = np.random.default_rng(30)
    x = qtensor("x", (1, 5, 7, 3), 0.05, -7)
    y = qtensor("y", (1, 1, 1, 3), 0.05, -7)
    g = single_op_model(op, [x], y, attrs)
    assert_matches_reference(g, random_int8(rng, (24, 5, 7, 3)))


def test_average_pool_rounds_half_away_from_zero():
    # Window [1, 2] → 1.5 → 2 and [-1, -2] → -1.5 → -2 (TFLM: (sum ± count/2) / count, truncated).
    from tinyopt.runtime import Interpreter

    x = qtensor("x", (1, 1, 4, 1), 0.05, 0)
    y = qtensor("y", (1, 1, 1, 1), 0.05, 0)
    g = single_op_model("AVERAGE_POOL_2D", [x], y, dict(filter=(1, 2), stride=(1, 2), padding="VALID"))
    out = Interpreter(g).run(np.array([[[[1], [2], [-1], [-2]]]], np.int8))[0]
    assert out.ravel().tolist() == [2, -2]
