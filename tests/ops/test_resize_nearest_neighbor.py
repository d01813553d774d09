"""RESIZE_NEAREST_NEIGHBOR against TFLM (60 seeded shapes and flag pairs, float32 / int8 / int16), by hand,
through convert, as a C kernel, and through the ONNX (Resize, Upsample) and PyTorch (nn.Upsample,
F.interpolate) doors against ONNX Runtime and PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from onnx import helper

from ops._spatial import (
    assert_c_matches,
    assert_onnx_matches_ort,
    assert_torch_matches,
    convert_and_match_tflm,
    needs_cc,
    onnx_file,
)
from runtime._reference import assert_matches_reference, qtensor, random_int8
from tinyopt.errors import ModelFormatError, UnsupportedOpError
from tinyopt.export.tflite import single_op_model
from tinyopt.graph.ir import Tensor
from tinyopt.graph.onnx_import import load_onnx
from tinyopt.graph.torch_import import from_torch
from tinyopt.runtime import Interpreter

pytestmark = pytest.mark.usefixtures("one_torch_thread")
OP = "RESIZE_NEAREST_NEIGHBOR"


def size(h, w):
    return Tensor("size", (2,), "int32", data=np.asarray([h, w], np.int32))


def model(x, out_hw, flags=(False, False), y=None):
    y = y if y is not None else Tensor("y", (1,), x.dtype, quant=x.quant)
    attrs = {"align_corners": flags[0], "half_pixel_centers": flags[1]}
    return single_op_model(OP, [x, size(*out_hw)], y, attrs)


def _case(seed: int):
    rng = np.random.default_rng(seed)
    in_hw = tuple(int(v) for v in rng.integers(1, 9, size=2))
    out_hw = tuple(int(v) for v in rng.integers(1, 15, size=2))
    ch = int(rng.integers(1, 5))
    flags = [(False, False), (False, True), (True, False), (True, True)][seed % 4]
    return rng, in_hw, out_hw, ch, flags


@pytest.mark.parametrize("seed", range(60))
def test_matches_tflm(seed):
    rng, in_hw, out_hw, ch, flags = _case(seed)
    dtype = ("float32", "int8", "int16")[seed % 3]
    shape = (1, *in_hw, ch)
    if dtype == "float32":
        x, inputs = Tensor("x", shape), rng.normal(size=(4, *shape[1:])).astype(np.float32)
    elif dtype == "int8":
        x, inputs = qtensor("x", shape, 0.03, int(rng.integers(-128, 128))), random_int8(rng, (4, *shape[1:]))
    else:
        x = qtensor("x", shape, 0.001, 0, dtype="int16")
        inputs = rng.integers(-32768, 32768, size=(4, *shape[1:])).astype(np.int16)
    g = model(x, out_hw, flags)
    assert g.tensors["y"].shape == (1, *out_hw, ch)
    out = assert_matches_reference(g, inputs)[0]
    assert set(np.unique(out)) <= set(np.unique(inputs))  # a resize copies, it never makes new values


def test_by_hand():
    x = np.arange(1, 7, dtype=np.float32).reshape(1, 2, 3, 1)  # [[1 2 3] [4 5 6]]
    g = model(Tensor("x", (1, 2, 3, 1)), (4, 5))
    # asymmetric, floor: row y reads floor(y * 2/4) = 0 0 1 1; column x reads floor(x * 3/5) = 0 0 1 1 2
    want = x[:, [0, 0, 1, 1]][:, :, [0, 0, 1, 1, 2]]
    np.testing.assert_array_equal(Interpreter(g).run(x)[0], want)
    # align_corners: round(x * 2/4) = 0 0.5->1 1 1.5->2 2 (halves away from zero, TfLiteRound)
    g = model(Tensor("x", (1, 2, 3, 1)), (2, 5), (True, False))
    np.testing.assert_array_equal(Interpreter(g).run(x)[0][0, 0, :, 0], [1, 2, 2, 3, 3])


def test_int8_output_with_other_parameters_is_refused():
    x = qtensor("x", (1, 2, 2, 1), 0.1, 0)
    g = model(x, (4, 4), y=qtensor("y", (1,), 0.2, 0))
    with pytest.raises(ModelFormatError, match="quantization differ.*Fix: give the output the input's scale"):
        Interpreter(g)


def test_size_must_be_two_positive_values():
    with pytest.raises(ModelFormatError, match="size .* not positive"):
        model(Tensor("x", (1, 2, 2, 1)), (0, 4))


def test_convert_runs_bit_exact_in_tflm():
    rng = np.random.default_rng(0)
    g = model(Tensor("x", (1, 5, 4, 3)), (9, 12), (False, True))
    calib = rng.normal(size=(32, 5, 4, 3)).astype(np.float32)
    q = convert_and_match_tflm(g, calib, rng.normal(size=(16, 5, 4, 3)).astype(np.float32))
    node = q.nodes[0]
    assert node.op == OP and q.tensors[node.inputs[0]].quant.scale == q.tensors[node.outputs[0]].quant.scale


@needs_cc
@pytest.mark.parametrize("flags", [(False, False), (False, True), (True, False), (True, True)])
def test_c_kernel_equals_runtime_and_tflm(flags, tmp_path):
    rng = np.random.default_rng(3)
    g = model(qtensor("x", (1, 5, 7, 3), 0.05, -4), (11, 4), flags)
    assert_c_matches(g, random_int8(rng, (20, 5, 7, 3)), tmp_path)


# -- PyTorch door

class Interp(torch.nn.Module):
    def __init__(self, **kw):
        super().__init__()
        self.kw = kw

    def forward(self, x):
        return torch.nn.functional.interpolate(x + 1, **self.kw)


@pytest.mark.parametrize("module, shape", [
    (torch.nn.Upsample(scale_factor=2, mode="nearest"), (3, 4, 5)),
    (torch.nn.UpsamplingNearest2d(size=(7, 9)), (2, 3, 4)),
    (Interp(size=(8, 3), mode="nearest"), (2, 5, 6)),
    (Interp(scale_factor=0.5, mode="nearest"), (2, 8, 6)),
    (Interp(scale_factor=3, mode="nearest-exact"), (2, 3, 4)),
    (Interp(size=(5,), mode="nearest"), (3, 7)),
], ids=["Upsample-x2", "UpsamplingNearest2d", "size", "down-half", "nearest-exact-x3", "1d"])
def test_torch_door_matches_torch(module, shape):
    g = assert_torch_matches(module, shape)
    assert OP in [n.op for n in g.nodes]


def test_torch_scale_factor_that_torch_does_not_apply_exactly_is_refused():
    # 5 rows x 1.3 = 6 rows; torch reads row floor(y / 1.3) (output row 5: 3), TFLite floor(y * 5/6) (4)
    with pytest.raises(UnsupportedOpError, match="no TFLite equivalent.*Fix: use mode='nearest' or"):
        from_torch(Interp(scale_factor=1.3, mode="nearest"), (1, 5, 5))


def test_torch_bicubic_is_refused():
    with pytest.raises(UnsupportedOpError, match="no TFLite equivalent"):
        from_torch(Interp(scale_factor=2, mode="bicubic"), (1, 4, 4))


# -- ONNX door

def resize_node(coord, nearest_mode="round_prefer_floor", sizes=False, mode="nearest"):
    ins = ["x", "", "", "sizes"] if sizes else ["x", "", "scales"]
    return helper.make_node("Resize", ins, ["y"], mode=mode, coordinate_transformation_mode=coord,
                            nearest_mode=nearest_mode)


@pytest.mark.parametrize("coord, nearest_mode, scales", [
    ("asymmetric", "floor", (2.0, 3.0)),
    ("asymmetric", "round_prefer_floor", (2.0, 2.0)),
    ("half_pixel", "round_prefer_ceil", (3.0, 0.5)),
    ("half_pixel", "round_prefer_floor", (2.0, 2.0)),
    ("pytorch_half_pixel", "round_prefer_ceil", (2.0, 1.0)),
    ("tf_half_pixel_for_nn", "floor", (1.5, 2.0)),
    ("align_corners", "round_prefer_ceil", (2.0, 1.5)),
])
def test_onnx_resize_matches_ort(tmp_path, coord, nearest_mode, scales):
    x = np.random.default_rng(0).normal(size=(2, 3, 4, 6)).astype(np.float32)
    inits = [("scales", np.asarray([1, 1, *scales], np.float32))]
    path = onnx_file(tmp_path, [resize_node(coord, nearest_mode)], (1, 3, 4, 6), inits)
    g = assert_onnx_matches_ort(path, x)
    assert [n.op for n in g.nodes] == [OP]


def test_onnx_resize_with_sizes_opset10_and_upsample(tmp_path):
    x = np.random.default_rng(1).normal(size=(2, 2, 3, 5)).astype(np.float32)
    path = onnx_file(tmp_path, [resize_node("asymmetric", "floor", sizes=True)], (1, 2, 3, 5),
                     [("sizes", np.asarray([1, 2, 6, 10], np.int64))])
    assert_onnx_matches_ort(path, x)
    scales = [("scales", np.asarray([1, 1, 2, 3], np.float32))]
    for op, opset in (("Upsample", 9), ("Resize", 10)):  # before opset 11: asymmetric, no attribute says so
        node = helper.make_node(op, ["x", "scales"], ["y"], mode="nearest")
        path = onnx_file(tmp_path, [node], (1, 2, 3, 5), scales, opset=opset, name=f"{op}.onnx")
        assert_onnx_matches_ort(path, x)


def test_onnx_resize_without_tflite_equivalent_is_refused(tmp_path):
    # asymmetric with halves rounded up reads row ceil(y / 2) at odd y: none of TFLite's tables does that
    path = onnx_file(tmp_path, [resize_node("asymmetric", "round_prefer_ceil")], (1, 1, 4, 4),
                     [("scales", np.asarray([1, 1, 2, 2], np.float32))])
    with pytest.raises(UnsupportedOpError, match="no TFLite equivalent.*Fix: export with 'asymmetric'"):
        load_onnx(path)
    path = onnx_file(tmp_path, [resize_node("asymmetric", "floor")], (1, 2, 4, 4),
                     [("scales", np.asarray([1, 2, 2, 2], np.float32))], name="c.onnx")
    with pytest.raises(UnsupportedOpError, match="batch or channel axis"):
        load_onnx(path)
