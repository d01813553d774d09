"""What the data movement records share (slices, splits, packs, gathers, transposes, pads): TFLM's kernels
move bytes without rescaling, so an int8 output carries its input's scale and zero point; the numpy
kernels keep graph axis 0 as the batch of rows; the C kernels walk the input with strides.

Nothing here names an operator.
"""

from __future__ import annotations

import numpy as np

from tinyopt.graph.ir import Graph, Node
from tinyopt.ops import _common as c

MAX_WALK_DIMS = 5  # the strided walk of the C library (kernels/strided_slice.c)


def dtype_of(is_int: bool) -> str:
    return "int8" if is_int else "float32"


def check_same_quant(graph: Graph, node: Node, names, is_int: bool) -> None:
    """Bytes are copied, never rescaled: every int8 tensor of ``names`` must carry the node's first output's
    scale and zero point (what TFLite's converter gives them), else the copy would change their meaning."""
    if not is_int:
        return
    want = c.scalar_qparams(graph, node, node.outputs[0])
    for name in names:
        if name and c.scalar_qparams(graph, node, name) != want:
            c.fail(graph, node, f"tensor '{name}' has other quantization parameters than the output",
                   "give the moved tensors one scale and zero point (tinyopt convert does)")


def axis_of(graph: Graph, node: Node, axis: int, rank: int, what: str = "axis") -> int:
    """A non-negative axis of a rank-``rank`` tensor, or a failure naming the node."""
    if not -rank <= int(axis) < rank:
        c.fail(graph, node, f"{what} {axis} is out of range for a rank-{rank} tensor",
               f"give an {what} in [-{rank}, {rank})")
    return int(axis) % rank


def keeps_batch(graph: Graph, node: Node, ok: bool, what: str) -> None:
    """Graph axis 0 is the batch: an operator that moves or splits it cannot run row by row."""
    if not ok:
        c.unsupported(graph, node, f"{what} changes the batch axis (graph axis 0)",
                      "keep the batch as axis 0 of every activation (batch 1)")


def row_strides(shape) -> list[int]:
    """Row-major element strides of ``shape``.

    >>> row_strides((2, 3, 4))
    [12, 4, 1]
    """
    out, acc = [], 1
    for d in reversed(list(shape)):
        out.append(acc)
        acc *= int(d)
    return out[::-1]


def simplify_walk(counts, steps) -> tuple[list[int], list[int]]:
    """Drop axes of extent 1 and merge an axis into the next when the walk continues without a jump
    (step == next step x next extent), so that a 6-D transpose of a batch-1 tensor fits 5 loops.

    >>> simplify_walk([1, 2, 3, 4], [99, 12, 4, 1])
    ([24], [1])
    >>> simplify_walk([2, 3], [1, 2])
    ([2, 3], [1, 2])
    """
    dims = [(int(n), int(s)) for n, s in zip(counts, steps) if int(n) != 1]
    out: list[tuple[int, int]] = []
    for n, s in dims:
        if out and out[-1][1] == s * n:
            out[-1] = (out[-1][0] * n, s)
        else:
            out.append((n, s))
    if not out:
        out = [(1, 1)]
    return [n for n, _ in out], [s for _, s in out]


def walk_params(graph: Graph, index: int, node: Node, start: int, counts, steps, inplace: bool = False):
    """OpParams of the strided walk kernel: output element (i0..i4), in order, is input element
    ``start + sum(ik * step[k])``. ``inplace``: every input offset is at or after its output offset and
    increases along the walk, so the output may start at or before its dying input."""
    from tinyopt.errors import UnsupportedOpError
    from tinyopt.export.c import params as cp

    counts, steps = simplify_walk(counts, steps)
    if len(counts) > MAX_WALK_DIMS:
        raise UnsupportedOpError(f"a {len(counts)}-D strided copy (after merging contiguous axes)",
                                 path=graph.source, where=cp.where(index, node),
                                 fix=f"keep data movement within {MAX_WALK_DIMS} non-trivial axes")
    pad = MAX_WALK_DIMS - len(counts)
    counts, steps = [1] * pad + counts, [0] * pad + steps
    arrays = {"count": ("int32_t", np.asarray(counts, np.int64)),
              "step": ("int32_t", np.asarray(steps, np.int64))}
    return cp.OpParams("strided_slice", {"start": int(start)}, arrays,
                       inplace="elementwise" if inplace else None)


def check_c_int8(graph: Graph, index: int, node: Node, names) -> None:
    from tinyopt.export.c import params as cp

    cp.check_int8(graph, index, node, [graph.tensors[t] for t in names if t])
