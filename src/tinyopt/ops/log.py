"""LOG: the natural logarithm element-wise; float32 only in TFLM (``std::log``: -inf at 0, NaN below)."""

from __future__ import annotations

import numpy as np

from tinyopt.ops._record import register
from tinyopt.ops._unary import Unary


@register
class Log(Unary):
    name = "LOG"
    builtin = 73
    onnx = ("Log",)
    torch_functions = ("log",)

    @staticmethod
    def float_fn(x):
        return np.log(x)
