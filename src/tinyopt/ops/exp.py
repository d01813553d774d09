"""EXP: e^x element-wise; float32 only in TFLM (``reference_ops::Exp`` with ``std::exp``)."""

from __future__ import annotations

import numpy as np

from tinyopt.ops._record import Options, register
from tinyopt.ops._unary import Unary


@register
class Exp(Unary):
    name = "EXP"
    builtin = 47
    options = Options(33)
    onnx = ("Exp",)
    torch_functions = ("exp",)

    @staticmethod
    def float_fn(x):
        return np.exp(x)
