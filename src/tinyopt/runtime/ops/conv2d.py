"""CONV_2D: im2col then one exact matrix product.

Integer path as TFLM's ``ConvPerChannel``: acc = Σ (x + input_offset) · w + bias, then per-channel
requantization. Padded pixels contribute (x + input_offset) = 0, so we pad the offset input with zeros.
The product runs in float64 BLAS: every partial sum is an integer below 2^53, so it is exact.
"""

from __future__ import annotations

import numpy as np

from tinyopt.runtime.ops._common import clamp_float, pad_spatial, requantize, window

_CHUNK_ELEMS = 1 << 22  # im2col elements per batch slice (bounded memory)
# |x + input_offset| <= 255 and |w| <= 128: a float32 dot product of up to 512 terms stays below 2^24,
# where every integer is exact, so each block of 512 taps is summed exactly in float32 BLAS.
_EXACT_F32_TERMS = 512


def im2col(xp: np.ndarray, p: dict) -> np.ndarray:
    """(N * OH * OW, KH*KW*C) patches in the weight's (KH, KW, C) order."""
    taps = [window(xp, p, i, j) for i in range(p["filter_h"]) for j in range(p["filter_w"])]
    cols = np.stack(taps, axis=3)  # N, OH, OW, KH*KW, C
    return cols.reshape(xp.shape[0] * p["out_h"] * p["out_w"], -1)


def exact_int_matmul(cols: np.ndarray, wt: np.ndarray) -> np.ndarray:
    """cols (M, K) @ wt (K, O) for small integers held in float32, exact, as int64."""
    k = cols.shape[1]
    if k <= _EXACT_F32_TERMS:
        return (cols @ wt).astype(np.int64)
    acc = None
    for s in range(0, k, _EXACT_F32_TERMS):
        part = (cols[:, s: s + _EXACT_F32_TERMS] @ wt[s: s + _EXACT_F32_TERMS]).astype(np.int64)
        acc = part if acc is None else acc + part
    return acc


def run(p: dict, inputs: list) -> np.ndarray:
    x, w = inputs[0], inputs[1]
    bias = inputs[2] if len(inputs) > 2 and inputs[2] is not None else None
    n, out_c = x.shape[0], w.shape[0]
    is_int = p["dtype"] == "int8"
    wt = np.ascontiguousarray(w.reshape(out_c, -1).T.astype(np.float32))
    k = wt.shape[0]
    step = max(1, _CHUNK_ELEMS // max(1, p["out_h"] * p["out_w"] * k))
    outs = []
    for s in range(0, n, step):
        xb = x[s: s + step]
        if is_int:
            xs = xb.astype(np.float32) + np.float32(p["input_offset"])
            acc = exact_int_matmul(im2col(pad_spatial(xs, p, 0), p), wt)
            if bias is not None:
                acc += bias.astype(np.int64)
            y = requantize(acc, p)
        else:
            acc = im2col(pad_spatial(xb.astype(np.float32), p, 0.0), p) @ wt
            if bias is not None:
                acc = acc + bias.astype(np.float32)
            y = clamp_float(acc, p)
        outs.append(y.reshape(len(xb), p["out_h"], p["out_w"], out_c))
    return np.concatenate(outs, axis=0)
