"""RESIZE_BILINEAR against TFLM (60 seeded shapes and flags, float32 and int8), TFLM's integer rounding by
hand, through convert, as a C kernel (host and Cortex-M4), through the ONNX and PyTorch doors, and a small
U-Net (conv, upsample, concat) converted to int8 = TFLM and C = TFLM through both doors."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from onnx import helper

from ops._spatial import (
    assert_c_matches,
    assert_onnx_matches_ort,
    assert_torch_matches,
    c_outputs,
    convert_and_match_tflm,
    dequantize_output,
    export_onnx,
    needs_cc,
    onnx_file,
    quantize_input,
    to_nhwc,
)
from runtime._reference import assert_matches_reference, qtensor, random_int8, run_tflm
from tinyopt.convert import convert_graph
from tinyopt.errors import ModelFormatError, UnsupportedOpError
from tinyopt.export.tflite import graph_to_tflite_bytes, single_op_model
from tinyopt.graph.ir import Tensor
from tinyopt.graph.onnx_import import load_onnx
from tinyopt.graph.torch_import import from_torch
from tinyopt.runtime import Interpreter

pytestmark = pytest.mark.usefixtures("one_torch_thread")
OP = "RESIZE_BILINEAR"


def model(x, out_hw, flags=(False, False)):
    size = Tensor("size", (2,), "int32", data=np.asarray(out_hw, np.int32))
    y = Tensor("y", (1,), x.dtype, quant=x.quant)
    return single_op_model(OP, [x, size], y, {"align_corners": flags[0], "half_pixel_centers": flags[1]})


@pytest.mark.parametrize("seed", range(60))
def test_matches_tflm(seed):
    rng = np.random.default_rng(seed)
    in_hw = tuple(int(v) for v in rng.integers(1, 9, size=2))
    out_hw = tuple(int(v) for v in rng.integers(1, 17, size=2))
    ch = int(rng.integers(1, 5))
    flags = [(False, False), (False, True), (True, False)][seed % 3]
    shape = (1, *in_hw, ch)
    if seed % 2:
        x, inputs = qtensor("x", shape, 0.03, int(rng.integers(-128, 128))), random_int8(rng, (4, *shape[1:]))
    else:
        x, inputs = Tensor("x", shape), rng.normal(size=(4, *shape[1:])).astype(np.float32)
    out = assert_matches_reference(model(x, out_hw, flags), inputs)[0]
    assert out.shape == (4, *out_hw, ch)
    slack = 0 if seed % 2 else 1e-5  # an interpolation stays within its pixels (float: to rounding)
    assert out.min() >= inputs.min() - slack and out.max() <= inputs.max() + slack


def test_integer_kernel_rounds_halves_away_from_zero():
    # 1 x 2 -> 1 x 4 (asymmetric): column 1 sits half way between the two pixels (scale_10 = 512), so it is
    # (a + b) / 2: -1 and -2 give -1.5 -> -2, and 1 and 2 give 1.5 -> 2 (TFLM's build rounds twice, not floor)
    g = model(qtensor("x", (1, 1, 2, 1), 0.1, 0), (1, 4))
    x = np.array([[-1, -2], [1, 2], [-128, 127]], np.int8).reshape(3, 1, 2, 1)
    out = assert_matches_reference(g, x)[0][:, 0, :, 0]
    np.testing.assert_array_equal(out, [[-1, -2, -2, -2], [1, 2, 2, 2], [-128, -1, 127, 127]])


def test_both_flags_are_refused():
    g = model(Tensor("x", (1, 2, 2, 1)), (4, 4), (False, False))
    g.nodes[0].attrs.update(align_corners=True, half_pixel_centers=True)
    with pytest.raises(ModelFormatError, match="align_corners and half_pixel_centers.*Fix: set at most one"):
        Interpreter(g)


def test_convert_runs_bit_exact_in_tflm():
    rng = np.random.default_rng(0)
    g = model(Tensor("x", (1, 4, 5, 3)), (8, 10), (False, True))
    convert_and_match_tflm(g, rng.normal(size=(32, 4, 5, 3)).astype(np.float32),
                           rng.normal(size=(16, 4, 5, 3)).astype(np.float32))


@needs_cc
@pytest.mark.parametrize("flags, in_hw, out_hw", [
    ((False, False), (5, 7), (11, 4)), ((False, True), (3, 4), (12, 16)), ((True, False), (6, 5), (9, 13)),
    ((False, True), (9, 8), (4, 3))])
def test_c_kernel_equals_runtime_and_tflm(flags, in_hw, out_hw, tmp_path):
    rng = np.random.default_rng(5)
    g = model(qtensor("x", (1, *in_hw, 3), 0.05, -4), out_hw, flags)
    assert_c_matches(g, random_int8(rng, (20, *in_hw, 3)), tmp_path)


# -- doors

class Interp(torch.nn.Module):
    def __init__(self, **kw):
        super().__init__()
        self.kw = kw

    def forward(self, x):
        return torch.nn.functional.interpolate(x * 2, **self.kw)


@pytest.mark.parametrize("module, shape", [
    (torch.nn.Upsample(scale_factor=2, mode="bilinear"), (3, 4, 5)),
    (torch.nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True), (2, 4, 3)),
    (torch.nn.UpsamplingBilinear2d(size=(7, 9)), (2, 3, 4)),
    (Interp(size=(9, 5), mode="bilinear"), (2, 4, 6)),
    (Interp(scale_factor=0.5, mode="bilinear"), (2, 8, 6)),
    (Interp(size=(12,), mode="linear"), (3, 5)),
], ids=["x2", "x2-align", "UpsamplingBilinear2d", "size", "down-half", "1d-linear"])
def test_torch_door_matches_torch(module, shape):
    g = assert_torch_matches(module, shape)
    assert OP in [n.op for n in g.nodes]


@pytest.mark.parametrize("coord, scales", [("half_pixel", (2.0, 3.0)), ("pytorch_half_pixel", (2.0, 0.5)),
                                           ("align_corners", (2.0, 1.5)), ("asymmetric", (3.0, 2.0))])
def test_onnx_resize_linear_matches_ort(tmp_path, coord, scales):
    x = np.random.default_rng(0).normal(size=(2, 3, 4, 6)).astype(np.float32)
    node = helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="linear",
                            coordinate_transformation_mode=coord)
    path = onnx_file(tmp_path, [node], (1, 3, 4, 6), [("scales", np.asarray([1, 1, *scales], np.float32))])
    g = assert_onnx_matches_ort(path, x)
    assert [n.op for n in g.nodes] == [OP]


def test_onnx_upsample_linear_and_refusals(tmp_path):
    x = np.random.default_rng(1).normal(size=(2, 2, 3, 5)).astype(np.float32)
    up = helper.make_node("Upsample", ["x", "scales"], ["y"], mode="linear")
    scales = [("scales", np.asarray([1, 1, 2, 2], np.float32))]
    path = onnx_file(tmp_path, [up], (1, 2, 3, 5), scales, opset=9)
    assert_onnx_matches_ort(path, x)
    cubic = helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="cubic")
    path = onnx_file(tmp_path, [cubic], (1, 2, 3, 5), [("scales", np.asarray([1, 1, 2, 2], np.float32))],
                     name="cubic.onnx")
    with pytest.raises(UnsupportedOpError, match="mode 'cubic'.*Fix: use mode 'nearest' or 'linear'"):
        load_onnx(path)
    # asymmetric with a scale that is not out / in: ONNX samples at y / 1.3, TFLite at y * 5 / 6
    odd = helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="linear",
                           coordinate_transformation_mode="asymmetric")
    path = onnx_file(tmp_path, [odd], (1, 1, 5, 5), [("scales", np.asarray([1, 1, 1.3, 1], np.float32))],
                     name="odd.onnx")
    with pytest.raises(UnsupportedOpError, match="no TFLite equivalent"):
        load_onnx(path)


# -- a small U-Net: conv, downsample, upsample (nearest and bilinear), concat; int8 = TFLM, C = TFLM

class TinyUNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = torch.nn.Sequential(torch.nn.Conv2d(2, 6, 3, padding=1), torch.nn.ReLU())
        self.down = torch.nn.Sequential(torch.nn.Conv2d(6, 8, 3, stride=2, padding=1), torch.nn.ReLU())
        self.mid = torch.nn.Sequential(torch.nn.Conv2d(8, 8, 3, stride=2, padding=1), torch.nn.ReLU())
        self.up1 = torch.nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.dec1 = torch.nn.Sequential(torch.nn.Conv2d(16, 6, 3, padding=1), torch.nn.ReLU())
        self.up2 = torch.nn.Upsample(scale_factor=2, mode="nearest")
        self.head = torch.nn.Conv2d(12, 3, 1)

    def forward(self, x):
        e = self.enc(x)
        d = self.down(e)
        m = self.up1(self.mid(d))
        u = self.dec1(torch.cat([m, d], dim=1))
        return self.head(torch.cat([self.up2(u), e], dim=1))


def _unet_checks(g, x, tmp_path):
    ops = {n.op for n in g.nodes}
    assert {"RESIZE_NEAREST_NEIGHBOR", OP, "CONCATENATION", "CONV_2D"} <= ops
    q = convert_graph(g, to_nhwc(x[:48]))
    xs = quantize_input(q, to_nhwc(x[48:]))
    out = assert_matches_reference(q, xs)[0]  # the int8 graph in TFLM
    if shutil.which("cc"):
        np.testing.assert_array_equal(c_outputs(q, xs, tmp_path).reshape(out.shape), out)
    return q, out


def test_unet_through_torch_and_onnx_int8_equals_tflm_and_c(tmp_path):
    torch.manual_seed(0)
    net = TinyUNet().eval()
    x = torch.rand(64, 2, 16, 16).numpy()
    g = assert_torch_matches(net, (2, 16, 16), atol=1e-4)
    q, out = _unet_checks(g, x, tmp_path / "torch")
    with torch.no_grad():
        want = net(torch.from_numpy(x[48:])).numpy().transpose(0, 2, 3, 1)
    err = np.abs(dequantize_output(q, out) - want).max()
    assert err < 0.1 * np.abs(want).max()  # the int8 model still computes the network
    path = export_onnx(net, (2, 16, 16), tmp_path / "unet.onnx", opset=13)
    gx = assert_onnx_matches_ort(path, x[:4], atol=1e-4)
    _unet_checks(gx, x, tmp_path / "onnx")


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
                    reason="no arm-none-eabi-gcc / qemu-system-arm")
def test_resize_kernels_on_cortex_m4_equal_the_host(tmp_path):
    """Both resize kernels in one library, built for the M4 and run under qemu: the same bytes as TFLM."""
    from tinyopt.export.c import generate_sources, write_library
    from tinyopt.export.c.board import build_m4, run_qemu

    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1),
                              torch.nn.Upsample(scale_factor=2, mode="bilinear"), torch.nn.Conv2d(4, 4, 1),
                              torch.nn.Upsample(size=(19, 13), mode="nearest")).eval()
    x = torch.rand(24, 3, 5, 6).numpy()
    q = convert_graph(from_torch(net, (3, 5, 6)), to_nhwc(x[:16]))
    xs = quantize_input(q, to_nhwc(x[16:]))
    ref = run_tflm(graph_to_tflite_bytes(q), [xs])[0].reshape(len(xs), -1)
    lib = generate_sources(q)
    write_library(lib.files, tmp_path / "lib")
    m4 = build_m4(tmp_path / "lib", tmp_path / "m4", xs.reshape(len(xs), -1))
    outs, _ = run_qemu(m4.elf, lib.output_bytes)
    np.testing.assert_array_equal(outs, ref)


def test_cli_names_the_file_node_and_fix_of_a_refused_resize(tmp_path, capsys):
    """tinyopt analyze on an ONNX model with a bicubic Resize: exit 2, one line with the file, the node,
    the mode and the fix, no traceback."""
    from tinyopt.cli import main

    cubic = helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="cubic", name="up")
    path = onnx_file(tmp_path, [cubic], (1, 2, 3, 5), [("scales", np.asarray([1, 1, 2, 2], np.float32))])
    assert main(["analyze", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert str(path) in err and "node 0 'up' (Resize)" in err and "mode 'cubic'" in err and "Fix:" in err
