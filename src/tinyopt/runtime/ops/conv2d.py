"""CONV_2D: im2col then one exact matrix product.

Integer path as TFLM's ``ConvPerChannel``: acc = Σ (x + input_offset) · w + bias, then per-channel
requantization. Padded pixels contribute (x + input_offset) = 0, so we pad the offset input with zeros.
The product runs in float64 BLAS: every partial sum is an integer below 2^53, so it is exact.
"""

from __future__ import annotations

import numpy as np

from tinyopt.runtime.ops._common import clamp_float, pad_spatial, requantize, window

_CHUNK_ELEMS = 1 << 22  # im2col elements per batch slice (bounded memory)


def im2col(xp: np.ndarray, p: dict) -> np.ndarray:
    """(N, OH*OW, KH*KW*C) patches in the weight's (KH, KW, C) order."""
    taps = [window(xp, p, i, j) for i in range(p["filter_h"]) for j in range(p["filter_w"])]
    cols = np.stack(taps, axis=3)  # N, OH, OW, KH*KW, C
    n = xp.shape[0]
    return cols.reshape(n, p["out_h"] * p["out_w"], -1)


def run(p: dict, inputs: list) -> np.ndarray:
    x, w = inputs[0], inputs[1]
    bias = inputs[2] if len(inputs) > 2 else None
    n, out_c = x.shape[0], w.shape[0]
    is_int = p["dtype"] == "int8"
    w2 = w.reshape(out_c, -1).astype(np.float64 if is_int else np.float32)
    k = w2.shape[1]
    step = max(1, _CHUNK_ELEMS // max(1, p["out_h"] * p["out_w"] * k))
    outs = []
    for s in range(0, n, step):
        xb = x[s: s + step]
        if is_int:
            xs = xb.astype(np.int32) + np.int32(p["input_offset"])
            cols = im2col(pad_spatial(xs, p, 0), p).astype(np.float64)
            acc = np.matmul(cols, w2.T).astype(np.int64)
            if bias is not None:
                acc += bias.astype(np.int64)
            y = requantize(acc, p)
        else:
            cols = im2col(pad_spatial(xb.astype(np.float32), p, 0.0), p)
            acc = np.matmul(cols, w2.T)
            if bias is not None:
                acc = acc + bias.astype(np.float32)
            y = clamp_float(acc, p)
        outs.append(y.reshape(len(xb), p["out_h"], p["out_w"], out_c))
    return np.concatenate(outs, axis=0)
