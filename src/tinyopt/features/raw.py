"""Raw and normalized blocks: the data as they are, or scaled to zero mean and unit variance.

The normalized block learns its per-feature mean and standard deviation on the training split only
(``fit``), then applies the same affine map everywhere, so test data never leak into preprocessing.
"""

from __future__ import annotations

import numpy as np

from tinyopt.errors import DataError


class Raw:
    """Identity block (kept as an object so every block has ``fit``/``transform``)."""

    def __init__(self, scale: float = 1.0):
        self.scale = scale

    def fit(self, x: np.ndarray) -> Raw:
        self.n_features_ = int(np.prod(np.shape(x)[1:]))
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, dtype=np.float32) * np.float32(self.scale)).astype(np.float32)


class Normalized:
    """``(x - mean_) / std_`` per feature position, learned on the training data."""

    def __init__(self, eps: float = 1e-6):
        self.eps = eps

    def fit(self, x: np.ndarray) -> Normalized:
        x = np.asarray(x, dtype=np.float64)
        if len(x) == 0:
            raise DataError("cannot fit normalisation on zero examples", where="features.normalized",
                            fix="give training data")
        self.mean_ = x.mean(0).astype(np.float32)
        self.std_ = np.maximum(x.std(0), self.eps).astype(np.float32)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        return ((np.asarray(x, dtype=np.float32) - self.mean_) / self.std_).astype(np.float32)
