"""Operators that TFLite runs over the last axis only (SOFTMAX, LOG_SOFTMAX, L2_NORMALIZATION), applied
by the framework doors over any axis: when the framework axis is not the graph's last one, the value is
transposed so that it is, and back afterwards (TRANSPOSE runs in TFLM in float and int8 and keeps the
quantization, so the pair changes nothing but the order)."""

from __future__ import annotations

import numpy as np


def over_last_axis(b, name: str, x, axis, op: str, attrs: dict):
    """``op`` over framework axis ``axis`` of value ``x`` (a record that reduces the last graph axis)."""
    from tinyopt.graph.torch_import import graph_axis
    from tinyopt.ops.transpose import Transpose

    rank = len(x.shape)
    if axis is None:
        b.unsupported(f"{op.lower()} without an axis", "give the axis (dim) explicitly")
    if not -rank <= int(axis) < rank:
        b.unsupported(f"{op.lower()} over axis {axis} of a value of shape {list(x.shape)}", "fix the axis")
    axis = int(axis) % rank
    if axis == 0:
        b.unsupported(f"{op.lower()} over axis 0 (the batch axis)", "apply it over a feature axis")
    if x.permuted:  # a flattened channels-first tensor: only the whole feature vector is order-free
        if rank != 2:
            b.unsupported(f"{op.lower()} over axis {axis} of a flattened channels-first tensor",
                          "apply it before flattening, or over every feature")
        return b.emit(name, op, [x.name], attrs, x.layout, x.perm)
    last = len(b.g.tensors[x.name].shape) - 1
    ga = graph_axis(axis, x.layout, rank)
    if ga == last:
        return b.emit(name, op, [x.name], attrs, x.layout)
    perm = [i for i in range(last + 1) if i != ga] + [ga]
    there = b.emit(f"{name}/to_last", Transpose.name,
                   [x.name, b.const(f"{name}/perm", np.array(perm, np.int32),
                                    "int32")], {}, "plain")
    done = b.emit(name, op, [there.name], attrs, "plain")
    back = np.argsort(perm).astype(np.int32)
    return b.emit(f"{name}/back", Transpose.name, [done.name, b.const(f"{name}/perm_back", back, "int32")],
                  {}, x.layout)
