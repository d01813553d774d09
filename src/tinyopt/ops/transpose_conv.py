"""TRANSPOSE_CONV: the transpose (gradient) of a 2-D convolution, as TFLite lays it out: inputs
``[output_shape (int32 [4]), weights [O, KH, KW, I], input NHWC, bias [O] (optional)]``.

Each input pixel (y, x) scatters ``x · w[:, ky, kx, :]`` to output pixel ``(y·stride + ky - pad, ...)``;
positions outside the output are dropped. The output size is the operand (not derived from the input), and
the padding is TFLite's SAME/VALID rule applied to it as if it were a convolution's input
(``ComputePaddingHeightWidth`` on the output size). int8 as TFLM's per-channel ``TransposeConv``:
acc = Σ (x + input_offset) · w, + bias, then per-channel requantization and the fused activation.

The framework doors (ONNX ConvTranspose, nn.ConvTranspose1d/2d) express any padding, output_padding and
dilation exactly: the kernel is dilated with zeros and given zero rows/columns before or after so that
TFLite's SAME padding crops exactly the framework's leading padding (see ``tflite_kernel``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tinyopt.graph.ir import Node
from tinyopt.ops import _common as c
from tinyopt.ops._record import CKernel, Op, OpData, Options, activation, padding, pair, register
from tinyopt.runtime.fixedpoint import quantize_multipliers

X, W, B = 2, 1, 3  # operand positions (0: the output shape)


@dataclass(kw_only=True)
class TransposeConvData(c.ActivationRange, OpData):
    stride_h: int
    stride_w: int
    padding_h: int     # TFLM padding_values: the output rows/columns cropped before the first one
    padding_w: int
    padding: str
    dilation_h: int = 1  # TFLite's transposed convolution has none (the doors dilate the kernel instead)
    dilation_w: int = 1
    out_h: int
    out_w: int
    input_offset: int | None = None
    output_offset: int | None = None
    output_multiplier: np.ndarray | None = None  # int32 per output channel
    output_shift: np.ndarray | None = None


def output_shape_of(graph, node, fail) -> tuple[int, ...]:
    t = c.in_tensor(graph, node, 0)
    if t is None or t.data is None or t.dtype != "int32" or t.size != 4:
        fail("needs a constant int32 output shape of four values",
             "give the output shape [1, H, W, C] as a constant")
    return tuple(int(v) for v in np.asarray(t.data).ravel())


def tflm_padding(out_size: int, kernel: int, stride: int, pad: str) -> int:
    """``ComputePaddingHeightWidth`` on the output size (dilation 1): the rows cropped before the first."""
    if pad == "SAME":
        conv_out = (out_size + stride - 1) // stride
    else:
        conv_out = (out_size + stride - kernel) // stride  # C's division; never negative here (see shape)
    return max((conv_out - 1) * stride + kernel - out_size, 0) // 2


@register
class TransposeConv(Op):
    name = "TRANSPOSE_CONV"
    builtin = 67
    options = Options(49, (padding("padding", 0), pair("stride", 2, 1), activation("activation", 3)))
    arity = (3, 4)
    optional_inputs = (3,)
    data_inputs = None
    param_inputs = (1, 3)
    weight_axis = 0
    bias_input = B
    fused_activation = True
    latency_class = "conv"
    c = CKernel("transpose_conv", "transpose_conv_params")
    onnx = ("ConvTranspose",)
    torch_modules = ("ConvTranspose1d", "ConvTranspose2d")
    tflite_custom = ("Convolution2DTransposeBias",)  # MediaPipe's (selfie segmentation), float

    def from_tflite_custom(self, r, code, options, graph, ins, outs):
        """MediaPipe's ``Convolution2DTransposeBias``: inputs [input, weights OHWI, bias], custom options the
        raw ``TfLiteTransposeConvParams`` (little-endian int32 padding 1 SAME / 2 VALID, stride_w, stride_h).
        Its output is ``stride (in - 1) + k - P`` with P = max(0, k - (in - 1) % stride - 1) under SAME (0
        under VALID), cropped by P // 2 before: a TRANSPOSE_CONV of that output shape whose TFLite padding
        crops the same, checked per axis."""
        import struct

        from tinyopt.graph.ir import Tensor

        if len(ins) != 3 or len(outs) != 1 or not all(ins):
            r.fail(f"{code} has {len(ins)} inputs and {len(outs)} outputs; it takes input, weights and bias")
        if len(options) < 12:
            r.fail(f"{code} custom options hold {len(options)} bytes; TfLiteTransposeConvParams needs 12")
        pad_code, sw, sh = struct.unpack_from("<iii", options)
        pad = {1: "SAME", 2: "VALID"}.get(pad_code, "")
        if not pad or min(sw, sh) <= 0:
            r.fail(f"{code} padding code {pad_code}, strides {sh}x{sw}: expected 1 (SAME) or 2 (VALID) and "
                   "positive strides")
        x, w, y = graph.tensors[ins[0]], graph.tensors[ins[1]], graph.tensors[outs[0]]
        if len(x.shape) != 4 or len(w.shape) != 4 or w.shape[3] != x.shape[3]:
            r.fail(f"{code} input {list(x.shape)} and weights {list(w.shape)} are not NHWC and OHWI")
        out = []
        for size, k, st in ((x.shape[1], w.shape[1], sh), (x.shape[2], w.shape[2], sw)):
            cut = max(0, k - (size - 1) % st - 1) if pad == "SAME" else 0
            out.append(st * (size - 1) + k - cut)
            if tflm_padding(out[-1], k, st, pad) != cut // 2:
                r.fail(f"{code} crops {cut // 2} before on a {out[-1]}-wide output, TRANSPOSE_CONV's {pad} "
                       f"padding {tflm_padding(out[-1], k, st, pad)}: not expressible", "re-export the layer "
                       "as a TRANSPOSE_CONV")
        shape = (x.shape[0], out[0], out[1], w.shape[0])
        if tuple(y.shape) != shape:
            r.fail(f"{code} output is stored as {list(y.shape)}; its parameters give {list(shape)}")
        name = graph.unique_name(f"{outs[0]}/output_shape")
        graph.add_tensor(Tensor(name, (4,), "int32", data=np.asarray(shape, np.int32)))
        return Node(outs[0], self.name, [name, ins[1], ins[0], ins[2]], list(outs),
                    {"padding": pad, "stride": (sh, sw), "activation": "NONE"})

    def read_tflite(self, r, ins, out):
        r.ranks(ins, (1, 4, 4))
        attrs = super().read_tflite(r, ins, out)
        if len(ins) > B and ins[B] is not None and ins[B].shape != (ins[W].shape[0],):
            r.fail(f"bias has shape {list(ins[B].shape)}, expected [{ins[W].shape[0]}]")
        return attrs

    def version(self, graph, node):
        if node.attrs.get("activation", "NONE") not in ("NONE", None):
            return 4
        if has_bias_operand(node):
            return 3
        return 2 if graph.tensors[node.inputs[W]].dtype == "int8" else 1

    def check_dtypes(self, ins, out):
        x, w = ins[X], ins[W]
        b = ins[B] if len(ins) > B else None
        ok = {"float32": ("float32", "float32"), "int8": ("int8", "int32")}.get(x.dtype)
        if ok is None or out.dtype != x.dtype or w.dtype != ok[0] or (b is not None and b.dtype != ok[1]):
            bias = b.dtype if b else "no"
            return f"has {x.dtype} input, {w.dtype} weights, {bias} bias and {out.dtype} output"
        if ins[0].dtype != "int32":
            return f"has a {ins[0].dtype} output shape (int32 expected)"
        return None

    def is_integer(self, graph, node):
        return graph.tensors[node.inputs[X]].dtype == "int8"

    def shape(self, graph, node, fail):
        x, w = graph.tensors[node.inputs[X]], graph.tensors[node.inputs[W]]
        shape = output_shape_of(graph, node, fail)
        if len(x.shape) != 4 or len(w.shape) != 4:
            fail(f"expects a 4-D input and weight, got {list(x.shape)} and {list(w.shape)}",
                 "give an NHWC input and [O, KH, KW, I] weights")
        if w.shape[3] != x.shape[3] or shape[3] != w.shape[0] or shape[0] != x.shape[0]:
            fail(f"output shape {list(shape)}, weights {list(w.shape)} and input "
                 f"{list(x.shape)} do not agree",
                 "give weights [O, KH, KW, I] with I the input's channels and O the output shape's")
        sh, sw = (int(v) for v in node.attrs.get("stride", (1, 1)))
        if min(sh, sw) <= 0:
            fail(f"stride {sh}x{sw} must be positive", "use strides of at least 1")
        if node.attrs.get("padding", "VALID") == "VALID" and (shape[1] < w.shape[1] or shape[2] < w.shape[2]):
            fail(f"a VALID output {shape[1]}x{shape[2]} is smaller than the {w.shape[1]}x{w.shape[2]} kernel",
                 "use SAME padding or a larger output shape")
        return shape

    def macs(self, graph, node):
        """Every input value times every weight it meets, as TFLM's scatter runs them (taps cropped at the
        border and the zero rows a door pads the kernel with included)."""
        o, kh, kw, _ = graph.tensors[node.inputs[W]].shape
        return graph.tensors[node.inputs[X]].size * kh * kw * o

    def other_ops(self, graph, node):
        return graph.tensors[node.outputs[0]].size if has_bias_operand(node) else 0

    def param_formula(self, graph, node):
        o, kh, kw, i = graph.tensors[node.inputs[W]].shape
        b = has_bias_operand(node)
        return f"({kh}×{kw}×{c.n(i)}{'+1' if b else ''})×{c.n(o)} = {c.n((kh * kw * i + b) * o)}"

    def mac_formula(self, graph, node):
        x = graph.tensors[node.inputs[X]]
        o, kh, kw, _ = graph.tensors[node.inputs[W]].shape
        return f"{c.dims(x.shape[1:])} inputs × {kh}×{kw}×{c.n(o)} = {c.n(x.size * kh * kw * o)}"

    def scale_channels(self, g, node, before, keep, last):
        o, kh, kw, _ = before.tensors[node.inputs[W]].shape
        o2 = o if last else max(1, round(o * keep))
        c.resize(g.tensors[node.inputs[W]], (o2, kh, kw, g.tensors[node.inputs[X]].shape[-1]))
        if has_bias_operand(node):
            c.resize(g.tensors[node.inputs[B]], (o2,))
        shape = g.tensors[node.inputs[0]]
        shape.data = np.asarray([*np.asarray(shape.data).ravel()[:3], o2], np.int32)
        return True

    def prepare(self, graph, node, is_int):
        x, w, y = graph.tensors[node.inputs[X]], graph.tensors[node.inputs[W]], graph.tensors[node.outputs[0]]
        if x.dtype not in ("float32", "int8"):
            c.unsupported(graph, node, f"a {x.dtype} transposed convolution: tinyopt's runtime has the "
                          "float32 and int8 kernels", "convert with int8 activations")
        if w.data is None:
            c.unsupported(graph, node, "weights computed at run time", "give the weights as a constant")
        pad = node.attrs.get("padding", "VALID")
        if pad not in ("SAME", "VALID"):
            c.fail(graph, node, f"padding '{pad}' is not SAME or VALID",
                   "re-export with SAME or VALID padding")
        sh, sw = (int(v) for v in node.attrs.get("stride", (1, 1)))
        o, kh, kw, _ = w.shape
        p = dict(stride_h=sh, stride_w=sw, padding=pad, out_h=y.shape[1], out_w=y.shape[2],
                 padding_h=tflm_padding(y.shape[1], kh, sh, pad),
                 padding_w=tflm_padding(y.shape[2], kw, sw, pad),
                 **c.output_range(graph, node, is_int))
        if not is_int:
            return TransposeConvData(dtype="float32", **p)
        in_s, in_z = c.scalar_qparams(graph, node, node.inputs[X])
        out_s, out_z = c.scalar_qparams(graph, node, node.outputs[0])
        w_s, w_z = c.tensor_qparams(graph, node, node.inputs[W], per_channel=True)
        if w_s.size not in (1, o):
            c.fail(graph, node, f"weight has {w_s.size} scales for {o} output channels",
                   "give one scale per output channel or one per tensor")
        if np.any(w_z != 0):
            c.unsupported(graph, node, "weights with a non-zero zero point (TFLM ignores it)",
                          "quantize weights symmetrically (int8 spec)")
        eff = np.float64(in_s) * np.broadcast_to(w_s, (o,)).astype(np.float64) / np.float64(out_s)
        mult, shift = quantize_multipliers(eff)
        return TransposeConvData(dtype="int8", **p, input_offset=-in_z, output_offset=out_z,
                                 output_multiplier=mult, output_shift=shift)

    def eval(self, p: TransposeConvData, inputs):
        x, w = inputs[X], inputs[W]
        bias = inputs[B] if len(inputs) > B and inputs[B] is not None else None
        n, h, wd, _ = x.shape
        o, kh, kw, i = w.shape
        is_int = p.dtype == "int8"
        # every input pixel times every tap: (n, h, w, kh, kw, o), one exact product for int8 (|x| <= 255,
        # |w| <= 128: float64 sums stay far below 2^53)
        xs = x.astype(np.float64) + p.input_offset if is_int else x.astype(np.float32)
        taps = (xs.reshape(-1, i) @ w.reshape(-1, i).T.astype(xs.dtype)).reshape(n, h, wd, o, kh, kw)
        full = np.zeros((n, (h - 1) * p.stride_h + kh, (wd - 1) * p.stride_w + kw, o), xs.dtype)
        for ky in range(kh):
            for kx in range(kw):
                full[:, ky: ky + (h - 1) * p.stride_h + 1: p.stride_h,
                     kx: kx + (wd - 1) * p.stride_w + 1: p.stride_w] += taps[..., ky, kx]
        oh, ow = p.out_h, p.out_w
        grown = np.zeros((n, max(full.shape[1], p.padding_h + oh), max(full.shape[2], p.padding_w + ow), o),
                         xs.dtype)  # an output that reaches past the scatter gets zeros (plus the bias)
        grown[:, : full.shape[1], : full.shape[2]] = full
        acc = grown[:, p.padding_h: p.padding_h + oh, p.padding_w: p.padding_w + ow]
        if is_int:
            acc = acc.astype(np.int64) + (bias.astype(np.int64) if bias is not None else 0)
            return c.requantize(acc, p)
        return c.clamp_float(acc + (bias.astype(np.float32) if bias is not None else np.float32(0)), p)

    def quantize(self, q, index, node):
        """Weights per output channel, the bias at input scale × weight scale (the input is operand 2, not
        0), the output shape kept as it is."""
        out = node.outputs[0]
        q.qp[out] = q.output_params(self.quant, index, node, out)
        w, w_scale = q.weight(node.inputs[W], self.weight_axis, index, node)
        ins = [q.copy_constant(node.inputs[0], index, node), w, q.rename[node.inputs[X]]]
        if has_bias_operand(node):
            ins.append(q.bias(node.inputs[B], q.qp[node.inputs[X]][0], w_scale, index, node))
        return q.emit(node, ins)

    def pack_c(self, graph, index, node):
        from tinyopt.export.c import params as cp

        x, w, y = graph.tensors[node.inputs[X]], graph.tensors[node.inputs[W]], graph.tensors[node.outputs[0]]
        cp.check_int8(graph, index, node, [x, y, w])
        q = self.prepare(graph, node, True)
        _, ih, iw, ic = x.shape
        _, oh, ow, oc = y.shape
        _, kh, kw, _ = w.shape
        bias = np.zeros(oc, np.int64)
        if has_bias_operand(node):
            bias = np.asarray(graph.tensors[node.inputs[B]].data, np.int64).reshape(-1)
        wq = np.asarray(w.data, np.int8)
        (y0, y1), (x0, x1) = _tap_range(wq.any(axis=(0, 2, 3))), _tap_range(wq.any(axis=(0, 1, 3)))
        ints = dict(in_h=ih, in_w=iw, in_c=ic, out_h=oh, out_w=ow, out_c=oc, filter_h=kh, filter_w=kw,
                    tap_y0=y0, tap_y1=y1, tap_x0=x0, tap_x1=x1,
                    stride_h=q.stride_h, stride_w=q.stride_w, padding_h=q.padding_h, padding_w=q.padding_w,
                    input_offset=q.input_offset, output_offset=q.output_offset,
                    output_activation_min=q.output_activation_min,
                    output_activation_max=q.output_activation_max)
        arrays = {"weights": ("int8_t", wq),
                  "bias": ("int32_t", cp.int32_or_fail(bias, graph, index, node)),
                  "multiplier": ("int32_t", cp.per_channel(q.output_multiplier, oc)),
                  "shift": ("int32_t", cp.per_channel(q.output_shift, oc))}
        return cp.OpParams("transpose_conv", ints, arrays, signature="lists")

    # -- doors (framework weight [I, O/groups, KH, KW] or [I, O/groups, K])
    def from_onnx(self, cv, node, name, a, ins):
        x = cv.val(ins[0])
        w = cv.const(ins[1], "weight").astype(np.float32)
        bias = cv.const(ins[2], "bias").astype(np.float32) if len(ins) > 2 and ins[2] else None
        k = w.ndim - 2
        if k not in (1, 2):
            cv.b.unsupported(f"a {k}-D ConvTranspose", "use 1-D or 2-D transposed convolutions")
        kernel = tuple(int(v) for v in a.get("kernel_shape", w.shape[2:]))
        strides = tuple(int(v) for v in a.get("strides", [1] * k))
        dil = tuple(int(v) for v in a.get("dilations", [1] * k))
        out_pad = tuple(int(v) for v in a.get("output_padding", [0] * k))
        sizes = x.shape[2:]
        eff = [(kk - 1) * d + 1 for kk, d in zip(kernel, dil)]
        full = [s * (n - 1) + op + e for s, n, op, e in zip(strides, sizes, out_pad, eff)]
        auto = a.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        if "output_shape" in a or auto in ("SAME_UPPER", "SAME_LOWER"):
            outs = [int(v) for v in a["output_shape"]][-k:] if "output_shape" in a else [s * n for s, n in
                                                                                       zip(strides, sizes)]
            totals = [f - o for f, o in zip(full, outs)]
            if min(totals) < 0:
                cv.b.unsupported(f"ConvTranspose output_shape {outs} larger than its {full} values",
                                 "give pads and output_padding instead of output_shape")
            lead = [t // 2 if auto == "SAME_UPPER" else t - t // 2 for t in totals]  # the spec's rule
        else:
            pads = [0] * 2 * k if auto == "VALID" else [int(v) for v in a.get("pads", [0] * 2 * k)]
            lead, outs = pads[:k], [f - pads[j] - pads[k + j] for j, f in enumerate(full)]
        return from_framework(cv.b, name, x, w, bias, strides, lead, outs, dil, int(a.get("group", 1)))

    def from_torch_module(self, cv, n, m, name, out_shape):
        if m.padding_mode != "zeros":
            cv.b.unsupported(f"padding_mode='{m.padding_mode}'", "use padding_mode='zeros'")
        return from_framework(cv.b, name, cv.val(n.args[0]), cv.np(m.weight), cv.np(m.bias), tuple(m.stride),
                              list(m.padding), list(out_shape[2:]), tuple(m.dilation), m.groups)


def _tap_range(nonzero: npt.ArrayLike) -> tuple[int, int]:
    """[first, last + 1) of the kernel rows (or columns) holding a non-zero weight: the C kernel skips the
    zero rows and columns the doors pad kernels with (they add nothing to any sum)."""
    idx = np.flatnonzero(nonzero)
    return (int(idx[0]), int(idx[-1]) + 1) if idx.size else (0, 0)


def has_bias_operand(node: Node) -> bool:
    return len(node.inputs) > B and bool(node.inputs[B])


def tflite_kernel(k: int, stride: int, dilation: int, lead: int, out: int, same: bool) -> tuple[int, int]:
    """(zeros before, zeros after) the dilated kernel along one axis so that TFLite's padding (SAME when
    ``same``, else VALID) crops what a framework transposed convolution crops: ``lead`` values before its
    first output, ``out`` values kept.

    The framework output is ``full[lead: lead + out]`` where ``full`` is the uncropped scatter. TFLite's
    output is ``full'[P: P + out]``, P its padding for ``out`` (``tflm_padding``), ``full'`` the scatter of a
    kernel with ``d`` zeros before (which delays everything by d) and ``e`` after; so P - d = lead is needed.
    VALID (P = 0) serves lead = 0 as it is. Under SAME, P = (A + d + e) // 2 with A the padding total of the
    bare kernel, so d = max(0, A - 2 lead) and e = 2 lead + d - A give exactly P = lead + d.

    >>> tflite_kernel(3, 2, 1, 1, 8, same=True)  # nn.ConvTranspose2d(k=3, s=2, p=1, output_padding=1)
    (0, 1)
    >>> tflite_kernel(4, 2, 1, 1, 8, same=True), tflite_kernel(3, 1, 1, 0, 6, same=False)
    ((0, 0), (0, 0))
    """
    if not same:
        return 0, 0
    a = ((out + stride - 1) // stride - 1) * stride + (k - 1) * dilation + 1 - out
    d = max(0, a - 2 * lead)
    return d, 2 * lead + d - a


def from_framework(b, name: str, x, weight: np.ndarray, bias, stride, lead, outs, dilation, groups: int):
    """A framework transposed convolution (weight [I, O/g, KH, KW] or [I, O/g, K]) as one TRANSPOSE_CONV."""
    k = weight.ndim - 2
    if groups != 1:
        what = "a depthwise" if groups == x.shape[1] else f"a grouped ({groups} groups)"
        b.unsupported(f"{what} transposed convolution (TFLite's TRANSPOSE_CONV has no groups)",
                      "use groups=1, or upsample then a depthwise Conv2d")
    if (k == 2 and x.layout != "nchw") or (k == 1 and x.layout != "ncl"):
        b.unsupported(f"a {k}-D transposed convolution on a {x.layout} tensor {list(x.shape)}",
                      "feed it an (N, C, H, W) or (N, C, L) tensor")
    if weight.shape[0] != x.shape[1]:
        b.unsupported(f"weight for {weight.shape[0]} input channels on an input with {x.shape[1]}",
                      "export the model again; the weight does not fit the layer's input")
    if k == 1:  # 1-D runs as 2-D with H = 1
        weight, stride, dilation = weight[:, :, None], (1, *stride), (1, *dilation)
        lead, outs = [0, *lead], [1, *outs]
    if min(outs) <= 0:
        b.unsupported(f"a transposed convolution with output size {outs}", "check pads and output_padding")
    eff = [(kk - 1) * d + 1 for kk, d in zip(weight.shape[2:], dilation)]
    same = any(lead) or any(o < e for o, e in zip(outs, eff))  # VALID crops nothing and needs out >= kernel
    plans = [tflite_kernel(kk, s, d, p, o, same)
             for kk, s, d, p, o in zip(weight.shape[2:], stride, dilation, lead, outs)]
    o_ch = weight.shape[1]
    size = [e + before + after for e, (before, after) in zip(eff, plans)]
    taps = np.zeros((o_ch, *size, x.shape[1]), np.float32)
    wt = np.transpose(weight, (1, 2, 3, 0))  # [O, KH, KW, I]; no flip: TFLite scatters, as the frameworks do
    (dy, _), (dx, _) = plans
    taps[:, dy: dy + eff[0]: dilation[0], dx: dx + eff[1]: dilation[1]] = wt
    shape = b.const(f"{name}/output_shape", np.asarray([1, outs[0], outs[1], o_ch], np.int32), "int32")
    ins = [shape, b.const(f"{name}/weight", taps), x.name]
    if bias is not None:
        ins.append(b.const(f"{name}/bias", np.asarray(bias, np.float32)))
    attrs = {"padding": "SAME" if same else "VALID", "stride": (int(stride[0]), int(stride[1])),
             "activation": "NONE"}
    return b.emit(name, TransposeConv.name, ins, attrs, x.layout)
