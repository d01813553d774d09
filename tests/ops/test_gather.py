"""GATHER against TFLM: 60 seeded configurations of a data tensor with constant int32 indices (any axis
after the batch, indices of rank 0 to 2, batch_dims) and of a constant table looked up by data indices;
int8 and float32. Converted, through the doors (ONNX Gather, x[:, [i, j]], channel shuffles) and in C."""

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
from runtime._reference import qtensor
from tinyopt.errors import DataError, ModelFormatError, UnsupportedOpError
from tinyopt.export.tflite import single_op_model
from tinyopt.graph.ir import Tensor
from tinyopt.runtime import Interpreter

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _data_case(rng, is_int):
    rank = int(rng.integers(2, 5))
    shape = (1, *(int(d) for d in rng.integers(1, 6, size=rank - 1)))
    axis = int(rng.integers(1, rank))
    idx_shape = tuple(int(d) for d in rng.integers(1, 4, size=int(rng.integers(0, 3))))
    bd = 0
    if rng.random() < 0.25 and axis >= 1:  # one batch dimension: the indices start with the batch too
        bd, idx_shape = 1, (1, *idx_shape)
    idx = rng.integers(0, shape[axis], size=idx_shape)
    g = single_op_model("GATHER", [act("x", shape, is_int), ci("i", idx)], act("y", (1,), is_int),
                        {"axis": axis - rank if rng.random() < 0.3 else axis, "batch_dims": bd})
    x = rows(rng, shape, is_int)
    want = np.stack([np.take(r, idx[0] if bd else idx, axis=axis - 1) for r in x])  # numpy, row by row
    return g, x, want


def _table_case(rng, is_int):
    table_shape = tuple(int(d) for d in rng.integers(2, 7, size=int(rng.integers(1, 3))))
    idx_shape = (1, *(int(d) for d in rng.integers(1, 4, size=int(rng.integers(0, 2)))))
    table = rng.normal(size=table_shape).astype(np.float32)
    t = qtensor("t", table_shape, 0.03, 2,
                data=rng.integers(-128, 128, table_shape).astype(np.int8)) if is_int \
        else Tensor("t", table_shape, data=table)
    g = single_op_model("GATHER", [t, Tensor("i", idx_shape, "int32")], act("y", (1,), is_int, 0.03, 2),
                        {"axis": 0})
    x = rng.integers(0, table_shape[0], size=(4, *idx_shape[1:])).astype(np.int32)
    want = np.stack([np.take(t.data, r[None], axis=0)
                     for r in x]).reshape(4, *idx_shape[1:], *table_shape[1:])
    return g, x, want


@pytest.mark.parametrize("seed", range(60))
def test_matches_tflm(seed):
    rng = np.random.default_rng(seed)
    is_int = seed % 2 == 1
    g, x, want = (_table_case if seed % 4 >= 2 else _data_case)(rng, is_int)
    out = matches_tflm(g, x)[0]
    np.testing.assert_array_equal(out, want.reshape(out.shape))


def test_refusals_name_the_node():
    with pytest.raises(ModelFormatError, match="fall outside axis 1 of size 3") as e:
        Interpreter(single_op_model("GATHER", [Tensor("x", (1, 3)), ci("i", [0, 3])], Tensor("y", (1,)),
                                    {"axis": 1}))
    assert "GATHER" in str(e.value) and "Fix:" in str(e.value)
    with pytest.raises(UnsupportedOpError, match="gather along axis 0"):
        Interpreter(single_op_model("GATHER", [Tensor("x", (1, 3)), ci("i", [0])], Tensor("y", (1,)),
                                    {"axis": 0}))
    g = single_op_model("GATHER",
                        [Tensor("t", (3, 2), data=np.ones((3, 2), np.float32)), Tensor("i", (1, 2), "int32")],
                        Tensor("y", (1,)), {"axis": 0})
    with pytest.raises(DataError, match="outside \\[0, 3\\)"):
        Interpreter(g).run(np.array([[0, 5]], np.int32))


def test_converted_graph_matches_tflm():
    g = single_op_model("GATHER", [Tensor("x", (1, 4, 3, 6)), ci("i", [5, 0, 2, 2, 1])], Tensor("y", (1,)),
                        {"axis": 3})
    q = converted_matches_tflm(g)
    assert q.tensors[q.outputs[0]].quant == q.tensors[q.inputs[0]].quant


