"""PADV2: PAD with the padded value given as a third operand (a one-element constant of the input's dtype,
int8 with the output's scale and zero point), as TFLM's ``Pad``. The framework doors use it for max
pooling with explicit pads: padded with the lowest value (float -FLT_MAX, int8 -128), a padded tap never
wins the maximum, which is what PyTorch and ONNX compute."""

from __future__ import annotations

import numpy as np

from tinyopt.ops import _common as c
from tinyopt.ops._record import CKernel, Options, QuantRule, register
from tinyopt.ops.pad import Pad

LOWEST = float(np.finfo(np.float32).min)  # -FLT_MAX: quantizes to -128 with any int8 parameters


@register
class PadV2(Pad):
    name = "PADV2"
    builtin = 60
    options = Options(43)
    arity = (3, 3)
    quant = QuantRule(output="input", constants="output", int16=True)  # the value in the output's parameters
    c = CKernel("pad", "pad_params")
    onnx = ()
    torch_modules = ()
    torch_functions = ()

    def prepare(self, graph, node, is_int):
        v = c.in_tensor(graph, node, 2)
        if v is None or v.data is None or v.size != 1:
            c.fail(graph, node, "has no constant one-element pad value", "give PADV2 a constant scalar value")
        out = node.outputs[0]
        if is_int and c.scalar_qparams(graph, node, node.inputs[2]) != c.scalar_qparams(graph, node, out):
            c.fail(graph, node, "the pad value's quantization differs from the output's",
                   "quantize the value with the output's scale and zero point")
        return super().prepare(graph, node, is_int)


def lowest_value(b, name: str) -> str:
    """The float constant a max pooling pads with."""
    return b.const(f"{name}/lowest", np.asarray([LOWEST], np.float32))
