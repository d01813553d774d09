"""PAD: constant padding with ``paddings`` [[before, after], ...] per axis (an int32 constant operand).

TFLM pads int8 tensors with the output zero point (a real 0) unless a third operand gives the value
(PADV2). Framework doors use it for explicit convolution/pooling pads that TFLite's SAME cannot express.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from tinyopt.graph.ir import Graph, Node
from tinyopt.ops import _common as c
from tinyopt.ops import _int16, _int16_c
from tinyopt.ops._record import CKernel, Op, OpData, Options, QuantRule, register


@dataclass(kw_only=True)
class PadData(OpData):
    paddings: list          # [[before, after], ...] per graph axis
    pad_value: float | int  # the value padded in (the output zero point for int8)


def paddings_of(graph: Graph, node: Node) -> np.ndarray | None:
    t = graph.tensors[node.inputs[1]] if len(node.inputs) > 1 and node.inputs[1] else None
    return None if t is None or t.data is None else np.asarray(t.data).reshape(-1, 2).astype(np.int64)


@register
class Pad(Op):
    name = "PAD"
    builtin = 34
    options = Options(22)
    arity = (2, 2)
    int8_version = 2
    quant = QuantRule(output="input", int16=True)
    c = CKernel("pad", "pad_params")
    onnx: ClassVar[tuple[str, ...]] = ("Pad",)  # typed as the base's: PADV2 declares none
    torch_modules: ClassVar[tuple[str, ...]] = ("ZeroPad1d", "ZeroPad2d", "ConstantPad1d", "ConstantPad2d")
    torch_functions: ClassVar[tuple[str, ...]] = ("pad",)

    def read_tflite(self, r, ins, out):
        pads = r.const_int(ins[1], "paddings")
        if pads.shape != (len(ins[0].shape), 2) or (pads < 0).any():
            r.fail(f"paddings of shape {list(pads.shape)} do not give one non-negative (before, after) pair "
                   f"per dimension of {list(ins[0].shape)}")
        return {}

    def shape(self, graph, node, fail):
        x = graph.tensors[node.inputs[0]]
        pads = np.asarray(graph.tensors[node.inputs[1]].data).reshape(-1, 2)
        if pads.shape[0] != len(x.shape) or (pads < 0).any():
            fail(f"paddings {pads.tolist()} do not fit a rank-{len(x.shape)} input",
                 "give one non-negative (before, after) pair per dimension")
        return tuple(int(d + a + b) for d, (a, b) in zip(x.shape, pads))

    def zero_pads(self, graph, node):
        pads = paddings_of(graph, node)
        if pads is None or (len(node.inputs) > 2 and node.inputs[2]):
            return None
        return pads

    def is_identity(self, graph, node):
        pads = paddings_of(graph, node)
        return pads is not None and not pads.any()

    def prepare(self, graph, node, is_int):
        x = graph.tensors[node.inputs[0]]
        pads = paddings_of(graph, node)
        if pads is None:
            c.fail(graph, node, "has no constant paddings", "give PAD a constant paddings tensor")
        if pads.shape[0] != len(x.shape) or (pads < 0).any():
            c.fail(graph, node, f"paddings {pads.tolist()} do not fit a rank-{len(x.shape)} input",
                   "give one non-negative (before, after) pair per dimension")
        pad_value = 0.0
        if len(node.inputs) > 2 and node.inputs[2]:
            pad_value = np.asarray(graph.tensors[node.inputs[2]].data).ravel()[0]
        elif is_int:
            pad_value = c.scalar_qparams(graph, node, node.outputs[0])[1]
        dtype = "float32"
        # int16: TFLM pads with 0 (not the zero point) unless given a value: symmetric tensors only
        if is_int:
            dtype = "int16" if x.dtype == "int16" else "int8"
            if dtype == "int16":
                _int16.zero_points_zero(graph, node, [node.inputs[0], node.outputs[0]],
                                        "TFLM's int16 PAD fills with 0, not the zero point")
        return PadData(dtype=dtype, paddings=pads.tolist(), pad_value=pad_value)

    def eval(self, p: PadData, inputs):
        x = inputs[0]
        pads = [tuple(int(v) for v in pair) for pair in p.paddings]
        pads[0] = (0, 0)  # graph axis 0 is the batch: rows are never padded together
        return np.pad(x, pads, constant_values=np.asarray(p.pad_value).astype(x.dtype))

    def pack_c(self, graph, index, node):
        """The output starts as the pad value; input row (i0..i3) lands at the output offset of its first
        element, its pads before added on every axis."""
        if _int16_c.is_int16(graph, node):  # the 16x8 copy (kernels/movement_int16.c)
            return _int16_c.pack_pad(graph, index, node, self.prepare(graph, node, True))
        from tinyopt.errors import UnsupportedOpError
        from tinyopt.export.c import params as cp
        from tinyopt.ops import _movement as mv

        p = self.prepare(graph, node, True)
        mv.check_c_int8(graph, index, node, [node.inputs[0], *node.outputs])
        x, y = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
        if len(x.shape) > 5:
            raise UnsupportedOpError(f"a rank-{len(x.shape)} pad", path=graph.source,
                                     where=cp.where(index, node),
                                     fix="pad tensors of at most 5 dimensions (as TFLM)")
        lead = 5 - len(x.shape)
        steps = mv.row_strides(y.shape)
        start = sum(int(b) * s for (b, _), s in zip(p.paddings, steps))
        count = np.asarray([1] * lead + list(x.shape), np.int64)
        step = np.asarray([0] * lead + steps, np.int64)
        ints = {"value": int(p.pad_value), "out_size": y.size, "start": start}
        # NHWC with the batch unpadded: a band of output rows pads a band of input rows (export/c/stream.py)
        rows = len(x.shape) == 4 and tuple(int(v) for v in p.paddings[0]) == (0, 0)
        return cp.OpParams("pad", ints, {"count": ("int32_t", count), "step": ("int32_t", step)},
                           stream="pad" if rows else None)

    # -- doors
    def from_onnx(self, cv, node, name, a, ins):
        x = cv.val(ins[0])
        mode = a.get("mode", b"constant")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        pads = np.asarray(a["pads"] if cv.opset < 11 else cv.const(ins[1], "pads")).astype(np.int64).ravel()
        value = a.get("value", 0.0) if cv.opset < 11 else (
            float(np.asarray(cv.const(ins[2], "value")).ravel()[0]) if len(ins) > 2 and ins[2] else 0.0)
        r = len(x.shape)
        if len(ins) > 3 and ins[3]:
            axes = [int(v) % r for v in cv.const(ins[3], "axes")]
            full = np.zeros(2 * r, np.int64)
            for i, ax in enumerate(axes):
                full[ax], full[r + ax] = pads[i], pads[len(axes) + i]
            pads = full
        if pads.size != 2 * r:
            cv.fail(f"Pad has {pads.size} pad amounts for a rank-{r} input",
                    "give a (begin, end) pair per axis")
        if mode == "reflect" and (pads >= 0).all() and not pads[[0, r]].any() and not (
                x.layout in ("nchw", "ncl") and pads[[1, r + 1]].any()):  # mirrored values
            from tinyopt.ops import mirror_pad

            per_axis = [[int(pads[i]), int(pads[r + i])] for i in range(r)]
            spatial = [v for ax in range(2, r) for v in per_axis[ax]]
            return mirror_pad.build(cv.b, name, x, ((0, 0, *spatial) if r == 3 else spatial) if x.layout in (
                "nchw", "ncl") else per_axis, 0)
        if mode != "constant" or (pads < 0).any() or pads[[0, 1, r, r + 1]].any():
            cv.b.unsupported(f"Pad mode={mode} pads={pads.tolist()}",
                             "pad the spatial axes with a constant only")
        hw = (0, 0, int(pads[2]), int(pads[5])) if r == 3 else (int(pads[2]), int(pads[6]), int(pads[3]),
                                                                 int(pads[7]))
        return build(cv.b, name, x, hw, _value(cv.b, name, value))

    def from_torch_module(self, cv, n, m, name, out_shape):
        p = m.padding
        value = _value(cv.b, name, float(getattr(m, "value", 0.0)))
        pads = (0, 0, p[0], p[1]) if len(p) == 2 else (p[2], p[3], p[0], p[1])
        return build(cv.b, name, cv.val(n.args[0]), pads, value)

    def from_torch_function(self, cv, n, key, name, out_shape):
        arg = cv.arg(n)
        pad, mode, value = list(arg(1, "pad")), arg(2, "mode", "constant"), arg(3, "value", None)
        if mode != "constant" or len(pad) not in (2, 4):
            cv.b.unsupported(f"pad {pad} with mode={mode!r}",
                             "pad the last one or two axes with a constant only")
        pads = (0, 0, *pad) if len(pad) == 2 else (pad[2], pad[3], pad[0], pad[1])
        return build(cv.b, name, cv.val(n.args[0]), pads, _value(cv.b, name, value))


def _value(b, name: str, value) -> str | None:
    """A framework pad value: None for zeros (PAD), else its constant (PADV2)."""
    if value in (None, 0, 0.0):
        return None
    return b.const(f"{name}/value", np.asarray([float(value)], np.float32))


def build(b, name: str, x, pads, value: str | None = None):
    """Padding of a framework value's spatial axes, pads (top, bottom, left, right): zeros (PAD), or the
    float constant ``value`` (PADV2)."""
    from tinyopt.ops.padv2 import PadV2

    t, bottom, left, r = (int(v) for v in pads)
    if x.layout not in ("nchw", "ncl") or (x.layout == "ncl" and (t or bottom)):
        b.unsupported(f"spatial padding of a {len(x.shape)}-D tensor", "pad only (N, C, H, W) or (N, C, L)")
    p = np.array([[0, 0], [t, bottom], [left, r], [0, 0]], dtype=np.int32)
    ins = [x.name, b.const(f"{name}/paddings", p, "int32")]
    if value is None:
        return b.emit(name, Pad.name, ins, {}, x.layout)
    return b.emit(name, PadV2.name, [*ins, value], {}, x.layout)


# -- framework pads → TFLite's SAME / VALID, with a PAD in front where needed ----------------------------
#
# A window op is described per axis by what each output position computes from the real input: its
# taps' first position (a convolution, whose padded taps are zeros, needs exactly the same taps), the
# real range it covers (pooling) and its divisor (average pooling). A candidate (pads of a PAD in front,
# then TFLite's VALID or SAME) is taken only when every window agrees: by construction, never a
# different result.

MODES = ("conv", "max", "avg_include", "avg_exclude")


def framework_windows(size, k, s, d, lo, hi, ceil_mode, mode):
    """What each output position of a PyTorch/ONNX window op computes on one axis.

    >>> framework_windows(5, 3, 2, 1, 0, 0, True, "avg_include")  # the last window is cut at the end
    [(0, 3, 3), (2, 5, 3), (4, 5, 1)]
    """
    eff = (k - 1) * d + 1
    span = size + lo + hi - eff
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= size + lo:  # the last window must start inside (PyTorch's rule)
        out -= 1
    wins = []
    for i in range(out):
        st = i * s - lo
        en = st + eff
        if mode == "avg_include":
            div = min(en, size + hi) - st
        else:
            div = min(en, size) - max(st, 0)
        wins.append(_window(st, max(st, 0), min(en, size), div, mode))
    return wins


def _window(first, lo, hi, div, mode):
    """A convolution is its first tap (padded taps are zeros on both sides); a max pool its real range
    (padded taps never win); an average pool its real range and divisor."""
    return (first,) if mode == "conv" else (lo, hi) if mode == "max" else (lo, hi, div)


def tflite_windows(size, k, s, d, plo, phi, same, mode):
    """The same description for TFLite's VALID / SAME on the input padded by (plo, phi) (zeros, or the
    lowest value for max pooling) — TFLite's average divides by the taps inside its own input."""
    eff = (k - 1) * d + 1
    t = size + plo + phi
    out = -(-t // s) if same else (t - eff) // s + 1
    before = max((out - 1) * s + eff - t, 0) // 2 if same else 0
    wins = []
    for i in range(max(out, 0)):
        st = i * s - before - plo  # in input coordinates
        en = st + eff
        div = min(en, size + phi) - max(st, -plo)
        wins.append(_window(st, max(st, 0), min(en, size), div, mode))
    return wins


def axis_choice(size, k, s, d, lo, hi, ceil_mode, mode, same, allow_pad):
    """The first pads (before, after) for which TFLite's VALID/SAME computes the framework's windows."""
    want = framework_windows(size, k, s, d, lo, hi, ceil_mode, mode)
    eff = (k - 1) * d + 1
    extra = max(0, (len(want) - 1) * s + eff - (size + lo + hi))  # ceil_mode: the last window exists
    options = [(0, 0)]
    if allow_pad:
        options += [(lo, hi), (lo, hi + extra)] if mode in ("conv", "max") else [(lo, hi)]
    for plo, phi in options:
        if tflite_windows(size, k, s, d, plo, phi, same, mode) == want:
            return plo, phi
    return None


def resolve_padding(b, name: str, x, kernel, stride, dilation, pads, allow_pad: bool, ceil_mode: bool = False,
                    same_ok: bool = True, mode: str = "conv"):
    """Explicit framework pads (t, b, l, r) → (value, "VALID" | "SAME"): no PAD when TFLite's own padding
    computes the same windows, else a PAD in front (zeros; PADV2 with the lowest value for max pooling).
    ``mode``: conv (zero padded taps count), max, avg_include / avg_exclude (count_include_pad)."""
    from tinyopt.graph.torch_import import to_graph_shape
    from tinyopt.ops.padv2 import lowest_value

    h, w = to_graph_shape(x.shape, x.layout)[1:3]
    t, bottom, left, r = (int(p) for p in pads)
    axes = ((h, kernel[0], stride[0], dilation[0], t, bottom),
            (w, kernel[1], stride[1], dilation[1], left, r))
    found = {}
    for same in ((False, True) if same_ok else (False,)):
        per = [axis_choice(*ax, ceil_mode, mode, same, allow_pad) for ax in axes]
        if None not in per:
            found[same] = per
    no_pad = [same for same, per in found.items() if per == [(0, 0), (0, 0)]]
    if no_pad:
        return x, "SAME" if no_pad[0] else "VALID"
    if found:
        same = False if False in found else True
        (pt, pb), (pl, pr) = found[same]
        value = lowest_value(b, name) if mode == "max" else None
        return build(b, f"{name}/pad", x, (pt, pb, pl, pr), value), "SAME" if same else "VALID"
    return _refuse(b, h, w, kernel, stride, (t, bottom, left, r), ceil_mode, mode)


def _refuse(b, h, w, kernel, stride, pads, ceil_mode, mode):
    """Say why no TFLite padding computes this window op, in the framework's words."""
    if mode == "avg_exclude":
        same = (c.same_padding(h, kernel[0], stride[0], 1, -(-h // stride[0]))
                + c.same_padding(w, kernel[1], stride[1], 1, -(-w // stride[1])))
        return b.unsupported(
            f"average pooling with padding {list(pads)}, count_include_pad=False and ceil_mode={ceil_mode}: "
            f"TFLite divides by the in-bounds taps only with its SAME padding ({list(same)} here)",
            "use count_include_pad=True (the pads then count as zeros: PAD + VALID computes it exactly), or "
            "the padding that equals SAME")
    if mode == "avg_include":
        return b.unsupported(
            f"average pooling with padding {list(pads)}, count_include_pad=True and ceil_mode=True: the last "
            "window's divisor counts the pads but not the part past them, which no TFLite padding reproduces "
            "for this size and stride", "use ceil_mode=False, or an input size the windows tile exactly")
    return b.unsupported(f"padding {list(pads)} that is not TFLite's SAME for this size and stride",
                         "use padding 0 or the symmetric padding that equals SAME")
