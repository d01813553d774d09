"""SPACE_TO_DEPTH against TFLM (60 seeded shapes and block sizes; int8 and float32), converted, through
the doors (ONNX SpaceToDepth, PixelUnshuffle / F.pixel_unshuffle) and in C."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper

from ops._data_movement import (
    HAVE_CC,
    act,
    c_equals_runtime,
    converted_matches_tflm,
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


def _graph(seed: int, is_int: bool):
    rng = np.random.default_rng(seed)
    b = int(rng.integers(1, 4))
    shape = (1, b * int(rng.integers(1, 4)), b * int(rng.integers(1, 4)), int(rng.integers(1, 5)))
    return rng, shape, b, single_op_model("SPACE_TO_DEPTH", [act("x", shape, is_int)], act("y", (1,), is_int),
                                          {"block_size": b})


@pytest.mark.parametrize("seed", range(60))
def test_matches_tflm(seed):
    rng, shape, b, g = _graph(seed, seed % 2 == 1)
    x = rows(rng, shape, seed % 2 == 1)
    out = matches_tflm(g, x)[0]
    _, h, w, c = shape
    for ih, iw, d in [(0, 0, 0), (h - 1, w - 1, c - 1), (h // 2, w - 1, c // 2)]:
        # by hand, TFLM's index formula: pixel (ih/b, iw/b) channel (ih % b * b + iw % b) * C + d
        np.testing.assert_array_equal(out[:, ih // b, iw // b, (ih % b * b + iw % b) * c + d],
                                      x[:, ih, iw, d])


def test_sizes_not_a_multiple_of_the_block_are_refused():
    with pytest.raises(ModelFormatError, match="not a multiple of block_size 2") as e:
        single_op_model("SPACE_TO_DEPTH", [Tensor("x", (1, 3, 2, 1))], Tensor("y", (1,)), {"block_size": 2})
    assert "SPACE_TO_DEPTH" in str(e.value) and "Fix:" in str(e.value)


def test_converted_graph_matches_tflm():
    converted_matches_tflm(single_op_model("SPACE_TO_DEPTH", [Tensor("x", (1, 4, 6, 3))], Tensor("y", (1,)),
                                           {"block_size": 2}))


def test_pixel_unshuffle_matches_torch():
    class Down(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.pu = torch.nn.PixelUnshuffle(2)

        def forward(self, x):
            return self.pu(x) + F.pixel_unshuffle(x * 2, 2)

    g = torch_matches(Down(), (3, 4, 6))
    assert ops_of(g).count("SPACE_TO_DEPTH") == 2 and "GATHER" in ops_of(g)


def test_onnx_space_to_depth_matches(tmp_path):
    import onnx

    node = helper.make_node("SpaceToDepth", ["x"], ["y"], blocksize=2)
    graph = helper.make_graph([node], "s2d",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 12, 2, 3])])
    path = tmp_path / "s2d.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    assert ops_of(onnx_matches(path, (3, 4, 6))) == ["SPACE_TO_DEPTH"]


@pytest.mark.skipif(not HAVE_CC, reason="no host C compiler (cc)")
@pytest.mark.parametrize("seed", [1, 3, 5])
def test_c_library_equals_runtime(seed, tmp_path):
    c_equals_runtime(_graph(seed, True)[3], tmp_path)
