"""LOGISTIC (sigmoid); int8 output scale 1/256, zero point -128 (see ``_sigmoid_like.py``)."""

from __future__ import annotations

import numpy as np

from tinyopt.ops import _lstm
from tinyopt.ops._record import register
from tinyopt.ops._sigmoid_like import SigmoidLike
from tinyopt.runtime import fixedpoint as fp


@register
class Logistic(SigmoidLike):
    name = "LOGISTIC"
    builtin = 14
    output_qparams = (1.0 / 256, -128)
    output_bits = 8
    onnx = ("Sigmoid",)
    torch_modules = ("Sigmoid",)
    torch_functions = ("sigmoid",)
    spec_layers = {"sigmoid": frozenset()}
    spec_aliases = {"logistic": "sigmoid"}
    spec_activation = "sigmoid"

    def fixed(self, q4):
        return fp.logistic_fixed(q4, 4)

    def fixed16(self, x, multiplier, left_shift):
        return _lstm.logistic16(x, multiplier, left_shift)

    @staticmethod
    def float_fn(x):
        return 1.0 / (1.0 + np.exp(-x))
