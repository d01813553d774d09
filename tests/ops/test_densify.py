"""Sparse and float16 weights: read, folded into plain constants, counted at the bytes the file stores,
and computing what LiteRT computes on the same file."""

from __future__ import annotations

import flatbuffers
import numpy as np

from tinyopt.analysis.cost import layer_costs
from tinyopt.export.tflite import graph_to_tflite_bytes, single_op_model
from tinyopt.graph.ir import Graph, Node, Tensor
from tinyopt.graph.tflite_import import tflite_bytes_to_graph
from tinyopt.runtime import Interpreter


def _litert(model: bytes, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter as LiteRT

    it = LiteRT(model_content=model)
    it.allocate_tensors()
    outs = []
    for row in x:
        it.set_tensor(it.get_input_details()[0]["index"], row[None])
        it.invoke()
        outs.append(it.get_tensor(it.get_output_details()[0]["index"]))
    return np.concatenate(outs)


def test_float16_weights_fold_and_count_at_two_bytes():
    rng = np.random.default_rng(0)
    w16 = rng.normal(size=(5, 8)).astype(np.float16)
    g = Graph("fp16", source="<fp16>")
    g.add_tensor(Tensor("x", (1, 8)))
    g.add_tensor(Tensor("w16", w16.shape, "float16", data=w16))
    g.add_tensor(Tensor("w", w16.shape))
    g.add_tensor(Tensor("b", (5,), data=rng.normal(size=5).astype(np.float32)))
    g.add_tensor(Tensor("y", (1, 5)))
    g.add_node(Node("w", "DEQUANTIZE", ["w16"], ["w"]))
    g.add_node(Node("y", "FULLY_CONNECTED", ["x", "w", "b"], ["y"], {"activation": "NONE"}))
    g.inputs, g.outputs = ["x"], ["y"]
    data = graph_to_tflite_bytes(g)
    folded = tflite_bytes_to_graph(data)
    assert [n.op for n in folded.nodes] == ["FULLY_CONNECTED"]
    w = folded.tensors[folded.nodes[0].inputs[1]]
    assert w.dtype == "float32" and w.nbytes == 5 * 8 * 2  # stored as float16: 2 bytes each, counted once
    row = layer_costs(folded)[0]
    assert row.params == 5 * 8 + 5 and row.param_bytes == 5 * 8 * 2 + 5 * 4
    x = rng.normal(size=(6, 8)).astype(np.float32)
    np.testing.assert_allclose(Interpreter(folded).run(x)[0], _litert(data, x), rtol=1e-5, atol=1e-5)


def _sparse_fc_model(dense: np.ndarray, bias: np.ndarray) -> bytes:
    """A FULLY_CONNECTED whose weight is stored sparse (row dense, column CSR) behind a DENSIFY, as the
    TFLite converter writes pruned models: built field by field from the schema's slot numbers."""
    rows, cols = dense.shape
    segs = [0]
    idx: list[int] = []
    vals: list[float] = []
    for r in range(rows):
        for c in range(cols):
            if dense[r, c] != 0:
                idx.append(c)
                vals.append(float(dense[r, c]))
        segs.append(len(idx))
    b = flatbuffers.Builder(4096)
    b.ForceDefaults(True)

    def table(fields):
        b.StartObject(max(f[0] for f in fields) + 1 if fields else 0)
        for slot, kind, value in fields:
            if kind == "off":
                b.PrependUOffsetTRelativeSlot(slot, value, 0)
            else:
                getattr(b, f"Prepend{kind}Slot")(slot, value, 0)
        return b.EndObject()

    def vec(values, dtype):
        return b.CreateNumpyVector(np.asarray(values, dtype=dtype))

    def tables(offsets):
        b.StartVector(4, len(offsets), 4)
        for o in reversed(offsets):
            b.PrependUOffsetTRelative(o)
        return b.EndVector()

    bufs = [table([]), table([(0, "off", vec(np.asarray(vals, np.float32).view(np.uint8), np.uint8))]),
            table([(0, "off", vec(bias.view(np.uint8), np.uint8))])]
    dim0 = table([(0, "Int8", 0), (1, "Int32", rows)])
    seg_v = table([(0, "off", vec(segs, np.int32))])
    idx_v = table([(0, "off", vec(idx, np.int32))])
    dim1 = table([(0, "Int8", 1), (1, "Int32", cols), (2, "Uint8", 1), (3, "off", seg_v), (4, "Uint8", 1),
                  (5, "off", idx_v)])
    sparsity = table([(0, "off", vec([0, 1], np.int32)), (2, "off", tables([dim0, dim1]))])

    def tensor(name, shape, buffer, sparse=0):
        fields = [(0, "off", vec(shape, np.int32)), (1, "Int8", 0), (2, "Uint32", buffer),
                  (3, "off", b.CreateString(name))]
        return table(fields + ([(6, "off", sparse)] if sparse else []))

    ts = [tensor("x", [1, cols], 0), tensor("w_sparse", [rows, cols], 1, sparsity),
          tensor("w", [rows, cols], 0), tensor("b", [rows], 2), tensor("y", [1, rows], 0)]
    op_densify = table([(0, "Uint32", 0), (1, "off", vec([1], np.int32)), (2, "off", vec([2], np.int32))])
    op_fc = table([(0, "Uint32", 1), (1, "off", vec([0, 2, 3], np.int32)), (2, "off", vec([4], np.int32))])
    sg = table([(0, "off", tables(ts)), (1, "off", vec([0], np.int32)), (2, "off", vec([4], np.int32)),
                (3, "off", tables([op_densify, op_fc]))])
    codes = [table([(0, "Int8", 124), (2, "Int32", 1), (3, "Int32", 124)]),
             table([(0, "Int8", 9), (2, "Int32", 1), (3, "Int32", 9)])]
    model = table([(0, "Uint32", 3), (1, "off", tables(codes)), (2, "off", tables([sg])),
                   (4, "off", tables(bufs))])
    b.Finish(model, file_identifier=b"TFL3")
    return bytes(b.Output())


def test_sparse_weights_densify_fold_equal_litert():
    rng = np.random.default_rng(1)
    dense = rng.normal(size=(6, 10)).astype(np.float32) * (rng.random((6, 10)) < 0.3)
    bias = rng.normal(size=6).astype(np.float32)
    data = _sparse_fc_model(dense, bias)
    g = tflite_bytes_to_graph(data)
    assert [n.op for n in g.nodes] == ["FULLY_CONNECTED"]
    w = g.tensors[g.nodes[0].inputs[1]]
    np.testing.assert_array_equal(w.data, dense)
    nnz = int((dense != 0).sum())
    assert w.nbytes == nnz * 4 + 4 * (6 + 1) + 4 * nnz  # values, segments, indices as stored
    x = rng.normal(size=(5, 10)).astype(np.float32)
    np.testing.assert_allclose(Interpreter(g).run(x)[0], _litert(data, x), rtol=1e-5, atol=1e-5)
    # and the dense twin of the same weights computes the same
    fc = single_op_model("FULLY_CONNECTED", [Tensor("x", (1, 10)), Tensor("w", (6, 10), data=dense),
                                             Tensor("b", (6,), data=bias)], Tensor("y", (1, 6)))
    np.testing.assert_allclose(Interpreter(fc).run(x)[0], Interpreter(g).run(x)[0], rtol=1e-6)
