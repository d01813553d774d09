"""BATCH_MATMUL: ``lhs @ rhs`` over the last two axes, the leading (batch) axes broadcast (ranks 2 to 5);
``adj_x`` / ``adj_y`` transpose the last two axes of an operand first.

int8 as TFLM's ``BatchMatMul`` (its int8 path reuses FullyConnected's parameters): acc = Σ (lhs - lhs_zp)
(rhs - rhs_zp), one per-tensor multiplier from the double product of the two input scales divided by the
output scale (``GetQuantizedConvolutionMultipler``; a float32 product moves the multiplier a few units,
which flips a rounding tie now and then), no fused activation. Both operands may be activations
(attention: q @ kᵀ); a constant operand is quantized per tensor like an activation (its own range).

The runtime's arrays carry the batch of rows in front: an activation of graph shape (1, ...) arrives as
(N, ...), a constant with its own shape. Each operand is put back to (N or 1, *graph shape) before the
product, so a rank-2 activation stays one matrix per row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyopt.ops import _common as c
from tinyopt.ops._record import CKernel, Op, OpData, Options, QuantRule, register, scalar
from tinyopt.runtime.fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier

MAX_RANK = 5


@dataclass(kw_only=True)
class BatchMatMulData(OpData):
    adj_x: bool
    adj_y: bool
    lhs_shape: tuple          # graph shapes, extended to the output's rank
    rhs_shape: tuple
    out_shape: tuple
    lhs_constant: bool
    rhs_constant: bool
    lhs_zero_point: int = 0
    rhs_zero_point: int = 0
    output_zero_point: int = 0
    output_multiplier: int = 0
    output_shift: int = 0


def _shapes(graph, node, fail):
    lhs, rhs = graph.tensors[node.inputs[0]], graph.tensors[node.inputs[1]]
    for t in (lhs, rhs):
        if not 2 <= len(t.shape) <= MAX_RANK:
            fail(f"operand '{t.name}' has rank {len(t.shape)}", f"give operands of rank 2 to {MAX_RANK}")
    rank = max(len(lhs.shape), len(rhs.shape))
    a = (1,) * (rank - len(lhs.shape)) + tuple(lhs.shape)
    b = (1,) * (rank - len(rhs.shape)) + tuple(rhs.shape)
    if node.attrs.get("adj_x"):
        a = (*a[:-2], a[-1], a[-2])
    if node.attrs.get("adj_y"):
        b = (*b[:-2], b[-1], b[-2])
    if a[-1] != b[-2]:
        flags = f"adj_x={bool(node.attrs.get('adj_x'))}, adj_y={bool(node.attrs.get('adj_y'))}"
        fail(f"inner dimensions differ: {list(lhs.shape)} @ {list(rhs.shape)} ({flags})",
             "give lhs [..., M, K] and rhs [..., K, N]")
    batch = []
    for da, db in zip(a[:-2], b[:-2]):
        if da != db and 1 not in (da, db):
            fail(f"batch dimensions {list(a[:-2])} and {list(b[:-2])} do not broadcast",
                 "give equal batch dimensions or 1")
        batch.append(max(da, db))
    return a, b, (*batch, a[-2], b[-1])


@register
class BatchMatMul(Op):
    name = "BATCH_MATMUL"
    builtin = 126
    options = Options(101, (scalar("adj_x", 0, "bool", False), scalar("adj_y", 1, "bool", False)))
    arity = (2, 2)
    data_inputs = None
    int8_version = 2
    quant = QuantRule(constants="range")
    latency_class = "fc"  # every operand value is read once per product row, as in a dense layer
    c = CKernel("batch_matmul", "batch_matmul_params")
    torch_functions = ("matmul", "bmm")

    def shape(self, graph, node, fail):
        return _shapes(graph, node, fail)[2]

    def macs(self, graph, node):
        lhs = graph.tensors[node.inputs[0]]
        depth = lhs.shape[-2] if node.attrs.get("adj_x") else lhs.shape[-1]
        return graph.tensors[node.outputs[0]].size * depth

    def mac_formula(self, graph, node):
        out = graph.tensors[node.outputs[0]]
        macs = self.macs(graph, node)
        return f"{c.n(out.size)} outputs × {c.n(macs // max(out.size, 1))} = {c.n(macs)}"

    def prepare(self, graph, node, is_int):
        def fail(msg, fix):
            c.fail(graph, node, msg, fix)

        _, _, out = _shapes(graph, node, fail)
        lhs, rhs = graph.tensors[node.inputs[0]], graph.tensors[node.inputs[1]]
        if "int16" in (lhs.dtype, rhs.dtype):
            c.unsupported(graph, node, "an int16 (16x8) batch matmul: tinyopt's runtime has the int8 kernel",
                          "convert with int8 activations")
        rank = len(out)
        p = dict(adj_x=bool(node.attrs.get("adj_x")), adj_y=bool(node.attrs.get("adj_y")),
                 lhs_shape=(1,) * (rank - len(lhs.shape)) + tuple(lhs.shape),
                 rhs_shape=(1,) * (rank - len(rhs.shape)) + tuple(rhs.shape), out_shape=out,
                 lhs_constant=lhs.constant, rhs_constant=rhs.constant)
        if not is_int:
            return BatchMatMulData(dtype="float32", **p)
        if lhs.dtype != rhs.dtype:
            c.unsupported(graph, node, f"a {lhs.dtype} @ {rhs.dtype} product (TFLM needs one type)",
                          "quantize both operands to int8")
        ls, lz = c.scalar_qparams(graph, node, node.inputs[0])
        rs, rz = c.scalar_qparams(graph, node, node.inputs[1])
        os_, oz = c.scalar_qparams(graph, node, node.outputs[0])
        mult, shift = quantize_multiplier(float(ls) * float(rs) / float(os_))
        return BatchMatMulData(dtype=lhs.dtype, **p, lhs_zero_point=lz, rhs_zero_point=rz,
                               output_zero_point=oz, output_multiplier=mult, output_shift=shift)

    def eval(self, p: BatchMatMulData, inputs):
        lhs, rhs = inputs
        n = (rhs if p.lhs_constant else lhs).shape[0]
        a = np.asarray(lhs).reshape(1 if p.lhs_constant else n, *p.lhs_shape)
        b = np.asarray(rhs).reshape(1 if p.rhs_constant else n, *p.rhs_shape)
        if p.adj_x:
            a = np.swapaxes(a, -1, -2)
        if p.adj_y:
            b = np.swapaxes(b, -1, -2)
        if p.dtype == "float32":
            y = np.matmul(a.astype(np.float32), b.astype(np.float32))
        else:  # exact: |values| <= 255, float64 sums far below 2^53
            acc = np.matmul(a.astype(np.float64) - p.lhs_zero_point, b.astype(np.float64) - p.rhs_zero_point)
            y = multiply_by_quantized_multiplier(acc.astype(np.int64), p.output_multiplier, p.output_shift)
            y = np.clip(y + p.output_zero_point, -128, 127).astype(np.int8)
        return np.ascontiguousarray(y).reshape(n, *p.out_shape[1:])  # an operand is per row: y has n rows

    def pack_c(self, graph, index, node):
        from tinyopt.export.c import params as cp

        lhs, rhs = graph.tensors[node.inputs[0]], graph.tensors[node.inputs[1]]
        y = graph.tensors[node.outputs[0]]
        cp.check_int8(graph, index, node, [lhs, rhs, y])
        q = self.prepare(graph, node, True)
        rank = len(q.out_shape)
        lb, rb = (1,) * (5 - rank) + q.lhs_shape, (1,) * (5 - rank) + q.rhs_shape
        ob = (1,) * (5 - rank) + q.out_shape
        ints = dict(lhs_b0=lb[0], lhs_b1=lb[1], lhs_b2=lb[2], rhs_b0=rb[0], rhs_b1=rb[1], rhs_b2=rb[2],
                    out_b0=ob[0], out_b1=ob[1], out_b2=ob[2], rows=ob[3], cols=ob[4],
                    depth=(lb[3] if q.adj_x else lb[4]), adj_x=int(q.adj_x), adj_y=int(q.adj_y),
                    lhs_offset=-q.lhs_zero_point, rhs_offset=-q.rhs_zero_point,
                    output_offset=q.output_zero_point, output_multiplier=q.output_multiplier,
                    output_shift=q.output_shift)
        arrays = {}
        for key, t in (("lhs_data", lhs), ("rhs_data", rhs)):
            if t.data is not None:
                arrays[key] = ("int8_t", np.asarray(t.data, np.int8))
        return cp.OpParams("batch_matmul", ints, arrays, signature="lists", optional=("lhs_data", "rhs_data"))

    # -- doors: ONNX MatMul of two activations comes through FULLY_CONNECTED's MatMul (see fully_connected)
    def from_torch_function(self, cv, n, key, name, out_shape):
        arg = cv.arg(n)
        lhs, rhs = cv.val(arg(0, "input")), cv.val(arg(1, "other" if key == "matmul" else "mat2"))
        if key == "bmm" and (len(lhs.shape) != 3 or len(rhs.shape) != 3):
            cv.b.unsupported(f"bmm of {list(lhs.shape)} and {list(rhs.shape)}", "give two 3-D tensors")
        return build(cv.b, name, lhs, rhs)


def build(b, name: str, lhs, rhs):
    """A framework ``lhs @ rhs`` (each a value or a constant numpy array in framework order) as one
    BATCH_MATMUL.

    A 3-D framework value (N, C, L) is ``ncl``: its graph tensor (1, 1, L, C) holds each (C, L) matrix
    transposed. With such an operand the product is built transposed, Yᵀ = Bᵀ Aᵀ: the graph tensor of an
    ncl operand is its transpose already, a plain value is transposed by ``adj_x`` / ``adj_y``, a constant in
    numpy; and Yᵀ in the graph is exactly the ncl layout of Y. No data moves."""
    for v, side in ((lhs, "lhs"), (rhs, "rhs")):
        if isinstance(v, np.ndarray):
            if v.ndim < 2:
                b.unsupported(f"a matmul with a {v.ndim}-D constant {side}",
                              "give a 2-D (or higher) constant")
        elif v.layout not in ("plain", "ncl") or v.permuted:
            what = f"{'flattened ' if v.permuted else ''}{v.layout}"
            b.unsupported(f"a matmul of a {what} tensor {list(v.shape)}",
                          "multiply (N, C, L) or flat (N, K) tensors (reshape an image to (N, C, H*W) first)")
    transposed = any(not isinstance(v, np.ndarray) and v.layout == "ncl" for v in (lhs, rhs))
    operands = [rhs, lhs] if transposed else [lhs, rhs]
    names, adj = [], []
    for k, v in enumerate(operands):
        if isinstance(v, np.ndarray):
            data = np.swapaxes(v, -1, -2) if transposed else v
            names.append(b.const(f"{name}/{('lhs', 'rhs')[k]}", data.astype(np.float32)))
            adj.append(False)
        else:
            names.append(v.name)
            adj.append(transposed and v.layout == "plain")
    attrs = {"adj_x": adj[0], "adj_y": adj[1]}
    out = b.emit(name, BatchMatMul.name, names, attrs, "ncl" if transposed else "plain")
    shape = b.g.tensors[out.name].shape
    if transposed and (len(shape) != 4 or shape[:2] != (1, 1)):
        b.unsupported(f"a matmul of {_framework(lhs)} and {_framework(rhs)} whose result is not (N, C, L)",
                      "keep batched matmuls to (N, C, L) tensors and 2-D constants")
    return out


def _framework(v) -> list:
    return list(v.shape)
