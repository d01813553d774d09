"""STRIDED_SLICE: every ``strides[k]``-th element of ``[begin[k], end[k])`` on each axis (int32 constant
operands), with TFLite's masks: ``begin_mask``/``end_mask`` bits take the whole axis from its start/end,
``shrink_axis_mask`` bits keep one element and drop the axis. TFLM (``StridedSlice``, 1-D to 4-D) ignores
``ellipsis_mask`` and ``new_axis_mask`` and reads no ``offset``: a node that sets them is refused.

The framework doors (``x[:, :c]``, ``narrow``, ONNX ``Slice`` on data) build through ``build``: SLICE when
every step is 1, else this operator. In the C library it is a strided walk of the input.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyopt.ops import _common as c
from tinyopt.ops import _int16
from tinyopt.ops import _movement as mv
from tinyopt.ops._record import CKernel, Op, OpData, Options, QuantRule, register, scalar

MAX_RANK = 4  # TFLM's strided_slice.cc kMaxDim
INT_MIN, INT_MAX = -(2**31), 2**31 - 1


@dataclass(kw_only=True)
class StridedSliceData(OpData):
    starts: tuple     # per axis, after masks, negative indices and clamping (TFLM's StartForAxis)
    stops: tuple      # per axis, exclusive (-1 for a backward walk that reaches index 0)
    strides: tuple
    shrink: tuple     # axes dropped from the output shape


def _clamp(v: int, lo: int, hi: int) -> int:
    return hi if v > hi else lo if v < lo else v


def axis_range(size: int, begin: int, end: int, stride: int, begin_bit: bool, end_bit: bool,
               shrink: bool) -> tuple[int, int]:
    """(start, stop) of one axis exactly as TFLM's reference computes them (strided_slice_logic.h).

    >>> axis_range(10, -3, 0, 1, False, True, False), axis_range(5, 0, 0, -1, True, True, False)
    ((7, 10), (4, -1))
    """
    start = begin + size if begin < 0 else begin
    start = _clamp(start, 0, size) if stride > 0 else _clamp(start, -1, size - 1)
    if begin_bit:
        start = 0 if stride > 0 else size - 1
    if shrink:
        return start, start + 1
    stop = end + size if end < 0 else end
    stop = _clamp(stop, 0, size) if stride > 0 else _clamp(stop, -1, size - 1)
    if end_bit:
        stop = size if stride > 0 else -1
    return start, stop


def extent(start: int, stop: int, stride: int) -> int:
    """Elements walked from start towards stop: TFLM's ceil((end - begin) / stride), at least 0."""
    return max(0, -(-(stop - start) // stride))


def slice_plan(graph, node, fail) -> StridedSliceData:
    """Starts, stops, strides and shrunk axes of a node (``fail(msg, fix)`` on bad operands)."""
    x = graph.tensors[node.inputs[0]]
    rank = len(x.shape)
    ops_ = [c.in_tensor(graph, node, k) for k in (1, 2, 3)]
    begin, end, strides = (np.asarray(t.data).astype(np.int64).ravel().tolist() for t in ops_)
    if not len(begin) == len(end) == len(strides) == rank:
        fail(f"begin/end/strides have {len(begin)}/{len(end)}/{len(strides)} values for a rank-{rank} input",
             "give one value per input axis")
    a = node.attrs
    if a.get("ellipsis_mask", 0) or a.get("new_axis_mask", 0) or a.get("offset", False):
        fail("sets ellipsis_mask, new_axis_mask or offset, which TFLM's kernel does not read",
             "re-export without ellipsis or new axes (TFLite's converter folds them into the shape)")
    if any(s == 0 for s in strides):
        fail(f"strides {strides} contain 0", "give non-zero strides")
    starts, stops, shrink = [], [], []
    for k, size in enumerate(x.shape):
        bit = 1 << k
        sh = bool(a.get("shrink_axis_mask", 0) & bit)
        s0, s1 = axis_range(size, int(begin[k]), int(end[k]), int(strides[k]),
                            bool(a.get("begin_mask", 0) & bit), bool(a.get("end_mask", 0) & bit), sh)
        if sh and not 0 <= s0 < size:
            fail(f"shrinks axis {k} at index {begin[k]}, outside its size {size}",
                 "give an index inside the axis")
        if sh and strides[k] < 0:  # TFLM walks from start towards start + 1: nothing, the output is unwritten
            fail(f"shrinks axis {k} with stride {strides[k]}", "give a shrunk axis stride 1")
        starts.append(s0)
        stops.append(s1)
        if sh:
            shrink.append(k)
    return StridedSliceData(dtype="float32", starts=tuple(starts), stops=tuple(stops),
                            strides=tuple(int(s) for s in strides), shrink=tuple(shrink))


def walk(p, x: np.ndarray) -> np.ndarray:
    """The slice of the (N, ...) batch: graph axis 0 is the rows, already checked to be kept whole."""
    sl = [slice(None)]
    for s0, s1, st in zip(p.starts[1:], p.stops[1:], p.strides[1:]):
        sl.append(slice(s0, None if s1 < 0 else s1, st))
    y = x[tuple(sl)]
    keep = [d for k, d in enumerate(y.shape) if k not in p.shrink or k == 0]
    return y.reshape(keep)


def out_counts(p) -> list[int]:
    return [extent(s0, s1, st) for s0, s1, st in zip(p.starts, p.stops, p.strides)]


def pack_walk(graph, index, node, p):
    """The strided walk of a slice: start at the first element, step ``stride x row stride`` per axis."""
    x = graph.tensors[node.inputs[0]]
    mv.check_c_int8(graph, index, node, [node.inputs[0], *node.outputs])
    rs = mv.row_strides(x.shape)
    start = sum(s * r for s, r in zip(p.starts, rs))
    steps = [st * r for st, r in zip(p.strides, rs)]
    forward = all(s > 0 for s in p.strides)
    return mv.walk_params(graph, index, node, start, out_counts(p), steps, inplace=forward)


@register
class StridedSlice(Op):
    name = "STRIDED_SLICE"
    builtin = 45
    options = Options(32, (scalar("begin_mask", 0, "i32"), scalar("end_mask", 1, "i32"),
                           scalar("ellipsis_mask", 2, "i32"), scalar("new_axis_mask", 3, "i32"),
                           scalar("shrink_axis_mask", 4, "i32"), scalar("offset", 5, "bool", False)))
    arity = (4, 4)
    int8_version = 2
    quant = QuantRule(output="input", int16=True)  # TFLM slices int16 values too
    c = CKernel("strided_slice", "strided_slice_params")
    onnx = ("Slice",)
    torch_functions = ("getitem",)

    def shape(self, graph, node, fail):
        p = slice_plan(graph, node, fail)
        counts = out_counts(p)
        return tuple(n for k, n in enumerate(counts) if k not in p.shrink)

    def prepare(self, graph, node, is_int):
        def fail(msg, fix):
            c.fail(graph, node, msg, fix)

        p = slice_plan(graph, node, fail)
        x = graph.tensors[node.inputs[0]]
        if len(x.shape) > MAX_RANK:
            c.unsupported(graph, node, f"a rank-{len(x.shape)} strided slice",
                          f"TFLM slices up to {MAX_RANK}-D")
        mv.keeps_batch(graph, node, 0 not in p.shrink and out_counts(p)[0] == 1 and p.starts[0] == 0,
                       "the slice")
        mv.check_same_quant(graph, node, node.inputs[:1], is_int)
        p.dtype = _int16.int_dtype(graph, node, is_int)
        return p

    def eval(self, p: StridedSliceData, inputs):
        return walk(p, inputs[0])

    def pack_c(self, graph, index, node):
        return pack_walk(graph, index, node, self.prepare(graph, node, True))

    # -- doors
    def from_onnx(self, cv, node, name, a, ins):
        x = cv.val(ins[0])
        starts = cv.const(ins[1], "starts")
        ends = cv.const(ins[2], "ends")
        axes = cv.const(ins[3], "axes") if len(ins) > 3 and ins[3] else np.arange(len(starts))
        steps = cv.const(ins[4], "steps") if len(ins) > 4 and ins[4] else np.ones(len(starts), np.int64)
        return build(cv.b, name, x, [int(v) for v in starts], [int(v) for v in ends], [int(v) for v in axes],
                     [int(v) for v in steps])

    def from_torch_function(self, cv, n, key, name, out_shape):
        src = cv.val(n.args[0], many=True)
        index = n.args[1]
        if isinstance(src, (tuple, list)):  # outputs of chunk/split/unbind: one, or a slice of them
            return list(src[index]) if isinstance(index, slice) else src[int(index)]
        return getitem(cv.b, name, src, _traced(cv, index))


def _traced(cv, index):
    """An index whose bounds the model computed from shapes, with those bounds as traced."""
    if isinstance(index, tuple):
        return tuple(_traced(cv, i) for i in index)
    if isinstance(index, slice):
        return slice(cv.value(index.start), cv.value(index.stop), cv.value(index.step))
    return cv.value(index)


def _bound(v: int) -> int:
    return int(max(INT_MIN, min(INT_MAX, v)))


def build(b, name: str, x, starts, ends, axes, steps):
    """A framework slice (ONNX semantics: per listed axis, start/end clamped, any step) of a value: SLICE when
    every step is 1, STRIDED_SLICE otherwise, on the graph axes; no node when it keeps everything."""
    from tinyopt.graph.torch_import import graph_axis, to_graph_shape
    from tinyopt.ops.slice import Slice

    rank = len(x.shape)
    if x.layout == "grouped":
        b.unsupported(f"a slice of channels viewed as groups {list(x.shape)}",
                      "reshape back to (N, C, H, W) first")
    if x.permuted:
        return _permuted_slice(b, name, x, starts, ends, axes, steps)
    g_shape = to_graph_shape(x.shape, x.layout)
    begin, end, stride = [0] * len(g_shape), list(g_shape), [1] * len(g_shape)
    for s, e, ax, st in zip(starts, ends, axes, steps):
        fa = int(ax) % rank
        if st == 0:
            b.unsupported(f"a slice with step 0 on axis {fa}")
        size = x.shape[fa]
        s0, s1 = axis_range(size, _bound(s), _bound(e), int(st), False, False, False)
        if graph_axis(fa, x.layout, rank) == 0 and (extent(s0, s1, st) != 1 or s0 != 0):
            b.unsupported(f"a slice of the batch axis ({s}:{e}:{st})", "keep the whole batch axis")
        gk = graph_axis(fa, x.layout, rank)
        begin[gk], end[gk], stride[gk] = s0, s1, int(st)
        if extent(s0, s1, st) == 0:
            b.unsupported(f"a slice that keeps nothing of axis {fa} ({s}:{e}:{st})")
    if begin == [0] * len(g_shape) and end == list(g_shape) and stride == [1] * len(g_shape):
        return x
    if all(st == 1 for st in stride):
        size = [e - s for s, e in zip(begin, end)]
        ins = [x.name, b.const(f"{name}/begin", np.asarray(begin, np.int32), "int32"),
               b.const(f"{name}/size", np.asarray(size, np.int32), "int32")]
        return b.emit(name, Slice.name, ins, {}, x.layout)
    # a backward walk that ends before index 0: TFLM's end of -1 would mean "the last element", use the mask
    end_mask = sum(1 << k for k, (e, st) in enumerate(zip(end, stride)) if st < 0 and e < 0)
    end = [0 if (end_mask >> k) & 1 else e for k, e in enumerate(end)]
    ins = [x.name, *(b.const(f"{name}/{what}", np.asarray(v, np.int32), "int32")
                     for what, v in (("begin", begin), ("end", end), ("strides", stride)))]
    return b.emit(name, StridedSlice.name, ins, {"end_mask": end_mask}, x.layout)


def _permuted_slice(b, name: str, x, starts, ends, axes, steps):
    """A slice of a flattened channels-first tensor (graph element i is framework element perm[i]): a
    GATHER of the graph positions of the framework elements it keeps, which come out in framework order."""
    from tinyopt.ops import gather

    where = np.argsort(x.perm)  # framework element -> graph position
    keep = np.arange(x.shape[1])
    for s, e, ax, st in zip(starts, ends, axes, steps):
        if int(ax) % 2 == 0:
            b.unsupported("a slice of the batch axis", "keep the whole batch axis")
        s0, s1 = axis_range(x.shape[1], _bound(s), _bound(e), int(st), False, False, False)
        keep = keep[slice(s0, None if s1 < 0 else s1, int(st))]
    from tinyopt.graph.torch_import import Val

    plain = Val(x.name, "plain", x.shape)  # the graph tensor as stored
    return gather.build(b, name, plain, where[keep], 1)


def getitem(b, name: str, x, index):
    """``x[...]`` with integers and slices (PyTorch basic indexing): a slice per axis, then a reshape that
    drops the axes indexed by an integer."""
    from tinyopt.ops import reshape

    items = list(index) if isinstance(index, tuple) else [index]
    if any(i is Ellipsis for i in items):
        k = items.index(Ellipsis)
        items[k: k + 1] = [slice(None)] * (len(x.shape) - len(items) + 1)
    lists = [k for k, i in enumerate(items) if isinstance(i, list) and all(isinstance(v, int) for v in i)]
    if len(lists) == 1 and all(i == slice(None) for k, i in enumerate(items) if k != lists[0]):
        from tinyopt.ops import gather  # x[:, [3, 0, 0, 7]]: a list of positions on one axis

        return gather.build(b, name, x, np.asarray(items[lists[0]], np.int64), lists[0])
    if len(items) > len(x.shape) or any(not isinstance(i, (int, slice)) or isinstance(i, bool)
                                        for i in items):
        b.unsupported(f"indexing with {index!r}", "index with integers, slices or one list of positions "
                                                  "(x[:, a:b], x[:, i], x[:, [i, j]])")
    starts, ends, axes, steps, dropped = [], [], [], [], []
    for ax, it in enumerate(items):
        if isinstance(it, int):
            i = it + x.shape[ax] if it < 0 else it
            if not 0 <= i < x.shape[ax]:
                b.unsupported(f"index {it} of axis {ax} with size {x.shape[ax]}")
            starts.append(i)
            ends.append(i + 1)
            axes.append(ax)
            steps.append(1)
            dropped.append(ax)
        elif it != slice(None):
            st = 1 if it.step is None else int(it.step)
            if st <= 0:
                b.unsupported(f"a slice step {st}", "PyTorch slices step forward")
            starts.append(0 if it.start is None else int(it.start))
            ends.append(INT_MAX if it.stop is None else int(it.stop))
            axes.append(ax)
            steps.append(st)
    y = build(b, name, x, starts, ends, axes, steps)
    if dropped:  # (an integer on axis 0 too: the value's leading axis then is no batch, see torch_import)
        shape = tuple(d for k, d in enumerate(y.shape) if k not in dropped)
        y = reshape.build(b, f"{name}/squeeze", y, shape)
    return y
