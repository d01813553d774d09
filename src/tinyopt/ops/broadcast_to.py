"""BROADCAST_TO: the input repeated along its axes of size 1 (and new leading axes) to ``shape`` (a
constant int32 operand), as TFLM's ``BroadcastTo`` (up to 5-D). Bytes are copied, never rescaled. The
framework doors use it for ONNX ``Expand`` and ``Tensor.expand``; in the C library it is a strided walk
with step 0 on the repeated axes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyopt.ops import _common as c
from tinyopt.ops import _movement as mv
from tinyopt.ops._record import CKernel, Op, OpData, Options, QuantRule, register

MAX_RANK = 5


@dataclass(kw_only=True)
class BroadcastToData(OpData):
    out_shape: tuple


def target(graph, node, fail) -> tuple[int, ...]:
    x = graph.tensors[node.inputs[0]]
    t = c.in_tensor(graph, node, 1)
    if t is None or t.data is None:
        fail("has no constant shape", "give BROADCAST_TO a constant int32 shape")
    shape = tuple(int(v) for v in np.asarray(t.data).ravel())
    lead = len(shape) - len(x.shape)
    if lead < 0 or any(d not in (1, shape[lead + k]) for k, d in enumerate(x.shape)):
        fail(f"cannot broadcast {list(x.shape)} to {list(shape)}", "give a shape the input broadcasts to")
    return shape


@register
class BroadcastTo(Op):
    name = "BROADCAST_TO"
    builtin = 130
    options = Options(104)
    arity = (2, 2)
    int8_version = 2
    quant = QuantRule(output="input")
    c = CKernel("strided_slice", "strided_slice_params")
    onnx = ("Expand",)
    torch_functions = ("expand", "expand_as")

    def shape(self, graph, node, fail):
        return target(graph, node, fail)

    def prepare(self, graph, node, is_int):
        def fail(msg, fix):
            c.fail(graph, node, msg, fix)

        shape = target(graph, node, fail)
        if len(shape) > MAX_RANK:
            c.unsupported(graph, node, f"a rank-{len(shape)} broadcast",
                          f"TFLM broadcasts up to {MAX_RANK}-D")
        mv.keeps_batch(graph, node, shape[0] == 1, "the broadcast")
        mv.check_same_quant(graph, node, node.inputs[:1], is_int)
        return BroadcastToData(dtype=mv.dtype_of(is_int), out_shape=shape)

    def eval(self, p: BroadcastToData, inputs):
        x = inputs[0]
        rows = x.reshape((x.shape[0],) + (1,) * (len(p.out_shape) - x.ndim) + x.shape[1:])
        return np.ascontiguousarray(np.broadcast_to(rows, (x.shape[0], *p.out_shape[1:])))

    def pack_c(self, graph, index, node):
        """Walk the output; an axis the input repeats has input step 0."""
        p = self.prepare(graph, node, True)
        mv.check_c_int8(graph, index, node, [node.inputs[0], *node.outputs])
        x = graph.tensors[node.inputs[0]]
        lead = len(p.out_shape) - len(x.shape)
        strides = [0] * lead + [s if d != 1 else 0 for d, s in zip(x.shape, mv.row_strides(x.shape))]
        return mv.walk_params(graph, index, node, 0, list(p.out_shape), strides)

    # -- doors
    def from_onnx(self, cv, node, name, a, ins):
        x = cv.val(ins[0])
        shape = [int(v) for v in np.asarray(cv.const(ins[1], "shape")).ravel()]
        rank = max(len(shape), len(x.shape))
        a_, b_ = [1] * (rank - len(x.shape)) + list(x.shape), [1] * (rank - len(shape)) + shape
        out = [max(p, q) if 1 in (p, q) else p for p, q in zip(a_, b_)]  # ONNX broadcasts both ways
        return build(cv.b, name, x, tuple(out))

    def from_torch_function(self, cv, n, key, name, out_shape):
        return build(cv.b, name, cv.val(n.args[0]), tuple(out_shape))


def build(b, name: str, x, shape: tuple[int, ...]):
    """Broadcast a framework value to the framework ``shape`` (same rank, or plain tensors)."""
    from tinyopt.graph.torch_import import to_graph_shape

    shape = tuple(int(d) for d in shape)
    if shape == tuple(x.shape):
        return x
    if x.permuted or (x.layout != "plain" and len(shape) != len(x.shape)):
        b.unsupported(f"an expand of a {x.layout} tensor {list(x.shape)} to {list(shape)}",
                      "expand to the same rank")
    if shape[0] != 1:
        b.unsupported(f"an expand of the batch axis to {shape[0]}", "keep the batch at 1")
    g = to_graph_shape(shape, x.layout)
    ins = [x.name, b.const(f"{name}/shape", np.asarray(g, np.int32), "int32")]
    return b.emit(name, BroadcastTo.name, ins, {}, x.layout)