def test_constant_table_converts_with_its_own_parameters():
    """An embedding: the table is quantized from its own range and the output takes its parameters (the
    record's quantize, driven directly: convert starts from float inputs, and these indices are int32)."""
    from tinyopt.convert.quantize import Quantizer
    from tinyopt.ops import get

    table = np.linspace(-3, 1, 10, dtype=np.float32).reshape(5, 2)
    g = single_op_model("GATHER", [Tensor("t", (5, 2), data=table), Tensor("i", (1, 3), "int32")],
                        Tensor("y", (1,)), {"axis": 0})
    q = Quantizer(g, {}, {}, "int8")
    q.g.add_tensor(Tensor("i", (1, 3), "int32"))
    q.rename["i"] = "i"
    node = get("GATHER").quantize(q, 0, g.nodes[0])
    t, y = q.g.tensors[node.inputs[0]], q.g.tensors[node.outputs[0]]
    assert t.dtype == "int8" and y.quant == t.quant and node.inputs[1] == "i"
    scale, zp = float(t.quant.scale[0]), int(t.quant.zero_point[0])
    np.testing.assert_allclose((t.data.astype(np.float64) - zp) * scale, table, atol=scale / 2 + 1e-7)
    q.g.inputs, q.g.outputs = ["i"], [node.outputs[0]]
    x = np.array([[4, 0, 2], [1, 1, 3], [0, 0, 0]], np.int32)
    out = matches_tflm(q.g.validate(), x)[0]  # the converted lookup runs in TFLM too
    np.testing.assert_allclose((out.astype(np.float64) - zp) * scale, table[x], atol=scale / 2 + 1e-7)


class Shuffles(torch.nn.Module):
    def __init__(self, library=True):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 12, 1)
        self.shuffle = torch.nn.ChannelShuffle(3)
        self.library = library

    def forward(self, x):
        y = self.conv(x)
        b, c, h, w = y.size()
        y = y.view(b, 4, c // 4, h, w).transpose(1, 2).contiguous().view(b, c, h, w)  # ShuffleNet's
        if self.library:
            y = F.channel_shuffle(self.shuffle(y), 2)
        return y[:, [3, 0, 0, 7]]


def test_channel_shuffles_are_one_gather_each():
    g = torch_matches(Shuffles(), (3, 4, 5))
    assert ops_of(g) == ["CONV_2D", "GATHER", "GATHER", "GATHER", "GATHER"]


def test_onnx_shuffle_and_gather_match(tmp_path):
    g = onnx_matches(export_onnx(Shuffles(library=False), (3, 4, 5), tmp_path / "s.onnx"), (3, 4, 5))
    assert ops_of(g).count("GATHER") == 2


def test_onnx_gather_of_one_index_drops_the_axis(tmp_path):
    class Pick(torch.nn.Module):
        def forward(self, x):
            return x.flatten(2)[:, 1] + x[:, 2, 0]  # (N, H*W) and (N, W) with H = 1

    onnx_matches(export_onnx(Pick(), (3, 1, 4), tmp_path / "p.onnx"), (3, 1, 4), layout="plain")


@pytest.mark.skipif(not HAVE_CC, reason="no host C compiler (cc)")
@pytest.mark.parametrize("seed", [1, 3, 5, 9])
def test_c_library_equals_runtime(seed, tmp_path):
    g, _, _ = _data_case(np.random.default_rng(seed), True)
    c_equals_runtime(g, tmp_path)


def test_gathers_on_axis_0_and_on_the_length_of_ncl_tensors(tmp_path):
    """silero-vad's patterns: a [1] index on axis 2 of an (N, C, L) map (the last frame), and an integer on
    axis 0 of a batch-one value (x[0]: the batch goes, the value's leading axis becomes C); ONNX = ONNX
    Runtime, the PyTorch door = torch."""
    class Frames(torch.nn.Module):
        def forward(self, x):
            last = x[:, :, [4]]  # (N, C, 1): the last of 5 frames
            return last.squeeze(2) * 2 + x[0].sum(1)  # (N, C) + (C,): row 0's own C values

    g = onnx_matches(export_onnx(Frames(), (3, 5), tmp_path / "f.onnx"), (3, 5), n=1, layout="plain")
    # the last frame straight from the NHWC tensor (x[0] needs the C, L order)
    assert ops_of(g)[0] == "GATHER"
    torch_matches(Frames(), (3, 5), n=1, layout="plain")
