"""SPLIT: ``num_splits`` equal parts of the input along ``axis`` (a constant int32 operand that comes
*first*: inputs are (axis, input)), as TFLM's ``Split``: each part is a run of bytes per outer index.

The framework doors (``torch.chunk``/``split``, ONNX ``Split``) build through ``build``: SPLIT when the parts
are equal, SPLIT_V otherwise. In the C library both are one kernel (kernels/split.c) that copies each
output's run in turn; it takes its operands as pointer lists.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyopt.ops import _common as c
from tinyopt.ops import _movement as mv
from tinyopt.ops._record import CKernel, Op, OpData, Options, register, scalar


@dataclass(kw_only=True)
class SplitData(OpData):
    axis: int      # non-negative graph axis
    sizes: tuple   # each output's extent along the axis


class SplitLike(Op):
    """What SPLIT and SPLIT_V share: the data operand's position, the numpy kernel and the C packing."""

    outputs = (1, 1 << 16)
    data_input = 0
    int8_version = 2

    def data(self, graph, node):
        return graph.tensors[node.inputs[self.data_input]]

    def axis_value(self, graph, node, fail) -> int:
        raise NotImplementedError

    def sizes(self, graph, node, fail, axis: int) -> list[int]:
        raise NotImplementedError

    def plan(self, graph, node, fail) -> tuple[int, list[int]]:
        x = self.data(graph, node)
        rank = len(x.shape)
        axis = self.axis_value(graph, node, fail)
        if not -rank <= axis < rank:
            fail(f"axis {axis} is out of range for a rank-{rank} input", f"give an axis in [-{rank}, {rank})")
        axis %= rank
        sizes = self.sizes(graph, node, fail, axis)
        if len(sizes) != len(node.outputs) or sum(sizes) != x.shape[axis] or min(sizes) <= 0:
            fail(f"splits axis {axis} of size {x.shape[axis]} into {sizes} for {len(node.outputs)} outputs",
                 "give positive parts that add up to the axis, one per output")
        return axis, sizes

    def shapes(self, graph, node, fail):
        x = self.data(graph, node)
        axis, sizes = self.plan(graph, node, fail)
        return [tuple(s if k == axis else d for k, d in enumerate(x.shape)) for s in sizes]

    def check_dtypes(self, ins, out):
        x = ins[self.data_input]
        return None if x.dtype == out.dtype else f"splits {x.dtype} into {out.dtype}"

    def version(self, graph, node):
        return self.int8_version if self.data(graph, node).dtype == "int8" else 1

    def is_integer(self, graph, node):
        return self.data(graph, node).dtype in ("int8", "int16")

    def prepare(self, graph, node, is_int):
        def fail(msg, fix):
            c.fail(graph, node, msg, fix)

        axis, sizes = self.plan(graph, node, fail)
        mv.keeps_batch(graph, node, axis != 0, "the split")
        mv.check_same_quant(graph, node, [node.inputs[self.data_input], *node.outputs], is_int)
        return SplitData(dtype=mv.dtype_of(is_int), axis=axis, sizes=tuple(sizes))

    def eval(self, p: SplitData, inputs):
        x = inputs[self.data_input]
        parts = np.split(x, np.cumsum(p.sizes)[:-1], axis=p.axis)
        return parts if len(parts) > 1 else parts[0]

    def quantize(self, q, index, node):
        """Every part keeps the input's scale and zero point; the axis and sizes are copied."""
        params = q.qp[node.inputs[self.data_input]]
        for out in node.outputs:
            q.qp[out] = params
        ins = [q.rename[t] if k == self.data_input else q.copy_constant(t, index, node)
               for k, t in enumerate(node.inputs)]
        return q.emit(node, ins)

    def pack_c(self, graph, index, node):
        p = self.prepare(graph, node, True)
        x = self.data(graph, node)
        return pack_runs(graph, index, node, "split", x.shape, p.axis, p.sizes)


def pack_runs(graph, index, node, kernel: str, shape, axis: int, extents):
    """Parameters of the run-copy kernels (split, concatenation): per outer index, one run per part of
    ``extent x inner`` bytes."""
    from tinyopt.export.c import params as cp

    moved = [t for t in (*node.inputs, *node.outputs) if not graph.tensors[t].constant]
    mv.check_c_int8(graph, index, node, moved)
    outer = int(np.prod(shape[:axis], dtype=np.int64))
    inner = int(np.prod(shape[axis + 1:], dtype=np.int64))
    runs = np.asarray([e * inner for e in extents], np.int64)
    return cp.OpParams(kernel, {"outer": outer, "parts": len(runs)}, {"run": ("int32_t", runs)},
                       signature="lists")


