"""CONCATENATION: inputs joined along ``axis``. TFLM's int8 kernel copies bytes, so every input must carry
the output's scale and zero point (``convert`` requantizes those that do not, as the TFLite converter does).
TFLM takes at most 10 inputs and no fused activation (its Prepare refuses one: the passes never fuse into
it). In the C library each input's run of bytes is copied per outer index (kernels/concatenation.c)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyopt.graph.ir import Node
from tinyopt.ops import _common as c
from tinyopt.ops import _int16, _int16_c
from tinyopt.ops._record import CKernel, Op, OpData, Options, QuantRule, activation, register, scalar

MAX_INPUTS = 10  # TFLM's concatenation.cc kMaxInputNum


@dataclass(kw_only=True)
class ConcatenationData(c.ActivationRange, OpData):
    axis: int  # non-negative graph axis


@register
class Concatenation(Op):
    name = "CONCATENATION"
    builtin = 2
    options = Options(10, (scalar("axis", 0, "i32", 0, -1), activation("activation", 1)))
    arity = (1, 1 << 16)
    data_inputs = None
    fused_activation = False  # the attribute is read and written, but TFLM refuses anything but NONE
    int8_version = 2
    quant = QuantRule(inputs_as_output=True, constants="output", int16=True)
    c = CKernel("concatenation", "concatenation_params")
    onnx = ("Concat",)
    torch_functions = ("cat", "concat")
    spec_layers = {"concat": frozenset({"from", "axis"})}
    spec_aliases = {"concatenate": "concat"}

    def read_tflite(self, r, ins, out):
        attrs = super().read_tflite(r, ins, out)
        axis, rank = attrs["axis"], len(ins[0].shape)
        if any(len(t.shape) != rank for t in ins) or not -rank <= axis < rank:
            r.fail(f"cannot concatenate {[list(t.shape) for t in ins]} on axis {axis}")
        return attrs

    def shape(self, graph, node, fail):
        ins = graph.node_inputs(node)
        x = ins[0]
        axis = node.attrs.get("axis", -1) % len(x.shape)
        for t in ins[1:]:
            if len(t.shape) != len(x.shape) or any(a != b for i, (a, b) in enumerate(zip(t.shape, x.shape))
                                                   if i != axis):
                fail(f"cannot concatenate {list(x.shape)} and {list(t.shape)} on axis {axis}",
                     "make the other dimensions equal")
        return tuple(sum(t.shape[axis] for t in ins) if i == axis else d for i, d in enumerate(x.shape))

    def is_identity(self, graph, node):
        return len([t for t in node.inputs if t]) == 1 and node.attrs.get("activation", "NONE") == "NONE"

    def prepare(self, graph, node, is_int):
        x = graph.tensors[node.inputs[0]]
        axis = int(node.attrs.get("axis", -1))
        if not -len(x.shape) <= axis < len(x.shape):
            c.fail(graph, node, f"axis {axis} is out of range for rank {len(x.shape)}", "fix the axis")
        if len(node.inputs) > MAX_INPUTS:
            c.unsupported(graph, node, f"{len(node.inputs)} inputs",
                          f"TFLM concatenates at most {MAX_INPUTS}: concatenate in stages")
        if (node.attrs.get("activation", "NONE") or "NONE") != "NONE":
            c.unsupported(graph, node, f"a fused {node.attrs['activation']} (TFLM's kernel takes none)",
                          "apply the activation as its own operator after the concatenation")
        p = c.output_range(graph, node, is_int)
        if is_int:
            out = c.scalar_qparams(graph, node, node.outputs[0])
            for name in node.inputs:
                if c.scalar_qparams(graph, node, name) != out:
                    c.fail(graph, node, f"input '{name}' has other quantization parameters than the output",
                           "give every concatenated tensor the output's scale and zero point")
        if is_int and x.dtype == "int16":  # TFLM copies int16 values unscaled; it requires zero point 0
            _int16.zero_points_zero(graph, node, [*node.inputs, node.outputs[0]],
                                    "TFLM's int16 concatenation requires symmetric tensors")
        dtype = ("int16" if x.dtype == "int16" else "int8") if is_int else "float32"
        return ConcatenationData(dtype=dtype, axis=axis % len(x.shape), **p)

    def eval(self, p: ConcatenationData, inputs):
        n = max(a.shape[0] for a in inputs)
        arrays = [np.broadcast_to(a, (n, *a.shape[1:])) for a in inputs]
        y = np.concatenate(arrays, axis=p.axis)
        if p.dtype == "float32":
            return c.clamp_float(y, p)
        return np.clip(y, p.output_activation_min, p.output_activation_max).astype(p.dtype)

    def pack_c(self, graph, index, node):
        if _int16_c.is_int16(graph, node):  # the 16x8 copy (kernels/movement_int16.c)
            return _int16_c.pack_concatenation(graph, index, node, self.prepare(graph, node, True).axis)
        from tinyopt.ops.split import pack_runs

        p = self.prepare(graph, node, True)
        check_operands(graph, index, node)
        return pack_runs(graph, index, node, "concatenation", graph.tensors[node.outputs[0]].shape, p.axis,
                         [graph.tensors[t].shape[p.axis] for t in node.inputs])

    # -- doors
    def from_onnx(self, cv, node, name, a, ins):
        return build(cv.b, name, [cv.val(t) for t in ins], a["axis"])

    def from_torch_function(self, cv, n, key, name, out_shape):
        arg = cv.arg(n)
        return build(cv.b, name, tensor_list(cv, arg(0, "tensors")), arg(1, "dim", 0))

    def from_spec(self, sb, kind, layer, x, lname, fused):
        srcs = sb.sources(layer)
        return Node(lname, self.name, [x.name, *srcs], [sb.out(lname)],
                    {"axis": int(layer.get("axis", -1)), "activation": fused})


def tensor_list(cv, arg) -> list:
    """The values of a ``torch.cat``/``stack`` argument: a list of tensors, or one call's tuple of them
    (``torch.cat(x.chunk(2, 1))``)."""
    if isinstance(arg, (list, tuple)):
        return [cv.val(t) for t in arg]
    vals = cv.val(arg, many=True)
    return list(vals) if isinstance(vals, list) else [vals]


def check_operands(graph, index: int, node: Node) -> None:
    """The C kernel takes its operands from the arena: a constant operand cannot be one."""
    from tinyopt.errors import UnsupportedOpError
    from tinyopt.export.c.params import where

    for t in node.inputs:
        if graph.tensors[t].constant:
            raise UnsupportedOpError(f"constant operand '{t}' of a concatenation", path=graph.source,
                                     where=where(index, node), fix="concatenate activations only")


def build(b, name: str, xs: list, axis: int):
    """A framework concatenation. Flattened channels-first vectors joined end to end keep their element
    orders (the output's permutation is theirs, shifted; a dense layer after it absorbs it); joined any
    other way they are first gathered into the framework's order."""
    from tinyopt.graph.torch_import import graph_axis
    from tinyopt.ops.gather import unpermute

    perm = None
    if any(x.permuted for x in xs):
        if all(len(x.shape) == 2 for x in xs) and int(axis) % 2 == 1:
            offsets = np.cumsum([0, *(x.shape[1] for x in xs[:-1])])
            perm = np.concatenate([(x.perm if x.permuted else np.arange(x.shape[1])) + o
                                   for x, o in zip(xs, offsets)])
        else:
            xs = [unpermute(b, f"{name}/order{k}", x) for k, x in enumerate(xs)]
    x0 = xs[0]
    if any(graph_axis(axis, x.layout, len(x0.shape)) == 0 for x in xs) or len({x.layout for x in xs}) > 1:
        from tinyopt.ops.reshape import framework_order  # along a batch of one: the values get a new one;
        # joining values of different layouts (an image and a vector of boxes): each in the framework's order

        xs = [framework_order(b, f"{name}/in{k}", x, lift=True) for k, x in enumerate(xs)]
        x0, perm = xs[0], None
    if any(x.layout != x0.layout for x in xs):
        b.unsupported("a concatenation of tensors with different layouts",
                      "concatenate tensors of one kind (images with images, vectors with vectors)")
    ax = graph_axis(axis, x0.layout, len(x0.shape))
    attrs = {"axis": ax, "activation": "NONE"}
    return b.emit(name, Concatenation.name, [x.name for x in xs], attrs, x0.layout, perm)
