"""AVERAGE_POOL_2D: the mean of each window's in-bounds taps, rounded half away from zero (TFLM's
``AveragePool``: padded taps do not count)."""

from __future__ import annotations

import numpy as np

from tinyopt.ops import _common as c
from tinyopt.ops._pool import SPEC_KEYS, Pool, PoolData
from tinyopt.ops._record import CKernel, register


@register
class AveragePool2D(Pool):
    name = "AVERAGE_POOL_2D"
    builtin = 1
    kind = "AVG"
    c = CKernel("average_pool2d", "pool_params")
    onnx = ("AveragePool",)
    torch_modules = ("AvgPool1d", "AvgPool2d")
    torch_functions = ("avg_pool1d", "avg_pool2d")
    spec_layers = {"avgpool2d": SPEC_KEYS}
    spec_aliases = {"avgpool": "avgpool2d"}

    def other_ops(self, graph, node):
        fh, fw = node.attrs["filter"]
        n = graph.tensors[node.outputs[0]].size
        return n * fh * fw + n  # the adds, then one divide per output

    def eval(self, p: PoolData, inputs):
        x = inputs[0]
        is_int = p.dtype in ("int8", "int16")  # int16: the same arithmetic, an int16 clamp
        dtype = np.int64 if is_int else np.float32
        xp = c.pad_spatial(x.astype(dtype), p, 0)
        ones = c.pad_spatial(np.ones((1, x.shape[1], x.shape[2], 1), dtype=np.int64), p, 0)
        total = np.zeros((x.shape[0], p.out_h, p.out_w, x.shape[3]), dtype=dtype)
        count = np.zeros((1, p.out_h, p.out_w, 1), dtype=np.int64)
        for i in range(p.filter_h):
            for j in range(p.filter_w):
                total += c.window(xp, p, i, j)
                count += c.window(ones, p, i, j)
        if not is_int:
            return c.clamp_float(total / count.astype(np.float32), p)
        avg = np.sign(total) * ((np.abs(total) + count // 2) // count)
        return np.clip(avg, p.output_activation_min, p.output_activation_max).astype(p.dtype)

    def from_torch_module(self, cv, n, m, name, out_shape):
        if getattr(m, "divisor_override", None):
            cv.b.unsupported("divisor_override in average pooling")
        k = 1 if type(m).__name__ == "AvgPool1d" else 2
        return self._pool(cv, name, cv.val(n.args[0]), k, m.kernel_size, m.stride, m.padding, 1, m.ceil_mode,
                          m.count_include_pad, False)

    def from_torch_function(self, cv, n, key, name, out_shape):
        arg = cv.arg(n)
        if arg(6, "divisor_override") is not None:
            cv.b.unsupported("divisor_override in average pooling")
        return self._pool(cv, name, cv.val(n.args[0]), int(key[-2]), arg(1, "kernel_size"), arg(2, "stride"),
                          arg(3, "padding", 0), 1, arg(4, "ceil_mode", False),
                          arg(5, "count_include_pad", True), False)
