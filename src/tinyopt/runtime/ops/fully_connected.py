"""FULLY_CONNECTED: acc = Σ (x + input_offset)(w + weights_offset) + bias, requantized per tensor or
per output row (TFLM's ``FullyConnected`` / ``FullyConnectedPerChannel``)."""

from __future__ import annotations

import numpy as np

from tinyopt.runtime.ops._common import clamp_float, requantize


def run(p: dict, inputs: list) -> np.ndarray:
    x, w = inputs[0], inputs[1]
    bias = inputs[2] if len(inputs) > 2 and inputs[2] is not None else None
    depth = p["accum_depth"]
    lead = x.shape[:-1] if p["keep_num_dims"] else (x.shape[0],)
    x2 = x.reshape(-1, depth)
    if p["dtype"] == "int8":
        xs = (x2.astype(np.int64) + p["input_offset"]).astype(np.float64)
        ws = (w.astype(np.int64) + p["weights_offset"]).astype(np.float64)
        acc = np.matmul(xs, ws.T).astype(np.int64)
        if bias is not None:
            acc += bias.astype(np.int64)
        y = requantize(acc, p)
    else:
        acc = np.matmul(x2.astype(np.float32), w.astype(np.float32).T)
        if bias is not None:
            acc = acc + bias.astype(np.float32)
        y = clamp_float(acc, p)
    return y.reshape(*lead, w.shape[0])
