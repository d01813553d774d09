"""MAX_POOL_2D: maximum over the in-bounds part of each window, clamped to the fused activation."""

from __future__ import annotations

import numpy as np

from tinyopt.runtime.ops._common import clamp_float, pad_spatial, window


def run(p: dict, inputs: list) -> np.ndarray:
    x = inputs[0]
    is_int = p["dtype"] == "int8"
    xs = x.astype(np.int32) if is_int else x.astype(np.float32)
    xp = pad_spatial(xs, p, -(1 << 20) if is_int else -np.inf)
    best = None
    for i in range(p["filter_h"]):
        for j in range(p["filter_w"]):
            tap = window(xp, p, i, j)
            best = tap if best is None else np.maximum(best, tap)
    if not is_int:
        return clamp_float(best, p)
    return np.clip(best, p["output_activation_min"], p["output_activation_max"]).astype(np.int8)
