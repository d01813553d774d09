"""TRANSPOSE_CONV against TFLM (60 seeded configurations: sizes, kernels, strides, SAME/VALID, output
sizes, per-channel scales, zero points, fused activations, with and without bias; float32 and int8), by
hand, through convert (BatchNorm folded), as a C kernel, through the ONNX (ConvTranspose) and PyTorch
(nn.ConvTranspose1d/2d) doors, and a small decoder converted to int8 = TFLM and C = TFLM."""

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
from runtime._reference import assert_matches_reference, qtensor, random_int8
from tinyopt.convert import convert_graph
from tinyopt.errors import ModelFormatError, UnsupportedOpError
from tinyopt.export.tflite import single_op_model
from tinyopt.graph.ir import Tensor
from tinyopt.graph.onnx_import import load_onnx
from tinyopt.graph.passes import fold_batchnorm
from tinyopt.graph.torch_import import from_torch
from tinyopt.ops.transpose_conv import tflite_kernel
from tinyopt.runtime import Interpreter

pytestmark = pytest.mark.usefixtures("one_torch_thread")
OP = "TRANSPOSE_CONV"


def tc_model(rng, dtype, in_hw, k, cin, cout, stride, pad, out_hw, act="NONE", bias=True, in_zp=0, out_zp=0,
             w_scales=None, out_scale=0.1):
    shape = Tensor("output_shape", (4,), "int32", data=np.asarray([1, *out_hw, cout], np.int32))
    if dtype == "float32":
        x, y = Tensor("x", (1, *in_hw, cin)), Tensor("y", (1,))
        w = Tensor("w", (cout, *k, cin), data=rng.normal(size=(cout, *k, cin)).astype(np.float32))
        b = Tensor("b", (cout,), data=rng.normal(size=cout).astype(np.float32))
    else:
        ws = rng.uniform(0.002, 0.02, cout).astype(np.float32) if w_scales is None else np.float32(w_scales)
        x, y = qtensor("x", (1, *in_hw, cin), 0.02, in_zp), qtensor("y", (1,), out_scale, out_zp)
        w = qtensor("w", (cout, *k, cin), ws, np.zeros(cout, np.int64), axis=0,
                    data=rng.integers(-127, 128, size=(cout, *k, cin)).astype(np.int8))
        b = qtensor("b", (cout,), 0.02 * ws, np.zeros(cout, np.int64), dtype="int32", axis=0,
                    data=rng.integers(-4000, 4000, size=cout).astype(np.int32))
    return single_op_model(OP, [shape, w, x, *([b] if bias else [])], y,
                           {"padding": pad, "stride": stride, "activation": act})


