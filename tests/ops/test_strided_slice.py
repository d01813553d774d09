"""STRIDED_SLICE against TFLM (60 seeded shapes, begin/end/strides with negative values, begin/end/shrink
masks; int8 and float32), converted, through the doors (x[...], ONNX Slice with steps) and in C."""

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
from tinyopt.errors import ModelFormatError, UnsupportedOpError
from tinyopt.export.tflite import single_op_model
from tinyopt.graph.ir import Tensor
from tinyopt.runtime import Interpreter

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _config(seed: int):
    """A rank-2..4 slice whose output is not empty (axis 0, the batch, is kept whole)."""
    rng = np.random.default_rng(seed)
    rank = int(rng.integers(2, 5))
    shape = (1, *(int(d) for d in rng.integers(1, 7, size=rank - 1)))
    while True:
        begin, end, strides = [0], [1], [1]
        bmask = emask = shrink = 0
        for k, d in enumerate(shape[1:], 1):
            st = int(rng.choice([1, 1, 2, 3, -1, -2]))
            begin.append(int(rng.integers(-d - 2, d + 2)))
            end.append(int(rng.integers(-d - 2, d + 2)))
            strides.append(st)
            bmask |= int(rng.random() < 0.25) << k
            emask |= int(rng.random() < 0.25) << k
            if rng.random() < 0.15:
                shrink |= 1 << k
                begin[-1], strides[-1] = int(rng.integers(-d, d)), 1
        attrs = {"begin_mask": bmask, "end_mask": emask, "shrink_axis_mask": shrink}
        g = _graph(shape, begin, end, strides, attrs, seed % 2 == 1)
        if g is not None:
            return rng, shape, g


def _graph(shape, begin, end, strides, attrs, is_int):
    try:
        return single_op_model("STRIDED_SLICE", [act("x", shape, is_int), ci("b", begin), ci("e", end),
                                                  ci("s", strides)], act("y", (1,), is_int), attrs)
    except ModelFormatError:  # an empty axis: draw again
        return None


@pytest.mark.parametrize("seed", range(60))
def test_matches_tflm(seed):
    rng, shape, g = _config(seed)
    x = rows(rng, shape, seed % 2 == 1)
    out = matches_tflm(g, x)[0]
    # independently: numpy's basic slicing of each row with the same starts/stops, then the shrunk axes
    p = Interpreter(g).params[0]
    sl = tuple(slice(a, None if b < 0 else b, s) for a, b, s in zip(p.starts, p.stops, p.strides))
    want = np.stack([r[None][sl] for r in x]).reshape(out.shape)
    np.testing.assert_array_equal(out, want)


def test_masks_by_hand():
    """x[0:1, ::-2, 1] of a (1, 5, 3) tensor: rows 4, 2, 0 of column 1."""
    x = np.arange(15, dtype=np.float32).reshape(1, 5, 3)
    g = single_op_model("STRIDED_SLICE", [Tensor("x", (1, 5, 3)), ci("b", [0, 0, 1]), ci("e", [1, 0, 0]),
                                          ci("s", [1, -2, 1])], Tensor("y", (1,)),
                        {"begin_mask": 2, "end_mask": 2, "shrink_axis_mask": 4})
    assert g.tensors["y"].shape == (1, 3)
    assert matches_tflm(g, x)[0].tolist() == [[13.0, 7.0, 1.0]]


def _plain(shape, attrs):
    r = len(shape)
    return single_op_model("STRIDED_SLICE", [Tensor("x", shape), ci("b", [0] * r), ci("e", list(shape)),
                                             ci("s", [1] * r)], Tensor("y", (1,)), attrs)


@pytest.mark.parametrize("mask", ["ellipsis_mask", "new_axis_mask", "offset"])
def test_masks_tflm_ignores_are_refused(mask):
    with pytest.raises(ModelFormatError, match=mask) as e:
        _plain((1, 4, 4), {mask: 2 if mask != "offset" else True})
    assert "STRIDED_SLICE" in str(e.value) and "Fix:" in str(e.value)


@pytest.mark.parametrize("shape,attrs,match", [
    ((1, 2, 2, 2, 2), {}, "rank-5 strided slice"),
    ((1, 4, 4), {"shrink_axis_mask": 1}, "leading dimension 4, not batch 1"),
])
def test_what_tflm_cannot_run_is_refused(shape, attrs, match):
    with pytest.raises(UnsupportedOpError, match=match) as e:
        Interpreter(_plain(shape, attrs))
    assert "Fix:" in str(e.value)


def test_converted_graph_matches_tflm():
    g = single_op_model("STRIDED_SLICE",
                        [Tensor("x", (1, 6, 5, 4)), ci("b", [0, 1, 4, 0]), ci("e", [1, 6, 0, 4]),
                         ci("s", [1, 2, -2, 1])], Tensor("y", (1,)))
    q = converted_matches_tflm(g)
    y, x = q.tensors[q.outputs[0]], q.tensors[q.inputs[0]]
    assert y.quant == x.quant  # bytes move: the output shares the input's parameters


class Slicer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 6, 3, padding=1)

    def forward(self, x):
        x = self.conv(x)
        a = x[:, 1:5, ::2, 1:]           # channels and rows with a step
        b = x[:, -2:, 1::3, :-1][:, :, :a.shape[2]]
        return torch.cat([a[:, :, :b.shape[2], :b.shape[3]], b], 1)


def test_torch_getitem_and_onnx_slice_match(tmp_path):
    m = Slicer()
    g = torch_matches(m, (3, 7, 6))
    assert "STRIDED_SLICE" in ops_of(g)
    h = onnx_matches(export_onnx(m, (3, 7, 6), tmp_path / "s.onnx"), (3, 7, 6))
    assert "STRIDED_SLICE" in ops_of(h)


def test_integer_index_drops_the_axis():
    class Row(torch.nn.Module):
        def forward(self, x):
            return x[:, :, 1] + x[:, :, -1]  # (N, C, W): STRIDED_SLICE of one row, then a reshape

    torch_matches(Row(), (3, 4, 5))


@pytest.mark.skipif(not HAVE_CC, reason="no host C compiler (cc)")
@pytest.mark.parametrize("seed", [1, 3, 5, 7, 11])
def test_c_library_equals_runtime(seed, tmp_path):
    _, _, g = _config(seed)  # odd seeds are int8
    c_equals_runtime(g, tmp_path)


@pytest.mark.parametrize("starts,ends,axes,steps,out", [
    ([-1], [-(2**63)], [1], [-1], [1, 3, 5, 6]),              # reversed channels, to "before the start"
    ([4, 0], [0, 2**63 - 1], [2, 3], [-2, 3], [1, 3, 2, 2]),   # rows backwards by two, columns by three
    ([1], [-1], [-1], [1], [1, 3, 5, 4]),                      # a negative axis and end
])
def test_onnx_slice_with_any_steps_matches_onnxruntime(starts, ends, axes, steps, out, tmp_path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits = [numpy_helper.from_array(np.asarray(v, np.int64), k) for k, v in
             (("starts", starts), ("ends", ends), ("axes", axes), ("steps", steps))]
    node = helper.make_node("Slice", ["x", "starts", "ends", "axes", "steps"], ["y"])
    x_info = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 5, 6])
    y_info = helper.make_tensor_value_info("y", TensorProto.FLOAT, out)
    graph = helper.make_graph([node], "slice", [x_info], [y_info], inits)
    path = tmp_path / "s.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    onnx_matches(path, (3, 5, 6))
