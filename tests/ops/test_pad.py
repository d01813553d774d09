"""PAD against TFLM (60 seeded shapes and paddings; int8 pads with the output zero point), its doors
(ONNX Pad and nn.ConstantPad2d / F.pad with zeros or a value: PADV2), the C kernel, and the padding
resolution the window doors use (framework pads → TFLite's SAME / VALID behind a PAD), by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

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
from tinyopt.export.tflite import single_op_model
from tinyopt.graph.ir import Tensor
from tinyopt.ops.pad import axis_choice, framework_windows, tflite_windows

pytestmark = pytest.mark.usefixtures("one_torch_thread")


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
    g = single_op_model("PAD", [act("x", shape, is_int, 0.05, -7), ci("p", pads)],
                        act("y", (1,), is_int, 0.05, -7))
    x = rows(rng, shape, is_int)
    out = matches_tflm(g, x)[0]
    fill = -7 if is_int else 0.0  # int8: the output zero point, a real 0
    np.testing.assert_array_equal(out, np.pad(x, pads, constant_values=fill))


def test_converted_graph_matches_tflm():
    converted_matches_tflm(single_op_model("PAD", [Tensor("x", (1, 3, 4, 2)),
                                                   ci("p", [[0, 0], [1, 2], [2, 0], [0, 1]])],
                                           Tensor("y", (1,))))


class Pads(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.zero = torch.nn.ZeroPad2d((1, 0, 2, 1))
        self.const = torch.nn.ConstantPad2d((0, 1, 1, 0), 0.75)

    def forward(self, x):
        return self.const(self.zero(x)) + F.pad(x, (1, 1, 2, 2), value=-2.0)


def test_zero_and_constant_pads_match_torch_and_onnx(tmp_path):
    g = torch_matches(Pads(), (2, 3, 4))
    assert {"PAD", "PADV2"} <= set(ops_of(g))
    h = onnx_matches(export_onnx(Pads(), (2, 3, 4), tmp_path / "p.onnx"), (2, 3, 4))
    assert {"PAD", "PADV2"} <= set(ops_of(h))


@pytest.mark.skipif(not HAVE_CC, reason="no host C compiler (cc)")
@pytest.mark.parametrize("seed", [1, 3, 5])
def test_c_library_equals_runtime(seed, tmp_path):
    _, shape, pads = _config(seed)
    g = single_op_model("PAD", [act("x", shape, True, 0.05, 9), ci("p", pads)], act("y", (1,), True, 0.05, 9))
    out = c_equals_runtime(g, tmp_path)
    assert (out == 9).any() or not np.asarray(pads).any()  # padded with the zero point


# -- resolving framework pads: what each output position computes, on one axis ---------------------------

def test_windows_by_hand():
    # size 5, kernel 3, stride 2, pads (1, 1): windows start at -1, 1, 3 and cover [0,2), [1,4), [3,5)
    assert framework_windows(5, 3, 2, 1, 1, 1, False, "max") == [(0, 2), (1, 4), (3, 5)]
    # count_include_pad: the divisor counts the pads inside [-1, 6): 3 each; without: 2, 3, 2
    assert [w[2] for w in framework_windows(5, 3, 2, 1, 1, 1, False, "avg_include")] == [3, 3, 3]
    assert [w[2] for w in framework_windows(5, 3, 2, 1, 1, 1, False, "avg_exclude")] == [2, 3, 2]
    # TFLite SAME on 5 with kernel 3 stride 2: out 3, total pad 2, one before: the same windows
    assert tflite_windows(5, 3, 2, 1, 0, 0, True, "avg_exclude") == framework_windows(5, 3, 2, 1, 1, 1, False,
                                                                                      "avg_exclude")
    # ceil_mode, size 6, kernel 3, stride 2, no pads: a last window [4, 6) (PyTorch), which SAME also gives
    # (out 3, total 1, none before); a max pool needs no PAD, the VALID alternative one extra column
    assert framework_windows(6, 3, 2, 1, 0, 0, True, "max") == [(0, 3), (2, 5), (4, 6)]
    assert axis_choice(6, 3, 2, 1, 0, 0, True, "max", True, True) == (0, 0)
    assert axis_choice(6, 3, 2, 1, 0, 0, True, "max", False, True) == (0, 1)
    # ceil_mode never starts a window in the padding after the input (PyTorch's rule): 2 windows, not 3
    assert len(framework_windows(4, 2, 2, 1, 1, 1, True, "max")) == 3
    assert len(framework_windows(5, 2, 3, 1, 0, 1, True, "max")) == 2


def test_conv_pads_keep_the_taps():
    # a convolution compares first taps: pads (1, 1) on 5 with kernel 3 stride 1 is SAME; (2, 0) is not
    assert axis_choice(5, 3, 1, 1, 1, 1, False, "conv", True, False) == (0, 0)
    assert axis_choice(5, 3, 1, 1, 2, 0, False, "conv", True, False) is None
    assert axis_choice(5, 3, 1, 1, 2, 0, False, "conv", False, True) == (2, 0)