def _case(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    in_hw = tuple(int(v) for v in rng.integers(1, 6, size=2))
    k = tuple(int(v) for v in rng.integers(1, 5, size=2))
    stride = tuple(int(v) for v in rng.integers(1, 4, size=2))
    pad = "SAME" if seed % 3 else "VALID"
    if pad == "SAME":  # the converter's size, up to stride - 1 less, sometimes something else entirely
        out_hw = tuple(max(1, n * s - int(rng.integers(0, s))) for n, s in zip(in_hw, stride))
    else:
        out_hw = tuple((n - 1) * s + kk + int(rng.integers(0, s)) for n, s, kk in zip(in_hw, stride, k))
    if seed % 7 == 0:
        out_hw = tuple(int(v) + kk for v, kk in zip(rng.integers(1, 12, size=2), k))
    return dict(rng=rng, dtype="int8" if seed % 2 else "float32", in_hw=in_hw, k=k,
                cin=int(rng.integers(1, 5)), cout=int(rng.integers(1, 6)), stride=stride, pad=pad,
                out_hw=out_hw,
                act=("NONE", "RELU", "RELU6", "RELU_N1_TO_1")[seed % 4], bias=seed % 5 != 0,
                in_zp=int(rng.integers(-128, 128)), out_zp=int(rng.integers(-128, 128)),
                out_scale=float(rng.choice([0.01, 0.1, 1.0])))


@pytest.mark.parametrize("seed", range(60))
def test_matches_tflm(seed):
    cfg = _case(seed)
    rng = cfg["rng"]
    g = tc_model(**cfg)
    shape = g.tensors["x"].shape[1:]
    if cfg["dtype"] == "int8":
        x = random_int8(rng, (4, *shape))
    else:
        x = rng.normal(size=(4, *shape)).astype(np.float32)
    out = assert_matches_reference(g, x)[0]
    assert out.shape == (4, *cfg["out_hw"], cfg["cout"])


def test_per_channel_scales_2_to_the_minus_20_and_saturation():
    rng = np.random.default_rng(1)
    g = tc_model(rng, "int8", (3, 3), (3, 3), 4, 21, (2, 2), "SAME", (6, 6),
                 w_scales=2.0 ** -np.arange(20, -1, -1), in_zp=-128, out_zp=127, out_scale=0.05)
    assert_matches_reference(g, random_int8(rng, (6, 3, 3, 4)))


def test_by_hand():
    # one input pixel of value 2 at (0, 1), a 2x2 kernel [[1, 2], [3, 4]], stride 2, VALID: the kernel times 2
    # lands at output rows 0-1, columns 2-3; everything else is the bias 0.5
    shape = Tensor("s", (4,), "int32", data=np.asarray([1, 4, 4, 1], np.int32))
    w = Tensor("w", (1, 2, 2, 1), data=np.asarray([1, 2, 3, 4], np.float32).reshape(1, 2, 2, 1))
    b = Tensor("b", (1,), data=np.asarray([0.5], np.float32))
    g = single_op_model(OP, [shape, w, Tensor("x", (1, 2, 2, 1)), b], Tensor("y", (1,)),
                        {"padding": "VALID", "stride": (2, 2)})
    x = np.zeros((1, 2, 2, 1), np.float32)
    x[0, 0, 1, 0] = 2
    want = np.full((4, 4), 0.5, np.float32)
    want[0:2, 2:4] += [[2, 4], [6, 8]]
    np.testing.assert_array_equal(Interpreter(g).run(x)[0][0, :, :, 0], want)
    # SAME on a 4x4 output with a 2x2 kernel, stride 2: TFLM pads 0 (total (2-1)*2+2-4 = 0), same result
    g.nodes[0].attrs["padding"] = "SAME"
    np.testing.assert_array_equal(Interpreter(g).run(x)[0][0, :, :, 0], want)


def test_mismatched_shapes_are_refused():
    rng = np.random.default_rng(0)
    g = tc_model(rng, "float32", (3, 3), (3, 3), 2, 4, (1, 1), "SAME", (3, 3))
    g.tensors["output_shape"].data = np.asarray([1, 3, 3, 5], np.int32)  # 5 channels, the weights give 4
    with pytest.raises(ModelFormatError, match="do not agree.*Fix: give weights"):
        g.infer_shapes()
    with pytest.raises(ModelFormatError, match="smaller than the 3x3 kernel.*Fix: use SAME"):
        tc_model(rng, "float32", (1, 1), (3, 3), 2, 4, (1, 1), "VALID", (2, 2))


def test_tflite_kernel_plans_reproduce_the_framework_crop():
    """For every (kernel, stride, dilation, lead crop, output size), the planned TFLite kernel and padding
    compute full[lead: lead + out] of the bare scatter (checked on a 1-D scatter of random values)."""
    rng = np.random.default_rng(0)
    for _ in range(300):
        k, s, d = (int(v) for v in rng.integers(1, 5, size=3))
        n = int(rng.integers(1, 6))
        eff = (k - 1) * d + 1
        full_len = (n - 1) * s + eff
        lead = int(rng.integers(0, full_len))
        out = int(rng.integers(1, full_len + 3))
        x, w = rng.normal(size=n), rng.normal(size=k)
        full = np.zeros(full_len + out + 4)
        for i in range(n):
            full[i * s: i * s + eff: d] += x[i] * w
        same = lead > 0 or out < eff
        before, after = tflite_kernel(k, s, d, lead, out, same)
        taps = np.zeros(eff + before + after)
        taps[before: before + eff: d] = w
        # TFLM: output[o] = sum over input i, tap t with i * s + t - P == o
        conv_out = -(-out // s) if same else (out + s - taps.size) // s
        p = max((conv_out - 1) * s + taps.size - out, 0) // 2
        got = np.zeros(out)
        for i in range(n):
            for t in range(taps.size):
                if 0 <= i * s + t - p < out:
                    got[i * s + t - p] += x[i] * taps[t]
        np.testing.assert_allclose(got, full[lead: lead + out], atol=1e-12)


def test_module_doctests():
    import doctest

    from tinyopt.ops import transpose_conv

    assert doctest.testmod(transpose_conv).failed == 0


def test_convert_folds_batchnorm_and_runs_bit_exact_in_tflm():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1),
                              torch.nn.BatchNorm2d(4), torch.nn.ReLU()).eval()
    net[1].running_mean.uniform_(-0.5, 0.5)
    net[1].running_var.uniform_(0.5, 1.5)
    g = assert_torch_matches(net, (3, 5, 4), atol=1e-4)
    assert [n.op for n in fold_batchnorm(g).nodes] == [OP, "RELU"]
    rng = np.random.default_rng(0)
    q = convert_and_match_tflm(g, rng.normal(size=(32, 5, 4, 3)).astype(np.float32),
                               rng.normal(size=(16, 5, 4, 3)).astype(np.float32))
    assert [n.op for n in q.nodes] == [OP]  # BN folded, RELU fused
    assert q.nodes[0].attrs["activation"] == "RELU"


