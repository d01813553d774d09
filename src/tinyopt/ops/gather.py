"""GATHER: slices of ``params`` along ``axis`` picked by int32 ``indices`` (TFLM takes no other index type),
with ``batch_dims`` leading axes shared by both, as TFLM's ``Gather``: the output shape is
``params[:axis] + indices[batch_dims:] + params[axis+1:]``.

Two uses: a data tensor with constant indices (a channel permutation, a column pick: the output keeps the
input's scale and zero point, and the C library runs it), and a constant table looked up by data indices
(an embedding: the output takes the table's parameters).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyopt.errors import DataError, UnsupportedOpError
from tinyopt.ops import _common as c
from tinyopt.ops import _movement as mv
from tinyopt.ops._record import CKernel, Op, OpData, Options, QuantRule, register, scalar


@dataclass(kw_only=True)
class GatherData(OpData):
    axis: int
    batch_dims: int
    params_constant: bool
    indices_constant: bool
    out_shape: tuple   # batch 1


def dims(graph, node, fail) -> tuple[int, int]:
    """(axis, batch_dims), non-negative and checked as TFLM's Prepare checks them."""
    p, i = graph.tensors[node.inputs[0]], graph.tensors[node.inputs[1]]
    axis, bd = int(node.attrs.get("axis", 0)), int(node.attrs.get("batch_dims", 0))
    axis = axis + len(p.shape) if axis < 0 else axis
    bd = bd + len(i.shape) if bd < 0 else bd
    if not 0 <= axis < len(p.shape):
        fail(f"axis {node.attrs.get('axis', 0)} is out of range for rank-{len(p.shape)} params",
             "fix the axis")
    if not 0 <= bd <= axis or bd >= len(p.shape) or bd > len(i.shape) or p.shape[:bd] != i.shape[:bd]:
        fail(f"batch_dims {bd} does not fit params {list(p.shape)}, indices {list(i.shape)} and axis {axis}",
             "give batch_dims <= axis over leading axes both share")
    return axis, bd


def gather_rows(params: np.ndarray, coords: np.ndarray, axis: int, batch_dims: int) -> np.ndarray:
    """TFLM's loops (batch, outer, coord → a copy of ``inner`` values) on numpy arrays."""
    axis_size = params.shape[axis]
    batches = int(np.prod(params.shape[:batch_dims], dtype=np.int64))
    outer = int(np.prod(params.shape[batch_dims:axis], dtype=np.int64))
    inner = int(np.prod(params.shape[axis + 1:], dtype=np.int64))
    cs = coords.reshape(batches, -1).astype(np.int64)
    if cs.size and (cs.min() < 0 or cs.max() >= axis_size):
        raise DataError(f"a gather index is outside [0, {axis_size})",
                        fix="give indices within the gathered axis")
    p = params.reshape(batches, outer, axis_size, inner)
    out = p[np.arange(batches)[:, None, None], np.arange(outer)[None, :, None], cs[:, None, :]]
    shape = (*params.shape[:axis], *coords.shape[batch_dims:], *params.shape[axis + 1:])
    return out.reshape(shape)


@register
class Gather(Op):
    name = "GATHER"
    builtin = 36
    options = Options(23, (scalar("axis", 0, "i32"), scalar("batch_dims", 1, "i32")))
    arity = (2, 2)
    int8_version = 2
    quant = QuantRule(output="input")  # a constant table: see quantize
    c = CKernel("gather", "gather_params")
    onnx = ("Gather",)
    torch_modules = ("ChannelShuffle",)
    torch_functions = ("channel_shuffle",)

    def check_dtypes(self, ins, out):
        if ins[1].dtype != "int32":
            return f"gathers with {ins[1].dtype} indices (TFLM takes int32)"
        return super().check_dtypes(ins, out)

    def shape(self, graph, node, fail):
        p, i = graph.tensors[node.inputs[0]], graph.tensors[node.inputs[1]]
        axis, bd = dims(graph, node, fail)
        return (*p.shape[:axis], *i.shape[bd:], *p.shape[axis + 1:])

    def is_integer(self, graph, node):
        return graph.tensors[node.inputs[0]].dtype in ("int8", "int16")

    def prepare(self, graph, node, is_int):
        def fail(msg, fix):
            c.fail(graph, node, msg, fix)

        p, i = graph.tensors[node.inputs[0]], graph.tensors[node.inputs[1]]
        axis, bd = dims(graph, node, fail)
        if i.dtype != "int32":
            c.unsupported(graph, node, f"{i.dtype} indices",
                          "give GATHER int32 indices (TFLM reads no other)")
        if i.data is not None:
            idx = np.asarray(i.data)
            if idx.size and (idx.min() < 0 or idx.max() >= p.shape[axis]):
                fail(f"indices {idx.min()}..{idx.max()} fall outside axis {axis} of size {p.shape[axis]}",
                     "give indices in [0, size)")
        if p.data is None:
            mv.keeps_batch(graph, node, axis != 0, "a gather along axis 0")
        mv.check_same_quant(graph, node, node.inputs[:1], is_int)
        return GatherData(dtype=mv.dtype_of(is_int), axis=axis, batch_dims=bd,
                          params_constant=p.data is not None, indices_constant=i.data is not None,
                          out_shape=graph.tensors[node.outputs[0]].shape)

    def eval(self, p: GatherData, inputs):
        params, coords = inputs
        if not p.params_constant and p.indices_constant and p.batch_dims == 0:
            return gather_rows(params, coords, p.axis, 0)  # the rows are part of the outer loop
        n = max(a.shape[0] if not const else 1 for a, const in ((params, p.params_constant),
                                                                 (coords, p.indices_constant)))
        rows = [gather_rows(params if p.params_constant else params[r: r + 1],
                            coords if p.indices_constant else coords[r: r + 1], p.axis, p.batch_dims)
                for r in range(n)]
        return np.concatenate(rows, axis=0)

    def quantize(self, q, index, node):
        """A data input: the output keeps its parameters. A constant table: quantized from its own range,
        and the output takes the table's parameters."""
        params, coords = node.inputs[:2]
        src = q.src.tensors
        if src[params].constant:
            t = q.constant(params, index, node)
            qp = q.choose(float(np.min(t.data)), float(np.max(t.data)))
            new_params = q.activation_constant(params, qp, index, node)
        else:
            qp, new_params = q.qp[params], q.rename[params]
        q.qp[node.outputs[0]] = qp
        new_coords = q.copy_constant(coords, index, node) if src[coords].constant else q.rename[coords]
        return q.emit(node, [new_params, new_coords])

    def pack_c(self, graph, index, node):
        from tinyopt.export.c import params as cp

        p = self.prepare(graph, node, True)
        x, idx = graph.tensors[node.inputs[0]], graph.tensors[node.inputs[1]]
        if p.params_constant or not p.indices_constant:
            raise UnsupportedOpError("a GATHER whose indices are computed at run time (or "
                                     "whose table is constant)",
                                     path=graph.source, where=cp.where(index, node),
                                     fix="the C library gathers from an activation with constant indices")
        mv.check_c_int8(graph, index, node, [node.inputs[0], *node.outputs])
        s = x.shape
        ints = dict(batches=int(np.prod(s[:p.batch_dims], dtype=np.int64)),
                    outer=int(np.prod(s[p.batch_dims:p.axis], dtype=np.int64)), axis_size=int(s[p.axis]),
                    coords=int(np.prod(idx.shape[p.batch_dims:], dtype=np.int64)),
                    inner=int(np.prod(s[p.axis + 1:], dtype=np.int64)))
        return cp.OpParams("gather", ints, {"index": ("int32_t", np.asarray(idx.data, np.int64).ravel())})

    # -- doors
    def from_onnx(self, cv, node, name, a, ins):
        x = cv.val(ins[0])
        idx = np.asarray(cv.const(ins[1], "indices")).astype(np.int64)
        return build(cv.b, name, x, idx, int(a.get("axis", 0)))

    def from_torch_module(self, cv, n, m, name, out_shape):
        return shuffle(cv.b, name, cv.val(n.args[0]), int(m.groups))

    def from_torch_function(self, cv, n, key, name, out_shape):
        return shuffle(cv.b, name, cv.val(n.args[0]), int(cv.arg(n)(1, "groups")))


