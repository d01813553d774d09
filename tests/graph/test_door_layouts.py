"""The doors' layout bookkeeping on the patterns real sequence and attention networks use (issue #14):
a recurrent state whose batch is its middle axis ([2, batch, H], silero-vad), indexed on axis 0 and
re-stacked; an LSTM as torch.onnx exports it (Transpose -> time-major LSTM -> Squeeze -> Transpose); a
(N, C, L) feature map transposed into a (N, L, C) sequence; attention's qkv stack permuted to
(3, N, heads, T, d) and sliced; ONNX Cast to float and Size. Each small model against ONNX Runtime or
PyTorch, then converted to int8 = TFLM, and its C library = TFLM."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest
import torch
from onnx import TensorProto, helper

from runtime._reference import assert_matches_reference, random_int8, run_tflm
from tinyopt.convert import convert_graph
from tinyopt.export.tflite import graph_to_tflite_bytes
from tinyopt.graph.onnx_import import load_onnx
from tinyopt.graph.torch_import import (
    batched,
    from_graph_shape,
    from_torch,
    graph_axis,
    to_graph_array,
    to_graph_shape,
)
from tinyopt.runtime import Interpreter

pytestmark = pytest.mark.usefixtures("one_torch_thread")
HAVE_CC = shutil.which("cc") is not None


class Vad(torch.nn.Module):
    """silero-vad's shape: samples -> Conv1d -> (N, T, C) -> LSTM from a [2, batch, H] state -> probability
    and the new state stacked back to [2, batch, H]."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv1d(1, 8, 8, stride=4)
        self.lstm = torch.nn.LSTM(8, 16, batch_first=True)
        self.out = torch.nn.Linear(16, 1)

    def forward(self, x, state):
        y = torch.relu(self.conv(x.unsqueeze(1))).transpose(1, 2)
        seq, (h, c) = self.lstm(y, (state[0].unsqueeze(0), state[1].unsqueeze(0)))
        return torch.sigmoid(self.out(seq[:, -1])), torch.cat([h, c], 0)


class Attention(torch.nn.Module):
    """A conv feature map read as a sequence with one self-attention block (PP-OCR rec's SVTR mixer)."""

    def __init__(self, c: int = 8, heads: int = 2):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, c, 3, padding=1)
        self.norm = torch.nn.LayerNorm(c)
        self.qkv = torch.nn.Linear(c, 3 * c)
        self.proj = torch.nn.Linear(c, c)
        self.heads = heads

    def forward(self, x):
        y = self.conv(x)
        b, c, h, w = y.shape
        t = y.flatten(2).transpose(1, 2)  # (N, HW, C) from a channels-first map
        qkv = self.qkv(self.norm(t)).reshape(b, h * w, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        a = (q @ k.transpose(-2, -1) * 0.5).softmax(-1)
        o = (a @ v).transpose(1, 2).reshape(b, h * w, c)
        return t + self.proj(o)


def _export(module, args, path, names):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), args, str(path), dynamo=False, opset_version=13, input_names=names)
    return path


def _ort(path, feeds_rows):
    import onnxruntime as ort

    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rows = [s.run(None, feeds) for feeds in feeds_rows]
    return [np.concatenate([r[k] for r in rows]) for k in range(len(rows[0]))]


def _c_equals_tflm(q, xs, tmp_path):
    """The generated library (host build) on the inputs back to back equals TFLM on every row."""
    from tinyopt.export.c import generate_sources, write_library
    from tinyopt.export.c.board import build_host, run_host

    lib = generate_sources(q)
    write_library(lib.files, tmp_path / "lib")
    packed = np.concatenate([x.reshape(len(x), -1) for x in xs], axis=1)
    got = run_host(build_host(tmp_path / "lib", tmp_path / "exe"), packed, lib.output_bytes)
    want = run_tflm(graph_to_tflite_bytes(q), xs, len(q.outputs))
    np.testing.assert_array_equal(got, np.concatenate([w.reshape(len(w), -1) for w in want], axis=1))


def test_layout_helpers_by_hand():
    """batch@k holds the framework value with its unit axis k moved in front; unbatched adds one."""
    assert batched((2, 1, 128)) == "batch@1" and batched((1, 5)) == "plain" and batched((3, 4)) == "unbatched"
    assert to_graph_shape((2, 1, 128), "batch@1") == (1, 2, 128)
    assert from_graph_shape((1, 2, 128), "batch@1") == (2, 1, 128)
    assert [graph_axis(a, "batch@1", 3) for a in range(3)] == [1, 0, 2]
    assert [graph_axis(a, "unbatched", 2) for a in range(2)] == [1, 2]
    a = np.arange(6).reshape(3, 1, 2)
    np.testing.assert_array_equal(to_graph_array(a, "batch@1"), a.reshape(1, 3, 2))  # the same bytes


def test_recurrent_state_with_its_batch_inside_onnx(tmp_path):
    """ONNX: the state input [2, 1, 16] is one graph row (1, 2, 16); gathered on axis 0, given to the LSTM
    (exported time-major between two Transposes), and the new state concatenated on axis 0 = ONNX Runtime.
    Converted: int8 = TFLM; the C library = TFLM."""
    m = Vad()
    path = _export(m, (torch.zeros(1, 64), torch.zeros(2, 1, 16)), tmp_path / "vad.onnx", ["x", "state"])
    g = load_onnx(path)
    assert [g.tensors[t].shape for t in g.inputs] == [(1, 64), (1, 2, 16)]
    assert [g.tensors[t].shape for t in g.outputs] == [(1, 1), (1, 2, 16)]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 64)).astype(np.float32)
    state = rng.normal(scale=0.5, size=(4, 2, 16)).astype(np.float32)  # each row one [2, 1, 16] state
    want = _ort(path, [{"x": x[r: r + 1], "state": state[r].reshape(2, 1, 16)} for r in range(4)])
    got = Interpreter(g).run([x, state])
    np.testing.assert_allclose(got[0], want[0], atol=1e-5)
    np.testing.assert_allclose(got[1].reshape(4, 2, 16), want[1].reshape(4, 2, 16), atol=1e-5)
    q = convert_graph(g, [rng.normal(size=(32, 64)).astype(np.float32),
                          rng.normal(scale=0.5, size=(32, 2, 16)).astype(np.float32)])
    xs = [random_int8(rng, (5, 64)), random_int8(rng, (5, 2, 16))]
    assert_matches_reference(q, xs)
    if HAVE_CC:
        _c_equals_tflm(q, xs, tmp_path)


