"""PAD: constant padding with ``paddings`` [[before, after], ...] per axis (an int32 constant operand).

TFLM pads int8 tensors with the output zero point (a real 0) unless a third operand gives the value
(PADV2). Framework doors use it for explicit convolution/pooling pads that TFLite's SAME cannot express.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyopt.graph.ir import Graph, Node
from tinyopt.ops import _common as c
from tinyopt.ops._record import Op, OpData, Options, QuantRule, register


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
    quant = QuantRule(output="input")
    onnx = ("Pad",)
    torch_modules = ("ZeroPad1d", "ZeroPad2d", "ConstantPad1d", "ConstantPad2d")
    torch_functions = ("pad",)

    def read_tflite(self, r, ins, out):
        pads = r.const_int(ins[1], "paddings")
        if pads.shape != (len(ins[0].shape), 2) or (pads < 0).any():
            r.fail(f"paddings of shape {list(pads.shape)} do not give one non-negative (before, after) pair per "
                   f"dimension of {list(ins[0].shape)}")
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
        return PadData(dtype="int8" if is_int else "float32", paddings=pads.tolist(), pad_value=pad_value)

    def eval(self, p: PadData, inputs):
        x = inputs[0]
        pads = [tuple(int(v) for v in pair) for pair in p.paddings]
        pads[0] = (0, 0)  # graph axis 0 is the batch: rows are never padded together
        return np.pad(x, pads, constant_values=np.asarray(p.pad_value).astype(x.dtype))

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
            cv.fail(f"Pad has {pads.size} pad amounts for a rank-{r} input", "give a (begin, end) pair per axis")
        if mode != "constant" or value != 0.0 or (pads < 0).any() or pads[[0, 1, r, r + 1]].any():
            cv.b.unsupported(f"Pad mode={mode} value={value} pads={pads.tolist()}", "zero-pad the spatial axes only")
        if r == 3:
            return build(cv.b, name, x, (0, 0, int(pads[2]), int(pads[5])))
        return build(cv.b, name, x, (int(pads[2]), int(pads[6]), int(pads[3]), int(pads[7])))

    def from_torch_module(self, cv, n, m, name, out_shape):
        if float(getattr(m, "value", 0.0)) != 0.0:
            cv.b.unsupported(f"constant padding with value {m.value}", "pad with zeros")
        p = m.padding
        return build(cv.b, name, cv.val(n.args[0]), (0, 0, p[0], p[1]) if len(p) == 2 else (p[2], p[3], p[0], p[1]))

    def from_torch_function(self, cv, n, key, name, out_shape):
        arg = cv.arg(n)
        pad, mode, value = list(arg(1, "pad")), arg(2, "mode", "constant"), arg(3, "value", None)
        if mode != "constant" or value not in (None, 0, 0.0) or len(pad) not in (2, 4):
            cv.b.unsupported(f"pad {pad} with mode={mode!r}, value={value!r}", "zero-pad the last one or two axes only")
        return build(cv.b, name, cv.val(n.args[0]),
                     (0, 0, *pad) if len(pad) == 2 else (pad[2], pad[3], pad[0], pad[1]))


def build(b, name: str, x, pads):
    """Zero padding of a framework value's spatial axes, pads (top, bottom, left, right)."""
    t, bottom, left, r = pads
    if x.layout not in ("nchw", "ncl") or (x.layout == "ncl" and (t or bottom)):
        b.unsupported(f"spatial padding of a {len(x.shape)}-D tensor", "pad only (N, C, H, W) or (N, C, L)")
    p = np.array([[0, 0], [t, bottom], [left, r], [0, 0]], dtype=np.int32)
    return b.emit(name, Pad.name, [x.name, b.const(f"{name}/paddings", p, "int32")], {}, x.layout)


def resolve_padding(b, name: str, x, kernel, stride, dilation, pads, allow_pad: bool, ceil_mode: bool = False,
                    same_ok: bool = True):
    """Map explicit framework pads (t, b, l, r) to VALID, SAME (when identical to TFLite's) or PAD + VALID."""
    from tinyopt.graph.torch_import import to_graph_shape

    h, w = to_graph_shape(x.shape, x.layout)[1:3]
    t, bottom, left, r = (int(p) for p in pads)
    want = []
    for size, k, s, d, lo, hi in ((h, kernel[0], stride[0], dilation[0], t, bottom),
                                  (w, kernel[1], stride[1], dilation[1], left, r)):
        eff = (k - 1) * d + 1
        span = size + lo + hi - eff
        out = (-(-span // s) if ceil_mode else span // s) + 1
        if ceil_mode and (out - 1) * s >= size + lo:  # the last window must start inside
            out -= 1
        want.append(out)
    same_out = [-(-h // stride[0]), -(-w // stride[1])]
    same = (c.same_padding(h, kernel[0], stride[0], dilation[0], same_out[0])
            + c.same_padding(w, kernel[1], stride[1], dilation[1], same_out[1]))
    if not any((t, bottom, left, r)) and not ceil_mode:
        return x, "VALID"
    if same_ok and want == same_out and ((t, bottom, left, r) == same or (ceil_mode and t == left == 0
                                                                          and same[0] == same[2] == 0)):
        return x, "SAME"
    if allow_pad and not ceil_mode:
        return build(b, f"{name}/pad", x, (t, bottom, left, r)), "VALID"
    return b.unsupported(f"padding {[t, bottom, left, r]} (ceil_mode={ceil_mode}) that is not TFLite's SAME "
                         f"{list(same)} for this size and stride",
                         "use padding 0, or the symmetric padding that equals SAME")
