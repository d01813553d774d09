"""MINIMUM: element-wise minimum with broadcasting; the same kernel and rules as MAXIMUM (maximum.py)."""

from __future__ import annotations

from tinyopt.ops._record import register
from tinyopt.ops.maximum import MaximumMinimum


@register
class Minimum(MaximumMinimum):
    name = "MINIMUM"
    builtin = 57
    is_max = False
    onnx = ("Min",)
    torch_functions = ("minimum",)
