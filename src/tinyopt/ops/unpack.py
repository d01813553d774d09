"""UNPACK: the ``num`` slices of the input along ``axis``, each without that axis, as TFLM's ``Unpack``
(each output is a run of bytes per outer index: the split kernel in the C library). The outputs keep the
input's scale and zero point."""

from __future__ import annotations

import numpy as np

from tinyopt.ops import _common as c
from tinyopt.ops import _movement as mv
from tinyopt.ops._record import CKernel, Op, Options, QuantRule, register, scalar
from tinyopt.ops.split import SplitData, pack_runs


def unpack_axis(graph, node, fail) -> int:
    x = graph.tensors[node.inputs[0]]
    rank = len(x.shape)
    axis = int(node.attrs.get("axis", 0))
    if not -rank <= axis < rank:
        fail(f"axis {axis} is out of range for a rank-{rank} input", f"give an axis in [-{rank}, {rank})")
    axis %= rank
    n = int(node.attrs.get("num", x.shape[axis]) or x.shape[axis])
    if n != x.shape[axis] or n != len(node.outputs):
        fail(f"num {n} for axis {axis} of size {x.shape[axis]} and {len(node.outputs)} outputs",
             "give num = the axis size = the number of outputs")
    return axis


@register
class Unpack(Op):
    name = "UNPACK"
    builtin = 88
    options = Options(64, (scalar("num", 0, "i32"), scalar("axis", 1, "i32")))
    outputs = (1, 1 << 16)
    int8_version = 2
    quant = QuantRule(output="input")
    c = CKernel("split", "split_params")
    torch_functions = ("unbind",)

    def shapes(self, graph, node, fail):
        x = graph.tensors[node.inputs[0]]
        axis = unpack_axis(graph, node, fail)
        shape = tuple(d for k, d in enumerate(x.shape) if k != axis)
        return [shape] * len(node.outputs)

    def prepare(self, graph, node, is_int):
        def fail(msg, fix):
            c.fail(graph, node, msg, fix)

        axis = unpack_axis(graph, node, fail)
        mv.keeps_batch(graph, node, axis != 0, "the unstack")
        mv.check_same_quant(graph, node, [node.inputs[0], *node.outputs], is_int)
        return SplitData(dtype=mv.dtype_of(is_int), axis=axis, sizes=(1,) * len(node.outputs))

    def eval(self, p: SplitData, inputs):
        parts = [np.take(inputs[0], k, axis=p.axis) for k in range(len(p.sizes))]
        return parts if len(parts) > 1 else parts[0]

    def pack_c(self, graph, index, node):
        p = self.prepare(graph, node, True)
        return pack_runs(graph, index, node, "split", graph.tensors[node.inputs[0]].shape, p.axis, p.sizes)

    # -- doors
    def from_torch_function(self, cv, n, key, name, out_shape):
        x = cv.val(n.args[0])
        dim = int(cv.arg(n)(1, "dim", 0)) % len(x.shape)
        if x.layout != "plain" or x.permuted or dim == 0:
            from tinyopt.ops import split as sp
            from tinyopt.ops.reshape import build as reshape

            parts = sp.build(cv.b, name, x, [1] * x.shape[dim], dim)  # channels-first: split, drop the axis
            return [reshape(cv.b, f"{name}/squeeze{k}", v, tuple(s))
                    for k, (v, s) in enumerate(zip(parts, out_shape))]
        return cv.b.emit(name, Unpack.name, [x.name], {"num": x.shape[dim], "axis": dim}, "plain",
                         outputs=x.shape[dim])
