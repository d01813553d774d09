"""What the element-wise math functions share (EXP, LOG, SQRT, RSQRT): one input, the same shape, a
float32 kernel as TFLM's (``std::exp``, ``std::log``, ``std::sqrt`` on float), and the doors.

TFLM runs EXP, LOG and SQRT in float32 only: their records have no int8 conversion (``quant=None``) and
refuse an int8 node in ``prepare``, with the way out in ``missing_fix``.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from tinyopt.ops import _common as c
from tinyopt.ops._record import Op, OpData, QuantRule


def float_only_fix(name: str) -> str:
    return (f"TFLM runs {name} in float32 only: deploy this part of the model in float, or rewrite it with "
            "operators that have int8 kernels")


class Unary(Op):
    """Base record: y = f(x) element-wise, float32 only unless the subclass says otherwise."""

    ops_per_element = 1
    quant: ClassVar[QuantRule | None] = None

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if cls.name and cls.quant is None and not cls.missing_fix:
            cls.missing_fix = float_only_fix(cls.name)

    @staticmethod
    def float_fn(x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def prepare(self, graph, node, is_int):
        if is_int:
            c.unsupported(graph, node, f"an int8 {node.op}: TFLM has no integer kernel for it",
                          self.missing_fix)
        return OpData(dtype="float32")

    def eval(self, p, inputs):
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return self.float_fn(inputs[0].astype(np.float32)).astype(np.float32)

    # -- doors
    def from_onnx(self, cv, node, name, a, ins):
        return unary(cv.b, name, cv.val(ins[0]), self.name)

    def from_torch_function(self, cv, n, key, name, out_shape):
        return unary(cv.b, name, cv.val(n.args[0]), self.name)


def unary(b, name: str, x, op: str):
    """An element-wise framework op: the value keeps its layout and flatten order."""
    return b.emit(name, op, [x.name], {}, x.layout, x.perm)
