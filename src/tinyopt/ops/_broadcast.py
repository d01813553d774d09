"""What the broadcasting binary operators without a fused activation share (MAXIMUM, MINIMUM,
SQUARED_DIFFERENCE): NumPy-style shapes, operands aligned for the batched runtime, the C kernels' walk
over the output, and the framework doors (either operand may be a constant, both may be values).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyopt.errors import UnsupportedOpError
from tinyopt.ops import _common as c
from tinyopt.ops._record import Op, OpData

WALK_RANK = 4  # the C kernels walk the output as at most 4 merged dimensions


@dataclass(kw_only=True)
class BroadcastData(OpData):
    out_rank: int
    constant: tuple       # (input 1 is a constant, input 2 is a constant): how the runtime aligns ranks


class Broadcasting(Op):
    """Base record: two data inputs broadcast against each other (TFLite's rules: align on the right)."""

    arity = (2, 2)
    data_inputs = 2
    ops_per_element = 1
    int8_version = 2

    def shape(self, graph, node, fail):
        a, b = graph.tensors[node.inputs[0]], graph.tensors[node.inputs[1]]
        try:
            return tuple(np.broadcast_shapes(a.shape, b.shape))
        except ValueError:
            fail(f"cannot broadcast {list(a.shape)} with {list(b.shape)}",
                 "give operands whose shapes broadcast")

    def broadcast_fields(self, graph, node) -> dict:
        ins = graph.node_inputs(node)
        return dict(out_rank=len(graph.tensors[node.outputs[0]].shape),
                    constant=tuple(t.data is not None for t in ins[:2]))


def aligned(p: BroadcastData, inputs) -> list[np.ndarray]:
    """Both operands at the output's rank for numpy broadcasting over a batch: a constant gets leading unit
    axes (TFLite aligns shapes on the right); a runtime array (N, *shape[1:]) keeps N first and gets its
    unit axes after it, since each row is a graph tensor of batch 1."""
    out = []
    for x, const in zip(inputs[:2], p.constant):
        x = np.asarray(x)
        missing = p.out_rank - x.ndim
        if missing > 0:
            x = x.reshape((1,) * missing + x.shape) if const else x.reshape(x.shape[:1] + (1,) * missing
                                                                            + x.shape[1:])
        out.append(x)
    return out


def broadcast_walk(out_shape, a_shape, b_shape) -> tuple[list[int], list[int], list[int]] | None:
    """The output as WALK_RANK (size, stride in input 1, stride in input 2) dimensions, row-major, stride 0
    where an input is broadcast; unit axes dropped, neighbours with the same broadcast pattern merged,
    leading unit dimensions added. None when more dimensions remain.

    >>> broadcast_walk((1, 2, 3, 4), (1, 2, 3, 4), (1, 1, 1, 4))  # a per-channel operand
    ([1, 1, 6, 4], [0, 0, 4, 1], [0, 0, 0, 1])
    >>> broadcast_walk((1, 2, 3), (1, 2, 1), (3,))
    ([1, 1, 2, 3], [0, 0, 1, 0], [0, 0, 0, 1])
    """
    rank = len(out_shape)

    def strides(shape):
        shape = (1,) * (rank - len(shape)) + tuple(shape)
        step = [int(np.prod(shape[i + 1:], dtype=np.int64)) for i in range(rank)]
        return [0 if shape[i] == 1 else step[i] for i in range(rank)]

    sa, sb = strides(a_shape), strides(b_shape)
    dims: list[list[int]] = []
    for i, d in enumerate(out_shape):
        if d == 1:
            continue
        if dims and (sa[i] == 0) == (dims[-1][1] == 0) and (sb[i] == 0) == (dims[-1][2] == 0):
            dims[-1] = [dims[-1][0] * d, sa[i], sb[i]]  # contiguous with the previous: one longer walk
        else:
            dims.append([int(d), sa[i], sb[i]])
    if len(dims) > WALK_RANK:
        return None
    dims = [[1, 0, 0]] * (WALK_RANK - len(dims)) + dims
    return [d[0] for d in dims], [d[1] for d in dims], [d[2] for d in dims]


def pack_broadcast(rec, graph, index, node, ints: dict, kind: str):
    """OpParams for a broadcasting C kernel (signature ``lists``: the non-constant operands): the walk,
    a constant operand as an array (``input1``/``input2``), in place only without broadcasting."""
    from tinyopt.export.c import params as cp

    a, b = graph.tensors[node.inputs[0]], graph.tensors[node.inputs[1]]
    y = graph.tensors[node.outputs[0]]
    cp.check_int8(graph, index, node, [a, b, y])
    walk = broadcast_walk(y.shape, a.shape, b.shape)
    if walk is None:
        raise UnsupportedOpError(f"{node.op} of {list(a.shape)} and {list(b.shape)} needs more than "
                                 f"{WALK_RANK} broadcast dimensions", path=graph.source,
                                 where=cp.where(index, node), fix="broadcast over fewer, or adjacent, axes")
    dims, s1, s2 = walk
    arrays = {"dims": ("int32_t", np.array(dims)), "strides1": ("int32_t", np.array(s1)),
              "strides2": ("int32_t", np.array(s2))}
    for key, t in (("input1", a), ("input2", b)):
        if t.data is not None:
            arrays[key] = ("int8_t", np.asarray(t.data, np.int8).reshape(-1))
    same = a.shape == b.shape == y.shape and a.data is None and b.data is None
    return cp.OpParams(kind, ints, arrays, signature="lists", optional=("input1", "input2"),
                       inplace="elementwise" if same else None)


# -- doors ------------------------------------------------------------------------------------------

def constant_operand(b, name: str, x, value) -> str:
    """A float constant that broadcasts onto framework value ``x``, in the graph's layout."""
    cst = np.asarray(value, dtype=np.float32)
    if cst.size == 1:
        return b.const(f"{name}/const", cst.reshape(1))
    if cst.ndim > len(x.shape) or x.permuted:
        b.unsupported(f"a constant of shape {list(cst.shape)} against a value of shape {list(x.shape)}",
                      "give the constant the value's rank, or a single number")
    cst = cst.reshape((1,) * (len(x.shape) - cst.ndim) + cst.shape)
    from tinyopt.graph.torch_import import to_graph_array

    return b.const(f"{name}/const", np.ascontiguousarray(to_graph_array(cst, x.layout)))


def build(b, name: str, op: str, a, other, attrs: dict | None = None):
    """``op`` of a framework value and another value or a constant (float / array), in either order
    (``a`` may be the constant when ``other`` is the value)."""
    from tinyopt.graph.torch_import import Val

    if not isinstance(a, Val):
        x = other
        ins = [constant_operand(b, name, x, a), x.name]
    elif not isinstance(other, Val):
        x = a
        ins = [a.name, constant_operand(b, name, a, other)]
    else:
        from tinyopt.ops.reshape import common_layout

        a, other = common_layout(b, name, a, other)
        x = a
        ins = [a.name, other.name]
    return b.emit(name, op, ins, dict(attrs or {}), x.layout, x.perm)


def onnx_operands(cv, ins: list[str]) -> list:
    """ONNX operands as framework values, or float constants (numpy) for initializers."""
    out = []
    for t in ins:
        v = cv.env.get(t)
        out.append(v if v is not None else cv.const(t, "operand").astype(np.float32))
    return out


def check_qparams_equal(graph, node) -> tuple:
    """(scale, zero point) shared by both int8 inputs and the output (TFLM's MAXIMUM/MINIMUM compare raw
    values, which is right only then)."""
    params = [c.scalar_qparams(graph, node, t) for t in (node.inputs[0], node.inputs[1], node.outputs[0])]
    if len(set(params)) != 1:
        c.fail(graph, node, f"int8 {node.op} operands and output are quantized differently {params}",
               "give both inputs and the output one scale and zero point (convert does)")
    return params[0]
