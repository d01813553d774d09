"""DEPTH_TO_SPACE against TFLM (60 seeded shapes and block sizes; int8 and float32), converted, through
the doors (ONNX DepthToSpace in DCR and CRD order, PixelShuffle / F.pixel_shuffle) and in C."""

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
    shape = (1, int(rng.integers(1, 5)), int(rng.integers(1, 5)), b * b * int(rng.integers(1, 4)))
    return rng, shape, b, single_op_model("DEPTH_TO_SPACE", [act("x", shape, is_int)], act("y", (1,), is_int),
                                          {"block_size": b})


@pytest.mark.parametrize("seed", range(60))
def test_matches_tflm(seed):
    rng, shape, b, g = _graph(seed, seed % 2 == 1)
    x = rows(rng, shape, seed % 2 == 1)
    out = matches_tflm(g, x)[0]
    _, h, w, c = shape
    co = c // (b * b)
    for oh, ow, d in [(0, 0, 0), (h * b - 1, w * b - 1, co - 1), (h * b // 2, w * b - 1, co // 2)]:
        # by hand, TFLM's index formula: input channel (oh % b * b + ow % b) * C_out + d of pixel (oh/b, ow/b)
        np.testing.assert_array_equal(out[:, oh, ow, d],
                                      x[:, oh // b, ow // b, (oh % b * b + ow % b) * co + d])


def test_channels_not_a_multiple_of_the_block_are_refused():
    with pytest.raises(ModelFormatError, match="not a multiple of block_size") as e:
        single_op_model("DEPTH_TO_SPACE", [Tensor("x", (1, 2, 2, 6))], Tensor("y", (1,)), {"block_size": 2})
    assert "DEPTH_TO_SPACE" in str(e.value) and "Fix:" in str(e.value)


def test_converted_graph_matches_tflm():
    converted_matches_tflm(single_op_model("DEPTH_TO_SPACE", [Tensor("x", (1, 3, 4, 8))], Tensor("y", (1,)),
                                           {"block_size": 2}))


def test_pixel_shuffle_matches_torch():
    class Up(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(2, 12, 1)
            self.ps = torch.nn.PixelShuffle(2)

        def forward(self, x):
            y = self.conv(x)
            return torch.cat([self.ps(y), F.pixel_shuffle(y[:, :4], 2)], 1)

    g = torch_matches(Up(), (2, 3, 4))
    assert ops_of(g).count("DEPTH_TO_SPACE") == 2 and "GATHER" in ops_of(g)  # CRD channels gathered first


@pytest.mark.parametrize("mode", ["DCR", "CRD"])
def test_onnx_depth_to_space_matches(mode, tmp_path):
    node = helper.make_node("DepthToSpace", ["x"], ["y"], blocksize=2, mode=mode)
    graph = helper.make_graph([node], "d2s",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 12, 3, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 6, 4])])
    path = tmp_path / f"{mode}.onnx"
    import onnx

    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    g = onnx_matches(path, (12, 3, 2))
    assert ("GATHER" in ops_of(g)) == (mode == "CRD")


@pytest.mark.skipif(not HAVE_CC, reason="no host C compiler (cc)")
@pytest.mark.parametrize("seed", [1, 3, 7])
def test_c_library_equals_runtime(seed, tmp_path):
    c_equals_runtime(_graph(seed, True)[3], tmp_path)
