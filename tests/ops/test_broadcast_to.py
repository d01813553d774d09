"""BROADCAST_TO against TFLM (60 seeded shapes: unit axes repeated, new leading axes; int8 and float32),
converted, through the doors (ONNX Expand, Tensor.expand / expand_as) and in C (a walk with step 0)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ops._data_movement import (
    HAVE_CC,
    act,
    c_equals_runtime,
    ci,
    converted_matches_tflm,
    export_onnx,
    matches_tflm,
    onnx_matches,
    ops_of,
    rows,
    torch_matches,
)
from tinyopt.errors import ModelFormatError
from tinyopt.export.tflite import single_op_model
from tinyopt.graph.ir import Tensor

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _config(seed: int):
    rng = np.random.default_rng(seed)
    out_rank = int(rng.integers(2, 6))
    target = [1, *(int(d) for d in rng.integers(1, 5, size=out_rank - 1))]
    in_rank = int(rng.integers(1, out_rank + 1))
    shape = [d if rng.random() < 0.5 else 1 for d in target[out_rank - in_rank:]]
    shape[0] = 1  # the batch row: a (1, ...) input broadcast along the axes after it
    return rng, tuple(shape), tuple(target)


@pytest.mark.parametrize("seed", range(60))
def test_matches_tflm(seed):
    rng, shape, target = _config(seed)
    is_int = seed % 2 == 1
    g = single_op_model("BROADCAST_TO", [act("x", shape, is_int), ci("s", target)], act("y", (1,), is_int))
    x = rows(rng, shape, is_int)
    out = matches_tflm(g, x)[0]
    np.testing.assert_array_equal(out,
                                  np.stack([np.broadcast_to(r[None], target) for r in x]).reshape(out.shape))


def test_a_shape_it_cannot_reach_is_refused():
    with pytest.raises(ModelFormatError, match="cannot broadcast \\[1, 3\\] to \\[1, 2\\]") as e:
        single_op_model("BROADCAST_TO", [Tensor("x", (1, 3)), ci("s", [1, 2])], Tensor("y", (1,)))
    assert "BROADCAST_TO" in str(e.value) and "Fix:" in str(e.value)


def test_converted_graph_matches_tflm():
    converted_matches_tflm(single_op_model("BROADCAST_TO", [Tensor("x", (1, 1, 4, 1)), ci("s", [1, 3, 4, 2])],
                                           Tensor("y", (1,))))


class Expand(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(2, 4, 1)

    def forward(self, x):
        y = self.conv(x)
        gate = y.mean((2, 3), keepdim=True)  # (N, C, 1, 1)
        return gate.expand_as(y) - gate.expand(-1, -1, y.shape[2], y.shape[3]) * 0.5 + y


def test_expand_matches_torch_and_onnx(tmp_path):
    assert "BROADCAST_TO" in ops_of(torch_matches(Expand(), (2, 3, 5)))
    assert "BROADCAST_TO" in ops_of(onnx_matches(export_onnx(Expand(), (2, 3, 5), tmp_path / "e.onnx"),
                                                 (2, 3, 5)))


@pytest.mark.skipif(not HAVE_CC, reason="no host C compiler (cc)")
@pytest.mark.parametrize("seed", [1, 3, 5, 7])
def test_c_library_equals_runtime(seed, tmp_path):
    _, shape, target = _config(seed)
    g = single_op_model("BROADCAST_TO", [act("x", shape, True), ci("s", target)], act("y", (1,), True))
    c_equals_runtime(g, tmp_path)
