"""TANH; int8 output scale 1/128, zero point 0 (see ``_sigmoid_like.py``)."""

from __future__ import annotations

import numpy as np

from tinyopt.ops import _lstm
from tinyopt.ops._record import register
from tinyopt.ops._sigmoid_like import SigmoidLike
from tinyopt.runtime import fixedpoint as fp


@register
class Tanh(SigmoidLike):
    name = "TANH"
    builtin = 28
    output_qparams = (1.0 / 128, 0)
    output_bits = 7
    onnx = ("Tanh",)
    torch_modules = ("Tanh",)
    torch_functions = ("tanh",)
    spec_layers = {"tanh": frozenset()}
    spec_activation = "tanh"

    pot_shifts = (0, 1)  # TFLM's TanhPrepare: 2^-12 and 2^-11 inputs take the table without a multiplier
    is_tanh = True

    def fixed(self, q4):
        return fp.tanh_fixed(q4, 4)

    def fixed16(self, x, multiplier, left_shift):
        return _lstm.tanh16(x, multiplier, left_shift)

    @staticmethod
    def float_fn(x):
        return np.tanh(x)
