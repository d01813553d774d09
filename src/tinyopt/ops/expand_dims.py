"""EXPAND_DIMS: the input with a new axis of size 1 at ``axis`` (a constant int32 operand; negative counts
from the end of the output), as TFLM's ``ExpandDims``: a copy of the bytes. In the C library its output
aliases its input."""

from __future__ import annotations

import numpy as np

from tinyopt.ops import _common as c
from tinyopt.ops import _movement as mv
from tinyopt.ops._record import CKernel, Op, Options, QuantRule, register
from tinyopt.ops.squeeze import AliasData


def new_axis(graph, node, fail) -> int:
    x = graph.tensors[node.inputs[0]]
    t = c.in_tensor(graph, node, 1)
    if t is None or t.data is None or t.size != 1:
        fail("has no constant scalar axis", "give EXPAND_DIMS its axis as a constant int32 tensor")
    axis = int(np.asarray(t.data).ravel()[0])
    rank = len(x.shape)
    if axis < 0:
        axis += rank + 1
    if not 0 <= axis <= rank:
        fail(f"axis {axis} is out of range for a rank-{rank} input", f"give an axis in [-{rank + 1}, {rank}]")
    return axis


@register
class ExpandDims(Op):
    name = "EXPAND_DIMS"
    builtin = 70
    options = Options(52)
    arity = (2, 2)
    aliases_input = False  # same bytes, but its attributes are relative to its input: no chain folding
    quant = QuantRule(output="input")
    c = CKernel("", "")  # no kernel: the output aliases the input

    def shape(self, graph, node, fail):
        x = graph.tensors[node.inputs[0]]
        shape = list(x.shape)
        shape.insert(new_axis(graph, node, fail), 1)
        return tuple(shape)

    def prepare(self, graph, node, is_int):
        y = graph.tensors[node.outputs[0]]
        mv.check_same_quant(graph, node, node.inputs[:1], is_int)
        return AliasData(dtype=mv.dtype_of(is_int), new_shape=y.shape)

    def eval(self, p: AliasData, inputs):
        x = inputs[0]
        return x.reshape((x.shape[0], *p.new_shape[1:]))

    def pack_c(self, graph, index, node):
        from tinyopt.export.c.params import OpParams

        self.prepare(graph, node, True)
        return OpParams("alias", {"size": graph.tensors[node.outputs[0]].size}, aliases=True)
