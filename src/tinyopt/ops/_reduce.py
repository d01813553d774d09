"""What MEAN, SUM and REDUCE_MAX share: the axes operand (an int32 constant; importers may give
``attrs["axes"]``), ``keep_dims``, TFLM's ``ResolveAxis``, the C kernel's walk (kernels/reduce.c) and the
framework door that maps NCHW axes onto the graph's NHWC axes.

TFLM runs every int8 reduction through one generic path (``reduce_common.cc``): any axes, any rank, the
sum kept in int32 (``QuantizedMeanOrSum``) or the maximum of the raw int8 values; only float MEAN over
axes 1 and 2 of a 4-D tensor with keep_dims takes a special loop, which sums in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyopt.errors import ModelFormatError, UnsupportedOpError
from tinyopt.graph.ir import Tensor
from tinyopt.ops import _common as c
from tinyopt.ops._record import CKernel, Op, OpData, Options, scalar

MAX_WALK_RANK = 4  # the C kernel walks at most 4 kept and 4 reduced dimension groups


@dataclass(kw_only=True)
class ReduceData(OpData):
    axes: list                        # resolved graph axes: non-negative, sorted, no duplicates
    keep_dims: bool
    num_elements_in_axis: int         # elements reduced into each output
    input_zero_point: int = 0
    output_zero_point: int = 0
    multiplier: int = 0               # input scale / output scale (TFLM's op_data->multiplier, shift)
    shift: int = 0


def axes_of(graph, node) -> list[int]:
    """The axes as given (attribute, else the constant operand), not yet resolved."""
    axes = node.attrs.get("axes")
    if axes is None:
        if len(node.inputs) < 2 or not node.inputs[1] or graph.tensors[node.inputs[1]].data is None:
            c.fail(graph, node, "has no constant axes", f"give {node.op} a constant int32 axes tensor")
        axes = np.asarray(graph.tensors[node.inputs[1]].data).ravel().tolist()
    return [int(a) for a in axes]


def resolve_axes(graph, node, rank: int) -> list[int]:
    """TFLM's ``ResolveAxis``: negative axes counted from the end, duplicates dropped; checked."""
    axes = axes_of(graph, node)
    if any(not -rank <= a < rank for a in axes):
        c.fail(graph, node, f"axes {axes} are out of range for a rank-{rank} input",
               f"use axes in [-{rank}, {rank})")
    return sorted({a % rank for a in axes})


