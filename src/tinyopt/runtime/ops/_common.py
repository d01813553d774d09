"""Helpers shared by the kernels: requantize-and-clamp, padding for windows, window slices."""

from __future__ import annotations

import numpy as np

from tinyopt.runtime.fixedpoint import multiply_by_quantized_multiplier

INT8_MIN, INT8_MAX = -128, 127


def requantize(acc, p: dict) -> np.ndarray:
    """acc (int64) -> int8: per-channel multiply, add the output zero point, clamp to the activation."""
    out = multiply_by_quantized_multiplier(acc, p["output_multiplier"], p["output_shift"]) + p["output_offset"]
    return np.clip(out, p["output_activation_min"], p["output_activation_max"]).astype(np.int8)


def clamp_float(x, p: dict) -> np.ndarray:
    lo, hi = p["output_activation_min"], p["output_activation_max"]
    if np.isfinite(lo) or np.isfinite(hi):
        x = np.clip(x, lo, hi)
    return x.astype(np.float32)


def pad_spatial(x: np.ndarray, p: dict, value) -> np.ndarray:
    """Pad NHWC so that every window of the output grid lies inside (before = padding_h/_w)."""
    _, h, w, _ = x.shape
    need_h = (p["out_h"] - 1) * p["stride_h"] + (p["filter_h"] - 1) * p["dilation_h"] + 1
    need_w = (p["out_w"] - 1) * p["stride_w"] + (p["filter_w"] - 1) * p["dilation_w"] + 1
    ph, pw = p["padding_h"], p["padding_w"]
    after_h, after_w = max(need_h - h - ph, 0), max(need_w - w - pw, 0)
    if ph == pw == after_h == after_w == 0:
        return x
    return np.pad(x, ((0, 0), (ph, after_h), (pw, after_w), (0, 0)), constant_values=value)


def window(xp: np.ndarray, p: dict, i: int, j: int) -> np.ndarray:
    """The input pixels that kernel tap (i, j) sees for every output position: (N, OH, OW, C)."""
    r0, c0 = i * p["dilation_h"], j * p["dilation_w"]
    return xp[:, r0: r0 + (p["out_h"] - 1) * p["stride_h"] + 1: p["stride_h"],
              c0: c0 + (p["out_w"] - 1) * p["stride_w"] + 1: p["stride_w"], :]
