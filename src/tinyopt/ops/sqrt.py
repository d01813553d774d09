"""SQRT: the square root element-wise; float32 only in TFLM (``std::sqrt``).

Its record also holds the framework doors of a power with a constant exponent (ONNX ``Pow``,
``torch.pow`` / ``**`` / ``square``), each exponent becoming the operator that computes it exactly:
2 -> MUL(x, x), 0.5 -> SQRT, -0.5 -> RSQRT, -1 -> DIV(1, x), 1 -> x itself.
"""

from __future__ import annotations

import numpy as np

from tinyopt.ops._record import register
from tinyopt.ops._unary import Unary, unary


@register
class Sqrt(Unary):
    name = "SQRT"
    builtin = 75
    onnx = ("Sqrt", "Pow")
    torch_functions = ("sqrt", "pow", "square")

    @staticmethod
    def float_fn(x):
        return np.sqrt(x)

    def from_onnx(self, cv, node, name, a, ins):
        if node.op_type == "Pow":
            e = cv.const(ins[1], "exponent")
            if e.size != 1:
                cv.b.unsupported(f"Pow with an exponent of shape {list(e.shape)}", "use a single exponent")
            return power(cv.b, name, cv.val(ins[0]), float(e.ravel()[0]))
        return super().from_onnx(cv, node, name, a, ins)

    def from_torch_function(self, cv, n, key, name, out_shape):
        from tinyopt.graph.torch_import import Val

        if key == "square":
            return power(cv.b, name, cv.val(n.args[0]), 2.0)
        if key == "pow":
            x, e = cv.val(n.args[0]), cv.val(cv.arg(n)(1, "exponent"))
            if not isinstance(x, Val) or isinstance(e, Val) or not isinstance(e, (int, float)):
                cv.b.unsupported("a power whose exponent is not a number",
                                 "use x ** 2, x ** 0.5 or x ** -0.5")
            return power(cv.b, name, x, float(e))
        return super().from_torch_function(cv, n, key, name, out_shape)


def power(b, name: str, x, e: float):
    """x ** e for the exponents an operator computes exactly."""
    from tinyopt.ops import _broadcast
    from tinyopt.ops.div import Div
    from tinyopt.ops.mul import Mul
    from tinyopt.ops.rsqrt import Rsqrt

    if e == 1.0:
        return x
    if e == 2.0:
        return b.emit(name, Mul.name, [x.name, x.name], {"activation": "NONE"}, x.layout, x.perm)
    if e == 0.5:
        return unary(b, name, x, Sqrt.name)
    if e == -0.5:
        return unary(b, name, x, Rsqrt.name)
    if e == -1.0:
        return _broadcast.build(b, name, Div.name, 1.0, x, {"activation": "NONE"})
    return b.unsupported(f"a power with exponent {e:g}", "use the exponents 2, 0.5, -0.5, -1 or 1")


__all__ = ["Sqrt", "power"]
