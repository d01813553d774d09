"""MAX_POOL_2D: the largest value of each window (padded taps never win), as TFLM's ``MaxPool``."""

from __future__ import annotations

import functools

import numpy as np

from tinyopt.ops import _common as c
from tinyopt.ops._pool import SPEC_KEYS, Pool, PoolData
from tinyopt.ops._record import CKernel, register


@register
class MaxPool2D(Pool):
    name = "MAX_POOL_2D"
    builtin = 17
    kind = "MAX"
    c = CKernel("max_pool2d", "pool_params")
    onnx = ("MaxPool",)
    torch_modules = ("MaxPool1d", "MaxPool2d")
    torch_functions = ("max_pool1d", "max_pool2d")
    spec_layers = {"maxpool2d": SPEC_KEYS}
    spec_aliases = {"maxpool": "maxpool2d"}

    def other_ops(self, graph, node):
        fh, fw = node.attrs["filter"]
        return graph.tensors[node.outputs[0]].size * fh * fw

    def eval(self, p: PoolData, inputs):
        x = inputs[0]
        is_int = p.dtype in ("int8", "int16")  # int16: the same arithmetic, an int16 clamp
        xs = x.astype(np.int32) if is_int else x.astype(np.float32)
        xp = c.pad_spatial(xs, p, -(1 << 20) if is_int else -np.inf)
        best = functools.reduce(np.maximum, (c.window(xp, p, i, j) for i in range(p.filter_h)
                                             for j in range(p.filter_w)))
        if not is_int:
            return c.clamp_float(best, p)
        return np.clip(best, p.output_activation_min, p.output_activation_max).astype(p.dtype)

    def from_torch_module(self, cv, n, m, name, out_shape):
        k = 1 if type(m).__name__ == "MaxPool1d" else 2
        return self._pool(cv, name, cv.val(n.args[0]), k, m.kernel_size, m.stride, m.padding, m.dilation,
                          m.ceil_mode, True, m.return_indices)

    def from_torch_function(self, cv, n, key, name, out_shape):
        arg = cv.arg(n)
        return self._pool(cv, name, cv.val(n.args[0]), int(key[-2]), arg(1, "kernel_size"), arg(2, "stride"),
                          arg(3, "padding", 0), arg(4, "dilation", 1), arg(5, "ceil_mode", False), True,
                          arg(6, "return_indices", False))