def build(b, name: str, x, indices: np.ndarray, axis: int):
    """A framework gather of constant ``indices`` along framework ``axis`` of a value (negative indices
    count from the end, as in ONNX and PyTorch). A 1-D index list along an axis the layout maps keeps the
    layout; the batch of a batch-one value (axis 0: every index 0) or indices of another rank go through
    the framework's own order."""
    from tinyopt.graph.torch_import import graph_axis
    from tinyopt.ops import reshape

    rank = len(x.shape)
    axis = int(axis) % rank
    size = x.shape[axis]
    if indices.size and (indices.min() < -size or indices.max() >= size):
        b.unsupported(f"gather indices {indices.min()}..{indices.max()} outside axis {axis} of size {size}")
    idx = np.where(indices < 0, indices + size, indices).astype(np.int32)
    if idx.ndim == 0:  # one index: the axis goes away (a slice of one, then a reshape)
        y = build(b, name, x, idx.reshape(1), axis)
        return reshape.build(b, f"{name}/drop", y, tuple(d for k, d in enumerate(y.shape) if k != axis))
    if idx.ndim == 1 and np.array_equal(idx, np.arange(size)):
        return x
    if x.layout == "grouped":
        b.unsupported(f"a gather on axis {axis} of channels viewed as groups {list(x.shape)}",
                      "reshape them back to (N, C, H, W) first")
    lift = graph_axis(axis, x.layout, rank) == 0 or (idx.ndim != 1
                                                     and x.layout not in ("plain", "nchw", "ncl"))
    if x.permuted or lift or (idx.ndim != 1 and x.layout != "plain"):
        x = reshape.framework_order(b, f"{name}/order", x, lift=lift)  # in the framework's own order
    ax = graph_axis(axis, x.layout, rank)
    ins = [x.name, b.const(f"{name}/indices", idx, "int32")]
    return b.emit(name, Gather.name, ins, {"axis": ax, "batch_dims": 0}, x.layout)


def shuffle_indices(channels: int, groups: int) -> np.ndarray:
    """PyTorch's channel shuffle (view (g, C/g), transpose, flatten) as the input channel of each output.

    >>> shuffle_indices(6, 2).tolist()
    [0, 3, 1, 4, 2, 5]
    """
    return np.arange(channels).reshape(groups, channels // groups).T.ravel()


def shuffle(b, name: str, x, groups: int):
    """``nn.ChannelShuffle`` / ``F.channel_shuffle``: a GATHER of the channels."""
    if x.layout != "nchw" or x.shape[1] % groups:
        b.unsupported(f"a channel shuffle of {list(x.shape)} in {groups} groups",
                      "shuffle (N, C, H, W) tensors")
    return build(b, name, x, shuffle_indices(x.shape[1], groups), 1)


def unpermute(b, name: str, x):
    """A flattened channels-first value (graph element i is framework element perm[i]) in the framework's
    own order: a GATHER of the positions; anything else unchanged."""
    from tinyopt.graph.torch_import import Val

    if not x.permuted:
        return x
    return build(b, name, Val(x.name, "plain", x.shape), np.argsort(x.perm), 1)
