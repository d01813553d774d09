"""SPLIT_V: parts of the sizes ``size_splits`` (a constant int32 operand, one entry may be -1: the rest)
along ``axis``; inputs are (input, size_splits, axis), as TFLM's ``SplitV``, which copies each output's
run of bytes per outer index like SPLIT (same numpy kernel, same C kernel)."""

from __future__ import annotations

import numpy as np

from tinyopt.ops import _common as c
from tinyopt.ops._record import CKernel, Options, register, scalar
from tinyopt.ops.split import SplitLike


@register
class SplitV(SplitLike):
    name = "SPLIT_V"
    builtin = 102
    options = Options(79, (scalar("num_splits", 0, "i32"),))
    arity = (3, 3)
    data_input = 0
    c = CKernel("split", "split_params")

    def axis_value(self, graph, node, fail):
        t = c.in_tensor(graph, node, 2)
        if t is None or t.data is None or t.size != 1:
            fail("has no constant scalar axis", "give SPLIT_V its axis as a constant int32 third input")
        return int(np.asarray(t.data).ravel()[0])

    def sizes(self, graph, node, fail, axis):
        t = c.in_tensor(graph, node, 1)
        if t is None or t.data is None:
            fail("has no constant size_splits", "give SPLIT_V constant sizes")
        sizes = [int(v) for v in np.asarray(t.data).ravel()]
        d = self.data(graph, node).shape[axis]
        if sizes.count(-1) > 1:
            fail(f"size_splits {sizes} has more than one -1", "give every size but one")
        if -1 in sizes:
            sizes[sizes.index(-1)] = d - (sum(sizes) + 1)
        return sizes
