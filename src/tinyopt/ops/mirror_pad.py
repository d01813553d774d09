"""MIRROR_PAD: padding with the tensor's own values mirrored at each border, as TFLM's ``MirrorPad``:
REFLECT leaves the border element out (``[1, 2, 3]`` padded by 2 → ``3 2 | 1 2 3 | 2 1``), SYMMETRIC
repeats it (→ ``2 1 | 1 2 3 | 3 2``). Moving values only: an int8 output keeps its input's parameters.
Audio front ends pad their frames this way before an STFT (ONNX ``Pad`` mode reflect, PyTorch
``ReflectionPad``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

import numpy as np

from tinyopt.ops import _common as c
from tinyopt.ops._record import CKernel, Op, OpData, Options, QuantRule, register, scalar

MODES = ("REFLECT", "SYMMETRIC")  # MirrorPadMode enum


@dataclass(kw_only=True)
class MirrorPadData(OpData):
    paddings: list  # [[before, after], ...] per graph axis
    mode: int       # 0 REFLECT, 1 SYMMETRIC


def _pads(graph, node) -> np.ndarray | None:
    t = graph.tensors[node.inputs[1]] if len(node.inputs) > 1 and node.inputs[1] else None
    return None if t is None or t.data is None else np.asarray(t.data).reshape(-1, 2).astype(np.int64)


@register
class MirrorPad(Op):
    name = "MIRROR_PAD"
    builtin = 100
    options = Options(77, (scalar("mode", 0, "i8"),))
    arity = (2, 2)
    int8_version = 2
    quant = QuantRule(output="input")
    c = CKernel("mirror_pad", "mirror_pad_params")
    torch_modules = ("ReflectionPad1d", "ReflectionPad2d")

    def read_tflite(self, r, ins, out):
        pads = r.const_int(ins[1], "paddings")
        attrs = super().read_tflite(r, ins, out)
        if pads.shape != (len(ins[0].shape), 2) or (pads < 0).any() or attrs["mode"] not in (0, 1):
            r.fail(f"paddings {pads.tolist()} / mode {attrs['mode']} do not fit a "
                   f"rank-{len(ins[0].shape)} input")
        return attrs

    def shape(self, graph, node, fail: Callable[[str, str], NoReturn]):
        x = graph.tensors[node.inputs[0]]
        pads = _pads(graph, node)
        if pads is None or pads.shape[0] != len(x.shape) or (pads < 0).any():
            fail("needs constant paddings, one non-negative (before, after) pair per dimension",
                 "give MIRROR_PAD constant paddings")
        limit = 0 if node.attrs.get("mode", 0) == 0 else 1  # REFLECT cannot mirror more than size - 1
        for d, (a, b) in zip(x.shape, pads):
            if max(a, b) > d - 1 + limit:
                fail(f"pads {pads.tolist()} are wider than the input {list(x.shape)} can mirror",
                     "pad at most size - 1 (REFLECT) or size (SYMMETRIC) on each side")
        return tuple(int(d + a + b) for d, (a, b) in zip(x.shape, pads))

    def prepare(self, graph, node, is_int):
        x = graph.tensors[node.inputs[0]]
        pads = _pads(graph, node)
        if pads is None:
            c.fail(graph, node, "has no constant paddings", "give MIRROR_PAD constant paddings")
        if pads[0].any():
            c.unsupported(graph, node, "padding the batch axis", "pad the other axes only")
        if is_int and (c.scalar_qparams(graph, node, node.inputs[0])
                       != c.scalar_qparams(graph, node, node.outputs[0])):
            c.fail(graph, node, "input and output quantization differ",
                   "give both the same scale and zero point")
        if len(x.shape) > 4:
            c.unsupported(graph, node, f"a rank-{len(x.shape)} mirror pad", "pad tensors of rank 4 or less")
        return MirrorPadData(dtype="int8" if is_int else "float32", paddings=pads.tolist(),
                             mode=int(node.attrs.get("mode", 0)))

    def eval(self, p: MirrorPadData, inputs):
        pads = [tuple(int(v) for v in pair) for pair in p.paddings]
        return np.pad(inputs[0], pads, mode="reflect" if p.mode == 0 else "symmetric")

    def pack_c(self, graph, index, node):
        from tinyopt.export.c import params as cp

        x, y = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
        cp.check_int8(graph, index, node, [x, y])
        q = self.prepare(graph, node, True)
        rank = len(x.shape)
        in_dims = [1] * (4 - rank) + list(x.shape)
        pads = [[0, 0]] * (4 - rank) + q.paddings
        ints = {"mode": q.mode, "size": y.size}
        arrays = {"in_dims": ("int32_t", np.array(in_dims)),
                  "before": ("int32_t", np.array([a for a, _ in pads])),
                  "out_dims": ("int32_t", np.array([d + a + b for d, (a, b) in zip(in_dims, pads)]))}
        return cp.OpParams("mirror_pad", ints, arrays)

    # -- doors
    def from_torch_module(self, cv, n, m, name, out_shape):
        p = m.padding
        pads = (0, 0, p[0], p[1]) if len(p) == 2 else (p[2], p[3], p[0], p[1])
        return build(cv.b, name, cv.val(n.args[0]), pads, 0)


def build(b, name: str, x, pads, mode: int):
    """Mirror padding of a framework value: (top, bottom, left, right) of a channels-first value's spatial
    axes, or [[before, after], ...] per framework axis of a plain value."""
    if x.layout in ("nchw", "ncl"):
        t, bottom, left, r = pads
        if x.layout == "ncl" and (t or bottom):
            b.unsupported("mirror padding of the channel axis of an (N, C, L) value", "pad along L only")
        p = np.array([[0, 0], [t, bottom], [left, r], [0, 0]], dtype=np.int32)
    elif not x.permuted:
        p = np.asarray(pads, dtype=np.int32).reshape(-1, 2)
    else:
        return b.unsupported("mirror padding of a flattened channels-first value", "pad before flattening")
    return b.emit(name, MirrorPad.name, [x.name, b.const(f"{name}/paddings", p, "int32")],
                  {"mode": int(mode)}, x.layout, x.perm)
