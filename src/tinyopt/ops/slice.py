"""SLICE: ``size[k]`` elements from ``begin[k]`` on each axis (constant int32/int64 operands; a size of -1
takes the rest of the axis), as TFLM's ``Slice`` (1-D to 5-D). A strided slice with unit strides: it shares
STRIDED_SLICE's numpy kernel and C walk.
"""

from __future__ import annotations

import numpy as np

from tinyopt.ops import _common as c
from tinyopt.ops import _int16
from tinyopt.ops import _movement as mv
from tinyopt.ops._record import CKernel, Op, Options, QuantRule, register
from tinyopt.ops.strided_slice import StridedSliceData, pack_walk, walk

MAX_RANK = 5  # TFLM's slice.cc kMaxDim


def slice_plan(graph, node, fail) -> StridedSliceData:
    x = graph.tensors[node.inputs[0]]
    b, s = c.in_tensor(graph, node, 1), c.in_tensor(graph, node, 2)
    if b is None or s is None or b.data is None or s.data is None:
        fail("has no constant begin and size", "give SLICE constant begin and size tensors")
    begin = np.asarray(b.data).astype(np.int64).ravel().tolist()
    size = np.asarray(s.data).astype(np.int64).ravel().tolist()
    if not len(begin) == len(size) == len(x.shape):
        fail(f"begin/size have {len(begin)}/{len(size)} values for a rank-{len(x.shape)} input",
             "give one value per input axis")
    stops = []
    for k, (d, b0, n) in enumerate(zip(x.shape, begin, size)):
        stop = d if n == -1 else b0 + n
        if not 0 <= b0 < stop <= d:
            fail(f"begin {b0} and size {n} do not fit axis {k} of size {d}",
                 "give 0 <= begin < begin + size <= dimension (size -1: to the end)")
        stops.append(int(stop))
    return StridedSliceData(dtype="float32", starts=tuple(int(v) for v in begin), stops=tuple(stops),
                            strides=(1,) * len(begin), shrink=())


@register
class Slice(Op):
    name = "SLICE"
    builtin = 65
    options = Options(48)
    arity = (3, 3)
    int8_version = 2
    quant = QuantRule(output="input", int16=True)  # TFLM slices int16 values too
    c = CKernel("strided_slice", "strided_slice_params")
    torch_functions = ("narrow",)

    def shape(self, graph, node, fail):
        p = slice_plan(graph, node, fail)
        return tuple(e - s for s, e in zip(p.starts, p.stops))

    def prepare(self, graph, node, is_int):
        def fail(msg, fix):
            c.fail(graph, node, msg, fix)

        p = slice_plan(graph, node, fail)
        if len(p.starts) > MAX_RANK:
            c.unsupported(graph, node, f"a rank-{len(p.starts)} slice", f"TFLM slices up to {MAX_RANK}-D")
        mv.keeps_batch(graph, node, p.starts[0] == 0 and p.stops[0] == 1, "the slice")
        mv.check_same_quant(graph, node, node.inputs[:1], is_int)
        p.dtype = _int16.int_dtype(graph, node, is_int)
        return p

    def eval(self, p: StridedSliceData, inputs):
        return walk(p, inputs[0])

    def pack_c(self, graph, index, node):
        return pack_walk(graph, index, node, self.prepare(graph, node, True))

    # -- doors
    def from_torch_function(self, cv, n, key, name, out_shape):
        from tinyopt.ops.strided_slice import build

        arg = cv.arg(n)
        x = cv.val(n.args[0])
        dim, start, length = (int(cv.value(arg(k, key)))
                              for k, key in ((1, "dim"), (2, "start"), (3, "length")))
        start = start + x.shape[dim] if start < 0 else start
        return build(cv.b, name, x, [start], [start + length], [dim], [1])