class Reducer(Op):
    """Base record of the reductions (``ReducerOptions``: keep_dims)."""

    options = Options(27, (scalar("keep_dims", 0, "bool", False),))
    arity = (2, 2)
    int8_version = 2
    c = CKernel("reduce", "reduce_params")

    def read_tflite(self, r, ins, out):
        axes = r.const_int(ins[1], "axes")
        rank = len(ins[0].shape)
        if axes.ndim > 1 or any(not -rank <= a < rank for a in axes.ravel().tolist()):
            r.fail(f"axes {axes.ravel().tolist()} are out of range for rank {rank}")
        return super().read_tflite(r, ins, out)

    def complete_operands(self, graph, node):
        if len(node.inputs) >= 2 and node.inputs[1]:
            return
        if "axes" not in node.attrs:
            raise ModelFormatError(f"{node.op} has neither an axes operand nor an 'axes' attribute",
                                   path=graph.source, where=f"node {graph.nodes.index(node)} '{node.name}'",
                                   fix="give the axes to reduce over")
        axes = np.asarray(node.attrs["axes"], np.int32).ravel()
        name = graph.unique_name(f"{node.name}_axes")
        graph.add_tensor(Tensor(name, axes.shape, "int32", data=axes))
        node.inputs = [node.inputs[0], name]

    def shape(self, graph, node, fail):
        x = graph.tensors[node.inputs[0]]
        rank = len(x.shape)
        axes = axes_of(graph, node)
        if any(not -rank <= a < rank for a in axes):
            fail(f"axes {axes} are out of range for a rank-{rank} input", f"use axes in [-{rank}, {rank})")
        reduced = {a % rank for a in axes}
        if node.attrs.get("keep_dims"):
            return tuple(1 if i in reduced else d for i, d in enumerate(x.shape))
        return tuple(d for i, d in enumerate(x.shape) if i not in reduced)

    def other_ops(self, graph, node):
        return graph.tensors[node.inputs[0]].size

    def prepare_reduce(self, graph, node, is_int) -> dict:
        """The fields every reduction has (``ReduceData`` keywords); quantization is the record's."""
        x = graph.tensors[node.inputs[0]]
        axes = resolve_axes(graph, node, len(x.shape))
        count = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
        return dict(dtype="int8" if is_int else "float32", axes=axes,
                    keep_dims=bool(node.attrs.get("keep_dims", False)), num_elements_in_axis=count)

    @staticmethod
    def batch_axes(p: ReduceData) -> tuple[int, ...]:
        """The numpy axes of a runtime batch (N, ...): graph axis 0 is the batch of one row, not reduced."""
        return tuple(a for a in p.axes if a != 0)

    def pack_c(self, graph, index, node):
        from tinyopt.export.c import params as cp

        x, y = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
        cp.check_int8(graph, index, node, [x, y])
        q = self.prepare(graph, node, True)
        assert isinstance(q, ReduceData), f"{node.op}'s prepare must return ReduceData"
        walk = reduce_walk(x.shape, q.axes)
        if walk is None:
            raise UnsupportedOpError(f"{node.op} over axes {q.axes} of {list(x.shape)} alternates between "
                                     f"kept and reduced axes more than {MAX_WALK_RANK} times",
                                     path=graph.source, where=cp.where(index, node),
                                     fix="reduce fewer, or adjacent, axes")
        kept, reduced = walk
        ints = dict(op=self.c_op, outer=int(np.prod([d for d, _ in kept], dtype=np.int64)),
                    count=q.num_elements_in_axis, kept_rank=len(kept), reduce_rank=len(reduced),
                    **self.c_requant(q))
        arrays = {}
        for key, groups in (("kept", kept), ("reduce", reduced)):
            pad = [(1, 0)] * (MAX_WALK_RANK - len(groups))  # unused slots: the kernel reads ranks, not these
            arrays[f"{key}_dims"] = ("int32_t", np.array([d for d, _ in groups + pad], np.int64))
            arrays[f"{key}_strides"] = ("int32_t", np.array([s for _, s in groups + pad], np.int64))
        # a sum over height and width of one NHWC image can add rows as they come (export/c/stream.py)
        rows = self.c_op == 0 and len(x.shape) == 4 and x.shape[0] == 1 and list(q.axes) == [1, 2]
        return cp.OpParams("reduce", ints, arrays, stream="sum" if rows else None)

    c_op = 0  # the C kernel's operation: 0 sum then requantize (MEAN, SUM), 1 maximum (REDUCE_MAX)

    def c_requant(self, q: ReduceData) -> dict:
        """input_zero_point, output_zero_point, multiplier, shift of the C kernel's requantization."""
        return dict(input_zero_point=q.input_zero_point, output_zero_point=q.output_zero_point,
                    multiplier=q.multiplier, shift=q.shift)

    # -- doors
    def onnx_reduce(self, cv, node, name, a, ins, axes_input_from: int):
        """ONNX Reduce*: axes from the attribute (before ``axes_input_from``) or the second input; no axes
        means every axis unless ``noop_with_empty_axes``."""
        x = cv.val(ins[0])
        if cv.opset < axes_input_from:
            axes = a.get("axes")
        else:
            axes = cv.const(ins[1], "axes").ravel().tolist() if len(ins) > 1 and ins[1] else None
        if not axes:
            if a.get("noop_with_empty_axes", 0):
                return x
            axes = None
        return build(cv.b, name, self.name, x, axes, bool(a.get("keepdims", 1)))

    def torch_reduce(self, cv, n, name, dim_key: str = "dim"):
        """torch.sum / amax / mean (and Tensor methods): ``dim`` (int, tuple or None: every axis), keepdim."""
        from tinyopt.graph.torch_import import tup

        arg = cv.arg(n)
        dim = arg(1, dim_key)
        if isinstance(dim, (list, tuple)) and not dim:
            dim = None
        keep = bool(arg(2, "keepdim", False))
        if n.kwargs.get("dtype") is not None or (len(n.args) > 3 and n.args[3] is not None):
            cv.b.unsupported(f"{n.target if isinstance(n.target, str) else 'a reduction'} with a dtype",
                             "drop the dtype argument")
        x = cv.val(n.args[0])
        return build(cv.b, name, self.name, x, None if dim is None else tup(dim, 1), keep)


