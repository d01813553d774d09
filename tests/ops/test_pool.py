"""Framework pooling with explicit pads and ceil_mode (ops/_pool.py build): every PyTorch / ONNX setting
either computes what the framework computes (a sweep against torch and ONNX Runtime) or is refused with
the reason; a padded max pool converted to int8 runs bit-exact in TFLM and in the C library."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from ops._data_movement import HAVE_CC, c_equals_runtime, export_onnx, onnx_matches, ops_of, torch_matches
from runtime._reference import assert_matches_reference, random_int8
from tinyopt.convert import convert_graph
from tinyopt.errors import UnsupportedOpError
from tinyopt.graph.torch_import import from_torch

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SWEEP = [c for c in itertools.product([5, 6, 7], [2, 3], [1, 2, 3], [0, 1], [False, True],
                                      ["max", "avg", "avg_x"])
         if c[3] <= c[1] // 2]


def _module(k, s, p, ceil, kind):
    if kind == "max":
        return torch.nn.MaxPool2d(k, s, p, ceil_mode=ceil)
    return torch.nn.AvgPool2d(k, s, p, ceil_mode=ceil, count_include_pad=kind == "avg")


def _refusable(h, k, s, p, ceil, kind) -> bool:
    """Where TFLite has no equivalent: an average that skips its pads unlike SAME, or a ceil_mode average
    whose cut last window SAME would place differently."""
    return kind != "max" and (p > 0 and kind == "avg_x" or ceil)


@pytest.mark.parametrize("h,k,s,p,ceil,kind", SWEEP)
def test_torch_pooling_is_exact_or_refused(h, k, s, p, ceil, kind):
    m = torch.nn.Sequential(_module(k, s, p, ceil, kind))
    try:
        g = torch_matches(m, (2, h, h + 1))
    except UnsupportedOpError as e:
        assert _refusable(h, k, s, p, ceil, kind), str(e)
        assert "average pooling" in str(e) and "Fix:" in str(e)
        assert "use padding 0" not in str(e)  # issue #20 item 5: never a padding fix for a padding of 0
        return
    if kind == "max":
        assert ops_of(g)[-1] == "MAX_POOL_2D"  # every max pool loads, with a PADV2 in front where needed


def test_ceil_mode_max_pool_of_squeezenet_needs_no_pad():
    """SqueezeNet 1.1's MaxPool2d(3, 2, ceil_mode=True): on 48 columns the last window [46, 49) runs one
    past the end, as TFLite's SAME places it (24 windows, total padding 1, none before); on 47 it ends at
    the end, which is VALID."""
    g = torch_matches(torch.nn.Sequential(torch.nn.MaxPool2d(3, 2, ceil_mode=True)), (2, 48, 48))
    assert ops_of(g) == ["MAX_POOL_2D"] and g.nodes[0].attrs["padding"] == "SAME"
    g = torch_matches(torch.nn.Sequential(torch.nn.MaxPool2d(3, 2, ceil_mode=True)), (2, 47, 47))
    assert ops_of(g) == ["MAX_POOL_2D"] and g.nodes[0].attrs["padding"] == "VALID"


def test_resnet_stem_max_pool_pads_with_the_lowest_value():
    g = torch_matches(torch.nn.Sequential(torch.nn.MaxPool2d(3, 2, 1)), (2, 8, 8))
    assert ops_of(g) == ["PADV2", "MAX_POOL_2D"]
    assert g.tensors[g.nodes[0].inputs[2]].data[0] == np.finfo(np.float32).min


def test_refusal_says_why():
    with pytest.raises(UnsupportedOpError, match="count_include_pad=False") as e:
        from_torch(torch.nn.Sequential(torch.nn.AvgPool2d(2, 2, 1, count_include_pad=False)), (1, 6, 6))
    assert "SAME padding ([0, 0, 0, 0] here)" in str(e.value) and "count_include_pad=True" in str(e.value)
    with pytest.raises(UnsupportedOpError, match="ceil_mode=True") as e:
        from_torch(torch.nn.Sequential(torch.nn.AvgPool2d(3, 3, ceil_mode=True)), (1, 7, 7))
    assert "use padding 0" not in str(e.value) and "ceil_mode=False" in str(e.value)


def test_one_dimensional_max_pool_with_padding():
    g = torch_matches(torch.nn.Sequential(torch.nn.MaxPool1d(3, 2, 1)), (2, 8))
    assert ops_of(g) == ["PADV2", "MAX_POOL_2D"]


@pytest.mark.parametrize("k,s,p,ceil,kind",
                         [(3, 2, 1, False, "max"), (3, 2, 0, True, "max"), (2, 2, 1, True, "max"),
                          (3, 1, 1, False, "avg"), (3, 1, 1, False, "avg_x"),
                          (2, 3, 1, True, "max")])
def test_onnx_pooling_matches_onnxruntime(k, s, p, ceil, kind, tmp_path):
    m = torch.nn.Sequential(_module(k, s, p, ceil, kind))
    onnx_matches(export_onnx(m, (2, 7, 8), tmp_path / "p.onnx"), (2, 7, 8))


class Stem(torch.nn.Module):
    """ResNet's stem at a small size: conv, ReLU, a max pool with padding 1, then one with ceil_mode."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, 2, 1)
        self.pool = torch.nn.MaxPool2d(3, 2, 1)
        self.pool2 = torch.nn.MaxPool2d(2, 2, ceil_mode=True)

    def forward(self, x):
        return self.pool2(self.pool(torch.relu(self.conv(x))))


def _stem_int8():
    torch.manual_seed(0)
    g = from_torch(Stem().eval(), (3, 20, 18))
    calib = np.random.default_rng(0).normal(size=(32, 20, 18, 3)).astype(np.float32)
    return convert_graph(g, calib)


def test_padded_max_pool_converts_and_runs_bit_exact_in_tflm():
    q = _stem_int8()
    assert "PADV2" in ops_of(q)
    pad = next(n for n in q.nodes if n.op == "PADV2")
    assert q.tensors[pad.inputs[2]].data.tolist() == [-128]
    assert_matches_reference(q, random_int8(np.random.default_rng(1), (8, 20, 18, 3)))


@pytest.mark.skipif(not HAVE_CC, reason="no host C compiler (cc)")
def test_padded_max_pool_c_library_equals_runtime(tmp_path):
    c_equals_runtime(_stem_int8(), tmp_path)
