"""SUB: TFLM's integer ``Sub`` is ``Add`` with the rescaled second operand subtracted."""

from __future__ import annotations

from tinyopt.runtime.ops import add


def run(p: dict, inputs: list):
    return add.run(p, inputs, sign=-1)