def reduce_walk(shape, axes) -> tuple[list, list] | None:
    """The input as (size, stride) groups of kept and of reduced axes, in order: axes of size 1 dropped,
    neighbours of the same kind merged (row-major strides). None when either list is longer than the C
    kernel walks.

    >>> reduce_walk((1, 5, 4, 3), [1, 2])  # global average pooling: 3 channels, 20 pixels 3 apart
    ([(3, 1)], [(20, 3)])
    >>> reduce_walk((1, 2, 3, 4), [1, 3])
    ([(3, 4)], [(2, 12), (4, 1)])
    """
    strides = [int(np.prod(shape[i + 1:], dtype=np.int64)) for i in range(len(shape))]
    groups: dict[bool, list] = {False: [], True: []}
    last = None
    for i, d in enumerate(shape):
        if d == 1:
            continue
        kind = i in axes
        if last == kind:
            size, _ = groups[kind][-1]
            groups[kind][-1] = (size * d, strides[i])
        else:
            groups[kind].append((int(d), strides[i]))
        last = kind
    if max(len(groups[False]), len(groups[True])) > MAX_WALK_RANK:
        return None
    return groups[False], groups[True]


def build(b, name: str, op: str, x, axes, keepdims: bool):
    """A framework reduction over ``axes`` (None: every axis) of value ``x``, with the axes mapped onto
    the graph's NHWC axes. Without keepdims the framework drops axes in its own order: when the graph
    order of what is left differs (channels-first with C and one spatial axis kept), the result is kept
    4-D and viewed as a channels-first (N, C, L) value."""
    from tinyopt.graph.torch_import import Val, graph_axis
    from tinyopt.ops.reshape import Reshape

    rank = len(x.shape)
    axes = list(range(rank)) if axes is None else [int(a) for a in axes]
    if any(not -rank <= a < rank for a in axes):
        raise ModelFormatError(f"axes {axes} are out of range for a value of shape {list(x.shape)}",
                               path=b.g.source, where=b.where, fix="fix the reduction axes")
    axes = sorted({a % rank for a in axes})
    if 0 in axes and not keepdims:
        b.unsupported(f"a reduction over the batch axis of {list(x.shape)} without keepdims",
                      "keep the batch axis (reduce over axes >= 1, or keepdims=True)")
    axes = [a for a in axes if a != 0]  # the batch is 1: reducing over it changes nothing
    if not axes:
        return x
    if x.permuted and axes != list(range(1, rank)):
        b.unsupported(f"a reduction over axes {axes} of a flattened channels-first tensor",
                      "reduce before flattening, or over every axis")
    to_graph = [graph_axis(i, x.layout, rank) for i in range(rank)]
    gaxes = sorted(to_graph[a] for a in axes)
    if keepdims:
        return b.emit(name, op, [x.name], {"axes": tuple(gaxes), "keep_dims": True}, x.layout)
    kept = [to_graph[i] for i in range(rank) if i not in axes]
    if x.layout == "ncl":
        gaxes = sorted({1, *gaxes})  # the unit height of (1, 1, L, C) goes with them
    if kept == sorted(kept):
        return b.emit(name, op, [x.name], {"axes": tuple(gaxes), "keep_dims": False}, "plain")
    # NCHW with C and H (or W) left: (N, C, L) is the ncl view of a graph tensor (1, 1, L, C)
    v = b.emit(name, op, [x.name], {"axes": tuple(gaxes), "keep_dims": True}, "nchw")
    _, ch, h, _ = v.shape
    if h == 1:  # H reduced: the graph tensor (1, 1, W, C) already is the ncl layout
        return Val(v.name, "ncl", (1, ch, v.shape[3]))
    return b.emit(f"{name}/as_ncl", Reshape.name, [v.name], {"new_shape": (1, 1, h, ch)}, "ncl")
