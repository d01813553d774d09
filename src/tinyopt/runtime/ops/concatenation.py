"""CONCATENATION: int8 inputs share the output's scale and zero point (checked in Prepare), so it is a
copy, clamped by the fused activation."""

from __future__ import annotations

import numpy as np

from tinyopt.runtime.ops._common import clamp_float


def run(p: dict, inputs: list) -> np.ndarray:
    n = max(a.shape[0] for a in inputs)
    arrays = [np.broadcast_to(a, (n, *a.shape[1:])) for a in inputs]
    y = np.concatenate(arrays, axis=p["axis"])
    if p["dtype"] != "int8":
        return clamp_float(y, p)
    return np.clip(y, p["output_activation_min"], p["output_activation_max"]).astype(np.int8)
