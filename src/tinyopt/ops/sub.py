"""SUB: element-wise difference, the ADD kernel with the second operand negated (TFLM's
``SubElementwise``)."""

from __future__ import annotations

from tinyopt.ops import _int16_c
from tinyopt.ops._binary import Binary, options
from tinyopt.ops._record import CKernel, register
from tinyopt.ops.add import eval_add_sub, prepare_add_sub


@register
class Sub(Binary):
    name = "SUB"
    builtin = 41
    options = options(28)
    commutative = False
    arith_code = 1
    c = CKernel("arithmetic", "arithmetic_params")
    onnx = ("Sub",)
    torch_functions = ("sub", "isub")

    def prepare(self, graph, node, is_int):
        return prepare_add_sub(self, graph, node, is_int)

    def eval(self, p, inputs):
        return eval_add_sub(p, inputs, -1)

    def pack_c(self, graph, index, node):
        if _int16_c.is_int16(graph, node):  # the 16x8 kernel (kernels/elementwise_int16.c)
            return _int16_c.pack_arithmetic(graph, index, node, self.prepare(graph, node, True),
                                            self.arith_code)
        return self.pack_arithmetic(graph, index, node)