@needs_cc
@pytest.mark.parametrize("seed", [1, 3, 5, 7, 9, 11])
def test_c_kernel_equals_runtime_and_tflm(seed, tmp_path):
    cfg = {**_case(seed), "dtype": "int8"}
    g = tc_model(**cfg)
    assert_c_matches(g, random_int8(cfg["rng"], (16, *g.tensors["x"].shape[1:])), tmp_path)


# -- doors

@pytest.mark.parametrize("kw, shape", [
    (dict(kernel_size=3, stride=2, padding=1, output_padding=1), (3, 4, 5)),
    (dict(kernel_size=4, stride=2, padding=1), (2, 3, 3)),
    (dict(kernel_size=2, stride=2), (2, 4, 3)),
    (dict(kernel_size=(3, 2), stride=(1, 3), padding=(2, 0), dilation=(2, 1)), (2, 5, 4)),
    (dict(kernel_size=5, stride=3, padding=(0, 2), output_padding=(2, 1), bias=False), (1, 3, 4)),
], ids=["k3s2p1op1", "k4s2p1", "k2s2", "dilated", "asym-nobias"])
def test_torch_conv_transpose2d_matches_torch(kw, shape):
    torch.manual_seed(0)
    g = assert_torch_matches(torch.nn.ConvTranspose2d(shape[0], 3, **kw), shape, atol=1e-4)
    assert [n.op for n in g.nodes] == [OP]


def test_torch_conv_transpose1d_and_output_size():
    torch.manual_seed(0)
    up = torch.nn.ConvTranspose1d(3, 2, 3, stride=2, padding=1, output_padding=1)
    assert_torch_matches(up, (3, 7), atol=1e-4)

    class WithSize(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.up = torch.nn.ConvTranspose2d(2, 2, 3, stride=2, padding=1)

        def forward(self, x):
            return self.up(x, output_size=[10, 8])  # output_padding (1, 1) chosen by torch

    assert_torch_matches(WithSize(), (2, 5, 4), atol=1e-4)


def test_grouped_and_depthwise_transposed_convs_are_refused():
    with pytest.raises(UnsupportedOpError, match="depthwise transposed convolution.*Fix: use groups=1"):
        from_torch(torch.nn.ConvTranspose2d(4, 4, 3, groups=4), (4, 5, 5))
    with pytest.raises(UnsupportedOpError, match=r"grouped \(2 groups\)"):
        from_torch(torch.nn.ConvTranspose2d(4, 6, 3, groups=2), (4, 5, 5))


@pytest.mark.parametrize("attrs", [
    dict(strides=[2, 2], pads=[1, 0, 0, 1], output_padding=[1, 0]),
    dict(strides=[2, 1], pads=[0, 1, 2, 0], dilations=[1, 2]),
    dict(strides=[2, 2], output_shape=[9, 7]),
    dict(strides=[2, 3], auto_pad="SAME_UPPER"),
    dict(strides=[2, 2], auto_pad="SAME_LOWER"),
], ids=["pads-op", "dilated", "output_shape", "same_upper", "same_lower"])
def test_onnx_conv_transpose_matches_ort(tmp_path, attrs):
    rng = np.random.default_rng(0)
    w = rng.normal(size=(3, 2, 3, 3)).astype(np.float32)
    b = rng.normal(size=2).astype(np.float32)
    node = helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], kernel_shape=[3, 3], **attrs)
    path = onnx_file(tmp_path, [node], (1, 3, 4, 3), [("w", w), ("b", b)])
    g = assert_onnx_matches_ort(path, rng.normal(size=(2, 3, 4, 3)).astype(np.float32), atol=1e-4)
    assert [n.op for n in g.nodes] == [OP]


