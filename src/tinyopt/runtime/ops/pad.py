"""PAD: constant padding; int8 pads with the output zero point (the real value 0) unless a constant
value tensor is given."""

from __future__ import annotations

import numpy as np


def run(p: dict, inputs: list) -> np.ndarray:
    x = inputs[0]
    pads = [tuple(int(v) for v in pair) for pair in p["paddings"]]
    pads[0] = (0, 0)  # graph axis 0 is the batch: rows are never padded together
    return np.pad(x, pads, constant_values=np.asarray(p["pad_value"]).astype(x.dtype))
