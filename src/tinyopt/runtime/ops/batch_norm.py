"""BATCH_NORM (float only): gamma · (x - mean) / sqrt(var + eps) + beta on the last (channel) axis."""

from __future__ import annotations

import numpy as np


def run(p: dict, inputs: list) -> np.ndarray:
    x, gamma, beta, mean, var = (np.asarray(a, dtype=np.float32) for a in inputs[:5])
    inv = gamma / np.sqrt(var + np.float32(p["epsilon"]))
    return ((x - mean) * inv + beta).astype(np.float32)
