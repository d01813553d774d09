"""ARG_MAX: the index of the largest value along one axis (an int32 constant operand), as int32; the axis
is removed (TFLite has no keep_dims: the framework doors add a RESHAPE). As TFLM's ``ArgMinMax`` with its
plain ``GreaterFn``: a scan from index 0 that moves only on a strict ``>``, so the first index wins ties,
a NaN later in the row never wins, and a NaN at index 0 is never beaten. The same for float32 and int8
(the raw int8 values order like the real ones); the output carries no quantization.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyopt.graph._tflite_schema import DTYPE_TO_TYPE
from tinyopt.ops import _common as c
from tinyopt.ops._record import Op, OpData, Options, QuantRule, register, scalar


@dataclass(kw_only=True)
class ArgMaxData(OpData):
    axis: int  # the resolved graph axis


def axis_of(graph, node) -> int:
    x = graph.tensors[node.inputs[0]]
    axis = node.attrs.get("axis")
    if axis is None:
        values = c.const_ints(graph, node, 1, "axis")
        if len(values) != 1:
            c.fail(graph, node, f"has {len(values)} axes", "give ARG_MAX a single axis")
        axis = values[0]
    rank = len(x.shape)
    if not -rank <= int(axis) < rank:
        c.fail(graph, node, f"axis {axis} is out of range for a rank-{rank} input",
               f"use an axis in [-{rank}, {rank})")
    return int(axis) % rank


@register
class ArgMax(Op):
    name = "ARG_MAX"
    builtin = 56
    options = Options(40, (scalar("output_type", 0, "i8", 0, DTYPE_TO_TYPE["int32"]),))
    arity = (2, 2)
    int8_version = 2
    quant = QuantRule(output="input")  # the int32 output stays unquantized (convert keeps integer results)
    onnx = ("ArgMax",)
    torch_functions = ("argmax",)

    def check_dtypes(self, ins, out):
        if ins[0].dtype not in ("float32", "int8"):
            return f"takes {ins[0].dtype} input (TFLM: float32 or int8)"
        if out.dtype != "int32":
            return f"writes {out.dtype} indices (TFLM writes int32)"
        return None

    def write_tflite(self, w, graph, node):
        return w.fields(self.options.fields,
                        {"output_type": DTYPE_TO_TYPE[graph.tensors[node.outputs[0]].dtype]})

    def complete_operands(self, graph, node):
        if (len(node.inputs) < 2 or not node.inputs[1]) and "axis" in node.attrs:
            from tinyopt.graph.ir import Tensor

            name = graph.unique_name(f"{node.name}_axis")
            graph.add_tensor(Tensor(name, (1,), "int32", data=np.array([node.attrs["axis"]], np.int32)))
            node.inputs = [node.inputs[0], name]

    def shape(self, graph, node, fail):
        x = graph.tensors[node.inputs[0]]
        axis = axis_of(graph, node)
        return tuple(d for i, d in enumerate(x.shape) if i != axis)

    def other_ops(self, graph, node):
        return graph.tensors[node.inputs[0]].size

    def prepare(self, graph, node, is_int):
        out = graph.tensors[node.outputs[0]]
        if out.dtype != "int32":
            c.unsupported(graph, node, f"{out.dtype} indices",
                          "write the indices as int32 (TFLM's only output type)")
        return ArgMaxData(dtype="int8" if is_int else "float32", axis=axis_of(graph, node))

    def eval(self, p: ArgMaxData, inputs):
        x = inputs[0]
        if x.dtype.kind != "f":
            return np.argmax(x, axis=p.axis).astype(np.int32)
        nan = np.isnan(x)
        first_nan = np.take(nan, 0, axis=p.axis)  # nothing is > NaN: the scan stays at index 0
        best = np.argmax(np.where(nan, -np.inf, x), axis=p.axis)  # a later NaN is never > anything
        return np.where(first_nan, 0, best).astype(np.int32)

    # -- doors
    def from_onnx(self, cv, node, name, a, ins):
        if a.get("select_last_index", 0):
            cv.b.unsupported("ArgMax with select_last_index=1",
                             "TFLite's ARG_MAX returns the first index of a tie")
        return build(cv.b, name, cv.val(ins[0]), int(a.get("axis", 0)), bool(a.get("keepdims", 1)))

    def from_torch_function(self, cv, n, key, name, out_shape):
        arg = cv.arg(n)
        dim = arg(1, "dim")
        if dim is None:
            cv.b.unsupported("argmax over every element (no dim)", "give argmax a dim")
        return build(cv.b, name, cv.val(n.args[0]), int(dim), bool(arg(2, "keepdim", False)))


def build(b, name: str, x, axis: int, keepdims: bool):
    """Framework argmax over ``axis``: ARG_MAX over the matching graph axis, then (keepdims, or an NCHW value
    that keeps C and one spatial axis) a RESHAPE to the framework's shape in the graph's order."""
    from tinyopt.graph.torch_import import graph_axis
    from tinyopt.ops.reshape import Reshape

    rank = len(x.shape)
    if not -rank <= axis < rank:
        b.unsupported(f"argmax over axis {axis} of a value of shape {list(x.shape)}", "fix the axis")
    axis %= rank
    if axis == 0:
        b.unsupported("argmax over the batch axis", "take the argmax over a feature axis")
    if x.permuted and rank != 2:
        b.unsupported("argmax over a flattened channels-first tensor", "take the argmax before flattening")
    gaxis = graph_axis(axis, x.layout, rank)
    v = b.emit(name, ArgMax.name, [x.name, b.const(f"{name}/axis", np.array([gaxis], np.int32), "int32")], {},
               "plain")
    b.g.tensors[v.name].dtype = "int32"
    gshape = b.g.tensors[v.name].shape
    if keepdims:  # the unit axis back where the graph has it (its layout unchanged)
        new = tuple(1 if i == gaxis else d for i, d in
                    enumerate(b.g.tensors[x.name].shape))
        v = b.emit(f"{name}/keepdims", Reshape.name, [v.name], {"new_shape": new}, x.layout)
        b.g.tensors[v.name].dtype = "int32"
        return v
    kept = [graph_axis(i, x.layout, rank) for i in range(rank) if i != axis]
    # back to a layout whose graph order matches the framework's
    if x.layout == "ncl" or kept != sorted(kept):
        shape4 = tuple(1 if i == gaxis else d for i, d in enumerate(b.g.tensors[x.name].shape))
        if x.layout == "nchw" and gaxis in (1, 2):  # C and one spatial axis left: an ncl value (1, 1, L, C)
            shape4 = (1, 1, shape4[3 - gaxis], shape4[3])
            v = b.emit(f"{name}/as_ncl", Reshape.name, [v.name], {"new_shape": shape4}, "ncl")
        # L left: plain (1, L) is the graph's (1, 1, L) without its unit axis
        elif x.layout == "ncl" and gaxis == 3:
            v = b.emit(f"{name}/flat", Reshape.name, [v.name], {"new_shape": (1, gshape[2])}, "plain")
        elif x.layout == "ncl":  # C left
            v = b.emit(f"{name}/flat", Reshape.name, [v.name], {"new_shape": (1, gshape[-1])}, "plain")
        b.g.tensors[v.name].dtype = "int32"
    return v