@register
class Split(SplitLike):
    name = "SPLIT"
    builtin = 49
    options = Options(35, (scalar("num_splits", 0, "i32"),))
    arity = (2, 2)
    data_input = 1
    c = CKernel("split", "split_params")
    onnx = ("Split", "SplitToSequence", "SequenceAt")
    torch_functions = ("chunk", "split")

    def axis_value(self, graph, node, fail):
        t = c.in_tensor(graph, node, 0)
        if t is None or t.data is None or t.size != 1:
            fail("has no constant scalar axis", "give SPLIT its axis as a constant int32 first input")
        return int(np.asarray(t.data).ravel()[0])

    def sizes(self, graph, node, fail, axis):
        d = self.data(graph, node).shape[axis]
        n = int(node.attrs.get("num_splits", len(node.outputs)) or len(node.outputs))
        if n != len(node.outputs) or d % n:
            fail(f"num_splits {n} does not divide axis {axis} of size {d} into {len(node.outputs)} outputs",
                 "give as many equal parts as outputs")
        return [d // n] * n

    # -- doors
    def from_onnx(self, cv, node, name, a, ins):
        if node.op_type == "SequenceAt":  # one part of a SplitToSequence
            seq = cv.val(ins[0])
            if not isinstance(seq, Parts):
                cv.b.unsupported("SequenceAt of a sequence that is not a SplitToSequence's")
            part = seq.vals[int(np.asarray(cv.const(ins[1], "position")).ravel()[0])]
            if part is None:
                cv.b.unsupported("SequenceAt of an empty part of a split")
            return part
        x = cv.val(ins[0])
        axis = int(a.get("axis", 0))
        if node.op_type == "SplitToSequence":
            return Parts(to_sequence(cv, name, x, axis, a, ins))
        n_out = len(node.output)
        if cv.opset < 13 and "split" in a:
            sizes = [int(v) for v in a["split"]]
        elif len(ins) > 1 and ins[1]:
            sizes = [int(v) for v in np.asarray(cv.const(ins[1], "split")).ravel()]
        else:
            d = x.shape[axis]
            n = int(a.get("num_outputs", n_out))
            sizes = [-(-d // n)] * (n - 1) + [d - -(-d // n) * (n - 1)]  # ONNX: the last part may be smaller
        return build(cv.b, name, x, sizes, axis)

    def from_torch_function(self, cv, n, key, name, out_shape):
        arg = cv.arg(n)
        x = cv.val(n.args[0])
        dim = int(arg(2, "dim", 0)) % len(x.shape)
        sizes = [int(s[dim]) for s in out_shape]  # the traced parts (chunk may give fewer than asked)
        return build(cv.b, name, x, sizes, dim)


@dataclass
class Parts:
    """An ONNX sequence of tensors (SplitToSequence's one output), which SequenceAt indexes."""

    vals: list


def to_sequence(cv, name: str, x, axis: int, a: dict, ins: list) -> list:
    """SplitToSequence: parts of a constant size (the last one smaller), of listed sizes, or (no split)
    every element, its axis dropped unless keepdims."""
    from tinyopt.ops.reshape import build as reshape

    d = x.shape[axis % len(x.shape)]
    if len(ins) > 1 and ins[1]:
        split = np.asarray(cv.const(ins[1], "split")).astype(np.int64)
        sizes = [int(v) for v in split.ravel()] if split.ndim else [int(split)] * (d // int(split)) + (
            [d % int(split)] if d % int(split) else [])
        vals = iter(build(cv.b, name, x, [n for n in sizes if n], axis))
        return [next(vals) if n else None for n in sizes]  # an empty part (chunk's exports end in one)
    parts = build(cv.b, name, x, [1] * d, axis)
    if int(a.get("keepdims", 1)):
        return parts
    ax = axis % len(x.shape)
    return [reshape(cv.b, f"{name}/drop{k}", v, tuple(s for j, s in enumerate(v.shape) if j != ax))
            for k, v in enumerate(parts)]


def build(b, name: str, x, sizes, axis: int):
    """A framework split of ``x`` along framework ``axis`` into parts of ``sizes``: a list of values."""
    from tinyopt.graph.torch_import import graph_axis
    from tinyopt.ops.gather import unpermute
    from tinyopt.ops.split_v import SplitV

    rank = len(x.shape)
    axis = int(axis) % rank
    if x.layout == "grouped":
        b.unsupported(f"a split of channels viewed as groups {list(x.shape)}",
                      "reshape back to (N, C, H, W) first")
    x = unpermute(b, f"{name}/order", x)  # a flattened feature map: in the framework's order first
    sizes = [int(s) for s in sizes]
    if graph_axis(axis, x.layout, rank) == 0 and len(sizes) > 1:  # the graph's batch axis stays whole
        b.unsupported("a split of the batch axis", "keep the batch axis whole")
    if sum(sizes) != x.shape[axis] or min(sizes) <= 0:
        b.unsupported(f"a split of axis {axis} (size {x.shape[axis]}) into {sizes}")
    if len(sizes) == 1:
        return [x]
    ax = graph_axis(axis, x.layout, rank)
    if len(set(sizes)) == 1:
        ins = [b.const(f"{name}/axis", np.asarray([ax], np.int32), "int32"), x.name]
        return b.emit(name, Split.name, ins, {"num_splits": len(sizes)}, x.layout, outputs=len(sizes))
    ins = [x.name, b.const(f"{name}/sizes", np.asarray(sizes, np.int32), "int32"),
           b.const(f"{name}/axis", np.asarray([ax], np.int32), "int32")]
    return b.emit(name, SplitV.name, ins, {"num_splits": len(sizes)}, x.layout, outputs=len(sizes))
