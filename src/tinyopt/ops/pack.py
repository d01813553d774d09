"""PACK: ``values_count`` tensors of one shape stacked along a new ``axis``, as TFLM's ``Pack`` (it copies
each input's run of bytes per outer index, without rescaling: ``convert`` requantizes the inputs to the
output's parameters, as for CONCATENATION). In the C library it is the concatenation kernel."""

from __future__ import annotations

import numpy as np

from tinyopt.ops import _common as c
from tinyopt.ops import _movement as mv
from tinyopt.ops._record import CKernel, Op, Options, QuantRule, register, scalar
from tinyopt.ops.concatenation import ConcatenationData


def pack_axis(graph, node, fail) -> int:
    x = graph.tensors[node.inputs[0]]
    rank = len(x.shape) + 1
    axis = int(node.attrs.get("axis", 0))
    if not -rank <= axis < rank:
        fail(f"axis {axis} is out of range for a rank-{rank} output", f"give an axis in [-{rank}, {rank})")
    return axis % rank


@register
class Pack(Op):
    name = "PACK"
    builtin = 83
    options = Options(59, (scalar("values_count", 0, "i32"), scalar("axis", 1, "i32")))
    arity = (1, 1 << 16)
    data_inputs = None
    int8_version = 2
    quant = QuantRule(inputs_as_output=True, constants="output")
    c = CKernel("concatenation", "concatenation_params")
    torch_functions = ("stack",)

    def shape(self, graph, node, fail):
        ins = graph.node_inputs(node)
        if any(t.shape != ins[0].shape for t in ins):
            fail(f"stacks tensors of different shapes {[list(t.shape) for t in ins]}", "give equal shapes")
        n = int(node.attrs.get("values_count", len(ins)) or len(ins))
        if n != len(ins):
            fail(f"values_count {n} but {len(ins)} inputs", "give values_count = the number of inputs")
        axis = pack_axis(graph, node, fail)
        shape = list(ins[0].shape)
        shape.insert(axis, len(ins))
        return tuple(shape)

    def prepare(self, graph, node, is_int):
        def fail(msg, fix):
            c.fail(graph, node, msg, fix)

        axis = pack_axis(graph, node, fail)
        mv.keeps_batch(graph, node, axis != 0, "the stack")
        mv.check_same_quant(graph, node, node.inputs, is_int)
        return ConcatenationData(dtype=mv.dtype_of(is_int), axis=axis, output_activation_min=-128,
                                 output_activation_max=127, activation="NONE")

    def eval(self, p: ConcatenationData, inputs):
        n = max(a.shape[0] for a in inputs)
        return np.stack([np.broadcast_to(a, (n, *a.shape[1:])) for a in inputs], axis=p.axis)

    def pack_c(self, graph, index, node):
        from tinyopt.ops.concatenation import check_operands
        from tinyopt.ops.split import pack_runs

        p = self.prepare(graph, node, True)
        check_operands(graph, index, node)
        out = graph.tensors[node.outputs[0]].shape
        return pack_runs(graph, index, node, "concatenation", out, p.axis, [1] * len(node.inputs))

    # -- doors
    def from_torch_function(self, cv, n, key, name, out_shape):
        arg = cv.arg(n)
        from tinyopt.ops.concatenation import tensor_list

        return build(cv.b, name, tensor_list(cv, arg(0, "tensors")), int(arg(1, "dim", 0)))


def build(b, name: str, xs: list, axis: int):
    """``torch.stack``: plain tensors stack with PACK; channels-first ones become a concatenation of the
    inputs given a unit axis (the same bytes)."""
    from tinyopt.graph.torch_import import graph_axis
    from tinyopt.ops.gather import unpermute

    xs = [unpermute(b, f"{name}/order{k}", x) for k, x in enumerate(xs)]  # flattened feature maps in order
    x0 = xs[0]
    rank = len(x0.shape) + 1
    axis = int(axis) % rank
    if any(x.shape != x0.shape for x in xs):
        b.unsupported("a stack of tensors with different shapes, layouts or flattened orders")
    if axis == 0 or any(x.layout not in ("plain", "nchw", "ncl", "grouped") for x in xs):
        from tinyopt.ops.reshape import framework_order  # on the batch of one: the values get a new one

        xs = [framework_order(b, f"{name}/in{k}", x, lift=True) for k, x in enumerate(xs)]
        attrs = {"values_count": len(xs), "axis": graph_axis(axis, "unbatched", rank)}
        return b.emit(name, Pack.name, [x.name for x in xs], attrs, "unbatched")
    if any(x.layout != x0.layout for x in xs):
        b.unsupported("a stack of tensors with different shapes, layouts or flattened orders")
    if x0.layout != "plain":
        b.unsupported(f"a stack of {x0.layout} tensors (a 5-D result)",
                      "concatenate them instead (torch.cat)")
    attrs = {"values_count": len(xs), "axis": graph_axis(axis, "plain", rank)}
    return b.emit(name, Pack.name, [x.name for x in xs], attrs, "plain")
