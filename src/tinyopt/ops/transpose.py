"""TRANSPOSE: permute the axes by ``perm`` (an int32 constant operand), as TFLM's ``Transpose`` (1-D to
6-D). Moving bytes only: an int8 output keeps its input's scale and zero point.

The framework doors first try to absorb a transpose into the layout bookkeeping (an NHWC input viewed as
NCHW, or back): that costs nothing at run time. Anything else becomes this operator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyopt.ops import _common as c
from tinyopt.ops import _int16
from tinyopt.ops._record import CKernel, Op, OpData, Options, QuantRule, register

MAX_RANK = 6


@dataclass(kw_only=True)
class TransposeData(OpData):
    perm: tuple  # output axis i is input axis perm[i]


def perm_of(graph, node) -> list[int]:
    return c.const_ints(graph, node, 1, "permutation")


@register
class Transpose(Op):
    name = "TRANSPOSE"
    builtin = 39
    options = Options(26)
    arity = (2, 2)
    int8_version = 2
    quant = QuantRule(output="input", int16=True)  # TFLM's TRANSPOSE moves int16 values too
    c = CKernel("strided_slice", "strided_slice_params")
    onnx = ("Transpose",)
    torch_functions = ("permute", "transpose")

    def read_tflite(self, r, ins, out):
        perm = r.const_int(ins[1], "perm").ravel()
        rank = len(ins[0].shape)
        if sorted(perm.tolist()) != list(range(rank)) or rank > MAX_RANK:
            r.fail(f"perm {perm.tolist()} is not a permutation of the {rank} axes (at most {MAX_RANK})")
        return {}

    def shape(self, graph, node, fail):
        x = graph.tensors[node.inputs[0]]
        perm = perm_of(graph, node)
        if sorted(perm) != list(range(len(x.shape))):
            fail(f"perm {perm} is not a permutation of the {len(x.shape)} axes", "give each axis once")
        return tuple(x.shape[p] for p in perm)

    def is_identity(self, graph, node):
        t = graph.tensors[node.inputs[1]] if len(node.inputs) > 1 and node.inputs[1] else None
        return (t is not None and t.data is not None
                and list(np.asarray(t.data).ravel()) == list(range(t.size)))

    def prepare(self, graph, node, is_int):
        x = graph.tensors[node.inputs[0]]
        perm = perm_of(graph, node)
        if len(x.shape) > MAX_RANK:
            c.unsupported(graph, node, f"a rank-{len(x.shape)} transpose",
                          f"TFLM transposes up to {MAX_RANK}-D")
        if is_int and (c.scalar_qparams(graph, node, node.inputs[0])
                       != c.scalar_qparams(graph, node, node.outputs[0])):
            c.fail(graph, node, "input and output quantization differ",
                   "give both the same scale and zero point")
        return TransposeData(dtype=_int16.int_dtype(graph, node, is_int), perm=tuple(perm))

    def eval(self, p: TransposeData, inputs):
        x = inputs[0]
        n = x.shape[0]
        rows = x.reshape(n, 1, *x.shape[1:])  # each row is a batch-1 graph tensor
        y = np.transpose(rows, [0, *(a + 1 for a in p.perm)])
        return y.reshape(n, *y.shape[2:]) if y.shape[1] == 1 else y.reshape(n, -1)

    def pack_c(self, graph, index, node):
        """A strided walk of the input: output axis k steps through input axis perm[k] (size-1 axes dropped
        and contiguous ones merged, so up to 5 axes that move remain)."""
        from tinyopt.ops import _movement as mv

        p = self.prepare(graph, node, True)
        mv.check_c_int8(graph, index, node, [node.inputs[0], *node.outputs])
        x = graph.tensors[node.inputs[0]]
        strides = mv.row_strides(x.shape)
        return mv.walk_params(graph, index, node, 0, [x.shape[a] for a in p.perm],
                              [strides[a] for a in p.perm])

    # -- doors
    def from_onnx(self, cv, node, name, a, ins):
        x = cv.val(ins[0])
        perm = [int(v) for v in a.get("perm", list(range(len(x.shape)))[::-1])]
        return build(cv.b, name, x, perm)

    def from_torch_function(self, cv, n, key, name, out_shape):
        x = cv.val(n.args[0])
        rank = len(x.shape)
        if key == "transpose":
            arg = cv.arg(n)
            d0, d1 = arg(1, "dim0") % rank, arg(2, "dim1") % rank
            perm = list(range(rank))
            perm[d0], perm[d1] = perm[d1], perm[d0]
        else:
            dims = n.args[1:] if len(n.args) > 2 or not isinstance(n.args[1], (tuple, list)) else n.args[1]
            perm = [int(d) % rank for d in dims]
        return build(cv.b, name, x, perm)


def as_nchw(b, name: str, x):
    """A 4-D value held in the framework's own (N, C, H, W) order (after a reshape or a transpose that
    kept it so) as the NHWC graph tensor a convolution reads: one TRANSPOSE, viewed as (N, C, H, W)."""
    from tinyopt.graph.torch_import import Val

    return Val(build(b, name, x, [0, 2, 3, 1], view=False).name, "nchw", tuple(x.shape))


def build(b, name: str, x, perm: list[int], view: bool = True):
    """A framework transpose: a change of view when it only converts between NHWC and NCHW, or
    permutes the groups of a grouped channel view (a channel shuffle: bookkeeping until the view is
    reshaped back), else one TRANSPOSE of the graph tensor (the permutation carried over to graph axes; a
    RESHAPE when only unit axes move). A 3-D or 4-D result is channels-first (ncl, nchw) where that moves no
    data (a conv may follow; a matmul takes ncl as the transpose it is); others are in the framework's order:
    plain, or unbatched when the leading axis is not a batch of one (the batch moved inward, attention's
    (3, N, heads, T, d)). ``view=False``: always the framework's order (no NHWC/NCHW view, no ncl or nchw)."""
    from tinyopt.graph.torch_import import Val, batched, graph_axis, layout_view, to_graph_shape
    from tinyopt.ops.gather import unpermute
    from tinyopt.ops.reshape import Reshape

    perm = [int(p) % len(x.shape) for p in perm]
    if sorted(perm) != list(range(len(x.shape))):
        return b.unsupported(f"Transpose with perm {perm} of a rank-{len(x.shape)} tensor",
                             "give each axis once")
    if view:
        v = layout_view(x, perm)
        if v is not None:
            return v
    if x.layout == "grouped":
        r = len(x.shape)
        if perm[0] != 0 or perm[-2:] != [r - 2, r - 1]:
            return b.unsupported(f"Transpose with perm {perm} of channels viewed as groups {list(x.shape)}",
                                 "permute only the channel groups (a channel shuffle)")
        groups = [p - 1 for p in perm[1:-2]]
        flat = np.arange(int(np.prod(x.shape[1:-2]))).reshape(x.shape[1:-2])
        new_index = np.argsort(flat.transpose(groups).ravel())  # old framework channel -> new
        old = np.arange(flat.size) if x.perm is None else x.perm
        return Val(x.name, "grouped", tuple(x.shape[p] for p in perm), new_index[old])
    x = unpermute(b, f"{name}/order", x)
    rank = len(x.shape)
    shape = tuple(x.shape[p] for p in perm)
    src, g_in = x.name, b.g.tensors[x.name].shape
    axes = [graph_axis(k, x.layout, rank) for k in range(rank)]  # framework axis -> graph axis

    def sequence(layout: str) -> list[int]:
        """The input graph axes the output's graph axes come from (its unit axes left out)."""
        return [axes[perm[j]] for j in _graph_order(layout, rank) if j is not None]

    def moves(layout: str) -> bool:
        long = [a for a in sequence(layout) if g_in[a] != 1]
        return long != sorted(long)

    layout = batched(shape)
    if layout == "plain" and view and rank in (3, 4):  # channels-first where that costs nothing (a conv
        first = "ncl" if rank == 3 else "nchw"        # may follow); ncl also when both move (a matmul
        if not moves(first) or (rank == 3 and moves("plain")):  # takes it as the transpose it is)
            layout = first
    if moves(layout):
        units = [a for a in range(len(g_in)) if a not in axes]  # graph axes of size 1 the framework lacks
        if g_in[(units + sequence(layout))[0]] != 1:  # a unit axis in front, to stay the batch
            src = b.emit(f"{name}/lift", Reshape.name, [src], {"new_shape": (1, *g_in)}, "plain").name
            g_in, axes, units = (1, *g_in), [a + 1 for a in axes], [0, *(a + 1 for a in units)]
        order = units + sequence(layout)
        if len(order) > MAX_RANK:
            return b.unsupported(f"Transpose with perm {perm} of a {x.layout} tensor {list(x.shape)} (a rank-"
                                 f"{len(order)} graph transpose)",
                                 f"TFLM transposes up to {MAX_RANK}-D tensors")
        const = b.const(f"{name}/perm", np.asarray(order, np.int32), "int32")
        src = b.emit(name, Transpose.name, [src, const], {}, "plain").name
    target = to_graph_shape(shape, layout)
    if b.g.tensors[src].shape != target:
        src = b.emit(f"{name}/shape" if src != x.name else name, Reshape.name, [src], {"new_shape": target},
                     "plain").name
    return Val(src, layout, shape)


def _graph_order(layout: str, rank: int) -> list:
    """A layout's graph axes as framework axes (None: a unit axis the framework lacks).

    >>> _graph_order("batch@2", 4), _graph_order("ncl", 3)
    ([2, 0, 1, 3], [0, None, 2, 1])
    """
    from tinyopt.graph.torch_import import batch_at

    if layout == "unbatched":
        return [None, *range(rank)]
    if layout == "ncl":
        return [0, None, 2, 1]
    if layout == "nchw":
        return [0, 2, 3, 1]
    k = batch_at(layout)
    return [k, *(a for a in range(rank) if a != k)]