def test_onnx_grouped_conv_transpose_is_refused(tmp_path):
    w = np.ones((4, 1, 3, 3), np.float32)
    node = helper.make_node("ConvTranspose", ["x", "w"], ["y"], group=4)
    path = onnx_file(tmp_path, [node], (1, 4, 3, 3), [("w", w)])
    with pytest.raises(UnsupportedOpError, match="depthwise transposed convolution"):
        load_onnx(path)


# -- a small decoder: 1x1 conv, two ConvTranspose2d (BN, ReLU, ReLU6), a conv head; int8 = TFLM, C = TFLM

class Decoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Sequential(torch.nn.Conv2d(4, 8, 1), torch.nn.ReLU())
        self.up1 = torch.nn.Sequential(
            torch.nn.ConvTranspose2d(8, 6, 3, stride=2, padding=1, output_padding=1), torch.nn.BatchNorm2d(6),
            torch.nn.ReLU())
        self.up2 = torch.nn.Sequential(torch.nn.ConvTranspose2d(6, 4, 4, stride=2, padding=1),
                                       torch.nn.ReLU6())
        self.head = torch.nn.Conv2d(4, 1, 3, padding=1)

    def forward(self, x):
        return self.head(self.up2(self.up1(self.stem(x))))


def _decoder_checks(g, x, tmp_path):
    assert [n.op for n in g.nodes].count(OP) == 2
    q = convert_graph(g, to_nhwc(x[:48]))
    xs = quantize_input(q, to_nhwc(x[48:]))
    out = assert_matches_reference(q, xs)[0]
    if shutil.which("cc"):
        np.testing.assert_array_equal(c_outputs(q, xs, tmp_path).reshape(out.shape), out)
    return q, out


def test_decoder_through_torch_and_onnx_int8_equals_tflm_and_c(tmp_path):
    torch.manual_seed(0)
    net = Decoder().eval()
    net.up1[1].running_mean.uniform_(-0.3, 0.3)
    net.up1[1].running_var.uniform_(0.5, 1.5)
    x = torch.rand(64, 4, 4, 3).numpy()
    g = assert_torch_matches(net, (4, 4, 3), atol=1e-5)
    q, out = _decoder_checks(g, x, tmp_path / "torch")
    with torch.no_grad():
        want = net(torch.from_numpy(x[48:])).numpy().transpose(0, 2, 3, 1)
    assert np.abs(dequantize_output(q, out) - want).max() < 0.05 * np.abs(want).max()  # still the network
    gx = assert_onnx_matches_ort(export_onnx(net, (4, 4, 3), tmp_path / "decoder.onnx", opset=13), x[:4])
    _decoder_checks(gx, x, tmp_path / "onnx")


def test_int16_model_is_refused_not_miscomputed():
    """TFLM has a 16x8 kernel; tinyopt's runtime does not, and says so instead of running the float path on
    int16 values."""
    shape = Tensor("s", (4,), "int32", data=np.asarray([1, 4, 4, 2], np.int32))
    w = qtensor("w", (2, 3, 3, 2), [0.01, 0.02], [0, 0], data=np.ones((2, 3, 3, 2), np.int8), axis=0)
    g = single_op_model(OP, [shape, w, qtensor("x", (1, 2, 2, 2), 0.01, 0, dtype="int16")],
                        qtensor("y", (1,), 0.1, 0, dtype="int16"), {"padding": "SAME", "stride": (2, 2)})
    with pytest.raises(UnsupportedOpError, match="int16 transposed convolution.*Fix: convert with int8"):
        Interpreter(g)