def test_lstm_from_a_zero_state_exported_time_major_is_one_fused_layer(tmp_path):
    """nn.LSTM(batch_first=True) exported by torch.onnx: Transpose(perm=[1,0,2]) -> LSTM(layout=0) ->
    Squeeze -> Transpose; the door reads the time-major X of one sequence as the same bytes: one
    UNIDIRECTIONAL_SEQUENCE_LSTM and no TRANSPOSE (the input, read only by that Transpose, stays (N, T, F)),
    = ONNX Runtime; its int8 conversion = TFLM."""
    class Seq(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(6, 10, batch_first=True)

        def forward(self, x):
            return self.lstm(x)[0]

    path = _export(Seq(), (torch.zeros(1, 5, 6),), tmp_path / "seq.onnx", ["x"])
    g = load_onnx(path)
    ops = [n.op for n in g.nodes]
    assert ops.count("UNIDIRECTIONAL_SEQUENCE_LSTM") == 1 and "TRANSPOSE" not in ops
    x = np.random.default_rng(1).normal(size=(3, 5, 6)).astype(np.float32)
    want = _ort(path, [{"x": x[r: r + 1]} for r in range(3)])[0]
    got = Interpreter(g).run(x)[0]
    np.testing.assert_allclose(got.reshape(want.shape), want, atol=1e-5)
    q = convert_graph(g, np.random.default_rng(2).normal(size=(32, *g.tensors[g.inputs[0]].shape[1:]))
                      .astype(np.float32))
    assert_matches_reference(q, random_int8(np.random.default_rng(3), (4, *q.tensors[q.inputs[0]].shape[1:])))


def _attention_input(n: int = 3):
    return np.random.default_rng(4).normal(size=(n, 3, 4, 5)).astype(np.float32)


def test_attention_block_onnx_matches_ort(tmp_path):
    path = _export(Attention(), (torch.zeros(1, 3, 4, 5),), tmp_path / "attn.onnx", ["x"])
    g = load_onnx(path)
    x = _attention_input()
    want = _ort(path, [{"x": x[r: r + 1]} for r in range(3)])[0]
    got = Interpreter(g).run(x.transpose(0, 2, 3, 1))[0]
    np.testing.assert_allclose(got.reshape(want.shape), want, atol=1e-5)
    assert all(g.tensors[t].shape[0] == 1 for t in g.tensors if g.tensors[t].data is None)  # batch first, 1


def test_attention_block_torch_door_int8_and_c(tmp_path):
    """The PyTorch door on the same block = torch; converted: int8 = TFLM; C library = TFLM."""
    m = Attention().eval()
    g = from_torch(m, (3, 4, 5))
    x = _attention_input()
    with torch.no_grad():
        want = m(torch.from_numpy(x)).numpy()
    got = Interpreter(g).run(x.transpose(0, 2, 3, 1))[0]
    np.testing.assert_allclose(got.reshape(want.shape), want, atol=1e-5)
    rng = np.random.default_rng(5)
    q = convert_graph(g, rng.normal(size=(32, 4, 5, 3)).astype(np.float32))
    xs = [random_int8(rng, (4, 4, 5, 3))]
    assert_matches_reference(q, xs)
    if HAVE_CC:
        _c_equals_tflm(q, xs, tmp_path)


def test_onnx_cast_to_float_and_size_fold(tmp_path):
    """Cast of an activation to float is the value itself; Size of an activation folds to a constant (here it
    scales the output: y = x * 12 for a [1, 3, 4] input); a Cast to int64 is refused by name."""
    import onnx

    from tinyopt.errors import UnsupportedOpError

    def save(cast_to):
        nodes = [helper.make_node("Cast", ["x"], ["xf"], to=cast_to), helper.make_node("Size", ["x"], ["n"]),
                 helper.make_node("Cast", ["n"], ["nf"], to=TensorProto.FLOAT),
                 helper.make_node("Mul", ["xf", "nf"], ["y"])]
        if cast_to != TensorProto.FLOAT:
            nodes = nodes[:1]
        graph = helper.make_graph(nodes, "g",
                                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4])],
                                  [helper.make_tensor_value_info("y" if cast_to == TensorProto.FLOAT
                                                                 else "xf",
cast_to, [1, 3, 4])])
        path = tmp_path / f"cast{cast_to}.onnx"
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
        return path

    g = load_onnx(save(TensorProto.FLOAT))
    # (N, C, L) as the graph's (N, L, C)
    x = np.random.default_rng(6).normal(size=(2, 4, 3)).astype(np.float32)
    np.testing.assert_allclose(Interpreter(g).run(x[:, None])[0].reshape(2, -1), (x * 12).reshape(2, -1),
                               rtol=1e-6)
    with pytest.raises(UnsupportedOpError, match="Cast of an activation to element type 7"):
        load_onnx(save(TensorProto.INT64))
