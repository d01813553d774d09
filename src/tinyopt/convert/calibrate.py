"""Calibration: run the float graph on sample inputs and record each activation tensor's range.

The float numpy interpreter computes every tensor, so no framework is needed. By default the range is
the running min/max; ``observer`` names one of ``tinyopt.compress.observers`` (``percentile``, ``mse``,
``kl``, ...) to use instead, fitted tensor by tensor on the same batches.
"""

from __future__ import annotations

import numpy as np

from tinyopt.errors import DataError
from tinyopt.graph.ir import Graph
from tinyopt.runtime import Interpreter


def calibration_batches(data: np.ndarray, batch_size: int) -> list[np.ndarray]:
    return [data[i: i + batch_size] for i in range(0, len(data), batch_size)]


def calibrate(graph: Graph, data: np.ndarray, *, observer: str | None = None,
              batch_size: int = 256) -> dict[str, tuple[float, float]]:
    """(min, max) of every activation tensor of a float graph over ``data`` (N, *input_shape[1:]); a list of
    such arrays (the same N) for a graph with several inputs."""
    arrays = [np.asarray(a) for a in data] if isinstance(data, (list, tuple)) else [np.asarray(data)]
    for a in arrays:
        if a.ndim == 0 or len(a) == 0:
            raise DataError("the calibration set is empty", path=graph.source,
                            fix="give at least one calibration sample (a few hundred are typical)")
        if not np.all(np.isfinite(a)):
            raise DataError("the calibration data contains NaN or inf", path=graph.source,
                            fix="remove non-finite samples from the calibration set")
    if len({len(a) for a in arrays}) > 1:
        raise DataError("the calibration arrays have different numbers of samples", path=graph.source,
                        fix="give every input the same number of samples")
    it = Interpreter(graph)
    arrays = [a.astype(np.float32) for a in arrays]
    ranges: dict[str, list[float]] = {}
    observers: dict[str, object] = {}
    if observer is not None:
        from tinyopt.compress.observers import make_observer
    for start in range(0, len(arrays[0]), batch_size):
        env = it.run_all([a[start: start + batch_size] for a in arrays])
        for name, arr in env.items():
            if arr.dtype != np.float32:
                continue
            if not np.all(np.isfinite(arr)):
                raise DataError(f"tensor '{name}' becomes NaN or inf on the calibration data",
                                path=graph.source, fix="check the model weights and the input scaling")
            lo, hi = float(arr.min()), float(arr.max())
            old = ranges.get(name)
            ranges[name] = [lo, hi] if old is None else [min(old[0], lo), max(old[1], hi)]
            if observer is not None:
                obs = observers.setdefault(name, make_observer(observer))
                obs.partial_fit(arr)
    if observer is not None:
        for name, obs in observers.items():
            ranges[name] = [float(np.asarray(obs.min_)), float(np.asarray(obs.max_))]
    return {k: (v[0], v[1]) for k, v in ranges.items()}


# TFLite's converter widens a range narrower than this to at least [-5e-7, 5e-7] (its "very small range"
# rule). Without it a collapsed or constant activation gets a scale so small that TFLM's prepare cannot
# quantize the fused RELU6 bound: round(6 / scale) must fit int32, i.e. scale >= 6 / 2**31 ≈ 2.8e-9, and
# 1e-6 / 255 ≈ 3.9e-9 is the smallest scale the rule leaves.
MIN_RANGE_WIDTH = 1e-6


def choose_activation_qparams(lo: float, hi: float) -> tuple[np.float32, int]:
    """Asymmetric int8 (TFLite converter): widen a range narrower than ``MIN_RANGE_WIDTH`` around zero,
    widen [lo, hi] to include 0, scale = range / 255, zero point = round(-128 - lo / scale) so that the
    real 0 is exactly representable."""
    lo, hi = float(lo), float(hi)
    if hi - lo <= MIN_RANGE_WIDTH:
        lo, hi = min(lo, -MIN_RANGE_WIDTH / 2), max(hi, MIN_RANGE_WIDTH / 2)
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = np.float32((hi - lo) / 255.0)
    zp = int(np.clip(np.round(-128 - lo / float(scale)), -128, 127))
    return scale, zp
