"""CONV_2D: 2-D convolution, NHWC input, weight ``[O, KH, KW, I]``, optional bias ``[O]``.

Integer path as TFLM's ``ConvPerChannel``: acc = Σ (x + input_offset) · w + bias, then per-channel
requantization. The numpy kernel runs im2col and one exact matrix product: |x + input_offset| <= 255 and
|w| <= 128, so a float32 dot product of up to 512 terms stays below 2^24 where every integer is exact.
The C kernel folds the input offset into the bias (``sum w*(x+off) = sum w*x + off*sum w``) and feeds the
input zero point at padded taps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tinyopt.errors import ModelFormatError, UnsupportedOpError
from tinyopt.graph.ir import Graph, Node, QuantParams, Tensor
from tinyopt.ops import _common as c
from tinyopt.ops import _int16, _int16_c
from tinyopt.ops._record import CKernel, Op, OpData, Options, QuantRule, activation, padding, pair, register
from tinyopt.runtime.fixedpoint import quantize_multipliers

_CHUNK_ELEMS = 1 << 22  # im2col elements per batch slice (bounded memory)
_EXACT_F32_TERMS = 512


@dataclass(kw_only=True)
class ConvData(c.Geometry, c.ActivationRange, OpData):
    depth_multiplier: int = 1
    input_offset: int = 0                # -input zero point
    weights_offset: int = 0              # -weight zero point (0 under the int8 spec)
    output_offset: int = 0               # output zero point
    output_multiplier: np.ndarray | None = None  # int32, one per output channel (or one)
    output_shift: np.ndarray | None = None       # int32, TFLM sign convention (positive = left)
    wide: bool = False                   # 16x8 with an int64 bias: int64 accumulator and requantization


def weighted_dtypes(ins: list[Tensor | None], out: Tensor) -> str | None:
    """The dtype combinations TFLite's conv / depthwise / dense kernels accept."""
    x, w = ins[0], ins[1]
    if x is None or w is None:
        return "has no input or no weights"
    b = ins[2] if len(ins) > 2 else None
    allowed = {"float32": (("float32", "int8"), ("float32",)), "int8": (("int8",), ("int32",)),
               "uint8": (("uint8",), ("int32",)), "int16": (("int8",), ("int64", "int32"))}
    if x.dtype not in allowed or out.dtype != x.dtype:
        return f"maps {x.dtype} input to {out.dtype} output"
    if w.dtype not in allowed[x.dtype][0] or (b is not None and b.dtype not in allowed[x.dtype][1]):
        return f"has {x.dtype} input with {w.dtype} weights and {b.dtype if b else 'no'} bias"
    return None


def weighted_version(graph: Graph, node: Node) -> int:
    x, w = (t.dtype if t is not None else None for t in graph.node_inputs(node)[:2])
    if x == "int8":
        return 3
    if x == "float32" and w == "int8":
        return 2  # hybrid
    return 1


def add_zero_bias(graph: Graph, node: Node, channels: int) -> None:
    """A zero bias for a bias-less convolution: LiteRT refuses one without, and TFLM and LiteRT crash on a
    bias-less depthwise one (int8: int32 zeros with scale = input scale x weight scale, per the spec)."""
    if len(node.inputs) > 2 and node.inputs[2]:
        return
    x, w = graph.tensors[node.inputs[0]], graph.tensors[node.inputs[1]]
    dtype, quant = "float32", None
    if x.dtype in ("int8", "uint8", "int16"):
        dtype = "int64" if x.dtype == "int16" else "int32"
        if x.quant is not None and w.quant is not None:
            scale = np.float32(x.quant.scale[0]) * w.quant.scale.astype(np.float32)
            quant = QuantParams(scale, np.zeros(scale.size), axis=0)
    name = graph.unique_name(f"{node.name}_zero_bias")
    graph.add_tensor(Tensor(name, (channels,), dtype, data=np.zeros(channels, np.dtype(dtype)), quant=quant))
    node.inputs = [*node.inputs[:2], name]


def has_bias(node: Node) -> bool:
    return len(node.inputs) > 2 and bool(node.inputs[2])


def bias_other_ops(graph: Graph, node: Node) -> int:
    """One add per output element when there is a bias."""
    has_bias = len(node.inputs) > 2 and bool(node.inputs[2])
    return graph.tensors[node.outputs[0]].size if has_bias else 0


def prepare_conv_like(graph: Graph, node: Node, is_int: bool, depthwise: bool) -> ConvData:
    x = graph.tensors[node.inputs[0]]
    w = graph.tensors[node.inputs[1]]
    if len(x.shape) != 4 or len(w.shape) != 4:
        c.fail(graph, node, f"expects 4-D input and weight, got {list(x.shape)} and {list(w.shape)}",
               "reshape to NHWC before this layer")
    _, kh, kw, _ = w.shape
    p = c.geometry(graph, node, x.shape, kh, kw)
    if depthwise:
        out_c = w.shape[3]
        m = int(node.attrs.get("depth_multiplier", 0) or out_c // x.shape[3])
        if m <= 0 or x.shape[3] * m != out_c:
            c.fail(graph, node,
                   f"{out_c} output channels are not {x.shape[3]} input channels x multiplier {m}",
                   "fix the depthwise weight shape or depth_multiplier")
        p["depth_multiplier"] = m
    else:
        out_c = w.shape[0]
        if w.shape[3] != x.shape[3]:
            c.fail(graph, node, f"weight expects {w.shape[3]} input channels, input has {x.shape[3]}",
                   "fix the weight shape")
    p.update(c.output_range(graph, node, is_int))
    if not is_int:
        return ConvData(dtype="float32", **p)
    in_s, in_z = c.scalar_qparams(graph, node, node.inputs[0])
    out_s, out_z = c.scalar_qparams(graph, node, node.outputs[0])
    w_s, _ = c.tensor_qparams(graph, node, node.inputs[1], per_channel=True)
    if w_s.size not in (1, out_c):
        c.fail(graph, node, f"weight has {w_s.size} scales for {out_c} output channels",
               "give one scale per output channel or one per tensor")
    w_s = np.broadcast_to(w_s, (out_c,))
    eff = np.float64(in_s) * w_s.astype(np.float64) / np.float64(out_s)
    mult, shift = quantize_multipliers(eff)
    if x.dtype == "int16":  # TFLM's 16x8 kernels: no offsets at all, int64 (or int32) accumulators
        _int16.zero_points_zero(graph, node, [node.inputs[0], node.outputs[0]],
                                "TFLM's 16x8 convolutions ignore zero points")
        wide = _int16.bias_kind(graph, node, ("int64",) if depthwise else ("int64", "int32"))
        return ConvData(dtype="int16", **p, input_offset=0, weights_offset=0, output_offset=0,
                        output_multiplier=mult, output_shift=shift, wide=wide)
    return ConvData(dtype="int8", **p, input_offset=-in_z, weights_offset=0, output_offset=out_z,
                    output_multiplier=mult, output_shift=shift)


def im2col(xp: np.ndarray, p: c.Geometry) -> np.ndarray:
    """(N * OH * OW, KH*KW*C) patches in the weight's (KH, KW, C) order."""
    taps = [c.window(xp, p, i, j) for i in range(p.filter_h) for j in range(p.filter_w)]
    cols = np.stack(taps, axis=3)  # N, OH, OW, KH*KW, C
    return cols.reshape(xp.shape[0] * p.out_h * p.out_w, -1)


def exact_int_matmul(cols: np.ndarray, wt: np.ndarray) -> np.ndarray:
    """cols (M, K) @ wt (K, O) for small integers held in float32, exact, as int64."""
    k = cols.shape[1]
    if k <= _EXACT_F32_TERMS:
        return (cols @ wt).astype(np.int64)
    acc = np.zeros((cols.shape[0], wt.shape[1]), np.int64)
    for s in range(0, k, _EXACT_F32_TERMS):
        acc += (cols[:, s: s + _EXACT_F32_TERMS] @ wt[s: s + _EXACT_F32_TERMS]).astype(np.int64)
    return acc


def pack_conv_like(graph: Graph, index: int, node: Node, depthwise: bool):
    """The C parameter struct of a conv or depthwise layer and its constant arrays in the kernels' layouts."""
    from tinyopt.export.c import compressed
    from tinyopt.export.c import params as cp

    if (packed := compressed.pack(graph, index, node)) is not None:  # weights kept compressed (issue #17)
        return packed

    x, w = graph.tensors[node.inputs[0]], graph.tensors[node.inputs[1]]
    y = graph.tensors[node.outputs[0]]
    cp.check_int8(graph, index, node, [x, y, w])
    q = prepare_conv_like(graph, node, True, depthwise)
    _, ih, iw, ic = x.shape
    _, oh, ow, oc = y.shape
    _, kh, kw, _ = w.shape
    wq = np.asarray(w.data, dtype=np.int64)
    wsum = wq.sum(axis=(0, 1, 2)) if depthwise else wq.reshape(oc, -1).sum(axis=1)
    bias = cp.bias_of(graph, node, oc) + q.input_offset * wsum
    ints: dict[str, Any] = dict(
        in_h=ih, in_w=iw, in_c=ic, out_h=oh, out_w=ow, out_c=oc, filter_h=kh, filter_w=kw,
        stride_h=q.stride_h, stride_w=q.stride_w, dilation_h=q.dilation_h, dilation_w=q.dilation_w,
        padding_h=q.padding_h, padding_w=q.padding_w, depth_multiplier=q.depth_multiplier,
        input_zero_point=-q.input_offset, output_offset=q.output_offset,
        output_activation_min=q.output_activation_min, output_activation_max=q.output_activation_max)
    if depthwise:  # channel-major [O][KH*KW]: one channel's taps are adjacent
        if kh * kw > cp.MAX_DW_TAPS:
            raise UnsupportedOpError(f"a {kh}x{kw} depthwise kernel has more than {cp.MAX_DW_TAPS} taps",
                                     path=graph.source, where=cp.where(index, node),
                                     fix="use a depthwise kernel of at most 8x8")
        weights = wq.reshape(kh * kw, oc).T
    else:  # [O][patch], the patch zero-padded to a multiple of 4 for the 4-byte SIMD loads
        k = kh * kw * ic
        padded = np.zeros((oc, cp.patch_bytes(k)), np.int64)
        padded[:, :k] = wq.reshape(oc, k)
        weights = cp.interleave_pairs(padded)  # the layout of the 2-pixel x 2-filter loops
    ints["patch"] = 0 if depthwise else cp.patch_bytes(kh * kw * ic)
    abs_sums = np.abs(wq).sum(axis=(0, 1, 2)) if depthwise else np.abs(wq).reshape(oc, -1).sum(axis=1)
    ints["small_acc"] = cp.small_accumulator(bias, abs_sums, q.output_shift)
    arrays = {"weights": ("int8_t", weights.astype(np.int8)),
              "bias": ("int32_t", cp.int32_or_fail(bias, graph, index, node)),
              "multiplier": ("int32_t", cp.per_channel(q.output_multiplier, oc)),
              "shift": ("int32_t", cp.per_channel(q.output_shift, oc))}
    # the M4 loops' constants: a dead filter's channel (all weights zero) outputs a constant
    m4_bias, m4_mult, m4_shift, m4_small, constants = cp.constant_channels(
        wq.reshape(-1, oc).T if depthwise else wq.reshape(oc, -1), arrays["bias"][1], arrays["multiplier"][1],
        arrays["shift"][1], q.output_offset)
    m4 = (m4_bias, m4_mult, m4_shift, q.output_offset, m4_small)
    pairs = None
    if depthwise:
        arrays["pad_row"] = ("int8_t", np.full(ic, -q.input_offset, np.int64))
        if (kh, kw) == (3, 3) and ints["depth_multiplier"] == 1 and oc % 4 == 0 and q.stride_h in (1, 2) and \
                (q.dilation_h, q.dilation_w) == (1, 1):  # the M4's pair loop: two rows at once
            pairs = cp.pack_depthwise_pairs(wq.reshape(9, oc), *m4, constants)
        if pairs is not None:
            arrays["lanes"] = ("int32_t", pairs[0])
            arrays["rq"] = ("int32_t", pairs[1])
    ints["dw_pairs"] = int(pairs is not None)
    # the M4's 2-pixel x 4-filter loop reads each patch row straight from its input row when the taps of a
    # row are adjacent: its layout pads every row to whole words (zero weights meet the next bytes)
    ints["twin_row"] = 0 if depthwise or q.dilation_w != 1 else cp.patch_bytes(kw * ic)
    twins = None
    if not depthwise:
        twin_w = padded if not ints["twin_row"] else np.pad(
            wq.reshape(oc, kh, kw * ic), ((0, 0), (0, 0), (0, ints["twin_row"] - kw * ic))).reshape(oc, -1)
        twins = cp.pack_conv_twins(twin_w, *m4, constants)
    if twins is None:
        ints["twin_row"] = 0
    ints["row_pairs"] = int(twins is not None and ow % 2 == 1 and oh > 1)
    if twins is not None:  # twin weight words and their own requantization
        arrays["wpairs"] = ("int32_t", twins[0])
        arrays["rq"] = ("int32_t", twins[1])
    kernel = "depthwise_conv2d" if depthwise else "conv2d"
    # an odd width leaves rows and 1-row bands a lone pixel: the M4 single-pixel loop (kernels/conv2d_lone.c);
    # a stride of 2 on the depthwise pair loop: its stride-2 variants (kernels/depthwise_s2.c)
    lone: dict[str, Any] = {}
    if twins is not None and ow % 2:
        lone = dict(struct="conv_params", entry="conv2d_lone", files=("conv2d", "conv2d_lone", "add"))
    if pairs is not None and 2 in (q.stride_h, q.stride_w):
        lone = dict(struct="conv_params", entry="depthwise_conv2d_s2",
                    files=("depthwise_conv2d", "depthwise_s2", "add"))
    if depthwise:  # the pair loop's band: per input column the words of the 5 input rows of two output rows
        col = 20 * ((min(ow, cp.DW_SPAN) - 1) * q.stride_w + 3) if pairs is not None else 0
    else:
        col = 4 * max(ints["patch"], kh * ints["twin_row"])
    two_rows = pairs is not None or ints["row_pairs"]  # two output rows finished at once
    return cp.OpParams(kernel, ints, arrays, signature="rows_col",
                       optional=("pad_row", "lanes", "rq", "add", "wpairs"), inplace="rows", fuses_add=True,
                       col_bytes=col, scratch_rows=2 if two_rows else 1, fused_asm=not depthwise,
                       stream="window", **lone)


# -- the framework doors (channels-first weights) --------------------------------------------------------

def from_nchw(b, name: str, x, weight: np.ndarray, bias: np.ndarray | None, stride, pads, dilation,
              groups: int):
    """Conv with framework weight [O, I/g, KH, KW] (or [O, I/g, K] for 1-D) and pads (t, b, l, r):
    CONV_2D, or DEPTHWISE_CONV_2D when every input channel has its own group."""
    from tinyopt.ops import depthwise_conv_2d, pad

    weight = np.asarray(weight, dtype=np.float32)
    if weight.ndim == 3:  # 1-D conv as a 2-D conv over (1, L)
        if x.layout != "ncl":
            b.unsupported(f"a 1-D convolution on a {len(x.shape)}-D input {list(x.shape)}",
                          "feed Conv1d a (N, C, L) tensor")
        weight = weight[:, :, None, :]
        stride, dilation, pads = (1, stride[-1]), (1, dilation[-1]), (0, 0, pads[-2], pads[-1])
    elif x.layout == "plain" and len(x.shape) == 4 and not x.permuted:  # (N, C, H, W) held in that order
        from tinyopt.ops.transpose import as_nchw

        x = as_nchw(b, f"{name}/nhwc", x)
    elif x.layout != "nchw":
        b.unsupported(f"a 2-D convolution on a {len(x.shape)}-D input {list(x.shape)}",
                      "feed Conv2d an (N, C, H, W) tensor")
    o, ipg, kh, kw = weight.shape
    cin = x.shape[1]
    if ipg * groups != cin:
        raise ModelFormatError(f"weight expects {ipg * groups} input channels, input has {cin}",
                               path=b.g.source, where=b.where, fix="re-export the model")
    if groups == 1:
        op, w, attrs = Conv2D.name, weight.transpose(0, 2, 3, 1), {}
    elif groups == cin and o % cin == 0:
        op, w = depthwise_conv_2d.DepthwiseConv2D.name, weight.transpose(1, 2, 3, 0)
        attrs = {"depth_multiplier": o // cin}
    else:
        return b.unsupported(f"a grouped convolution with groups={groups} (neither 1 nor depthwise)",
                             "use groups=1 or groups=in_channels")
    x, pad_mode = pad.resolve_padding(b, name, x, (kh, kw), stride, dilation, pads, allow_pad=True)
    attrs.update(stride=tuple(stride), dilation=tuple(dilation), padding=pad_mode, activation="NONE")
    ins = [x.name, b.const(f"{name}/weight", w), b.const(f"{name}/bias", bias) if bias is not None else ""]
    return b.emit(name, op, ins, attrs, x.layout)


def spec_conv(sb, kind: str, layer: dict, x: Tensor, lname: str, fused: str, depthwise: bool) -> Node:
    """A conv2d / depthwise_conv2d layer of a YAML spec (weights without values)."""
    if len(x.shape) != 4:
        sb.fail(f"{kind} needs an H×W×C input, got {list(x.shape[1:])}",
                "give 'input' as [H, W, C] or remove the flatten before it")
    kh, kw = sb.pair(layer.get("kernel"), "kernel")
    attrs = {"stride": sb.pair(layer.get("stride", 1), "stride"),
             "dilation": sb.pair(layer.get("dilation", 1), "dilation"),
             "padding": sb.padding(layer), "activation": fused}
    cin = x.shape[3]
    if not depthwise:
        cout = sb.positive_int(layer, "filters")
        w = sb.const(f"{lname}/weight", (cout, kh, kw, cin))
        op = Conv2D.name
    else:
        m = sb.positive_int(layer, "depth_multiplier", 1)
        cout = cin * m
        attrs["depth_multiplier"] = m
        w = sb.const(f"{lname}/weight", (1, kh, kw, cout))
        from tinyopt.ops.depthwise_conv_2d import DepthwiseConv2D

        op = DepthwiseConv2D.name
    ins = [x.name, w, sb.const(f"{lname}/bias", (cout,)) if layer.get("use_bias", True) else ""]
    return Node(lname, op, ins, [sb.out(lname)], attrs)


_SPEC_KEYS = frozenset({"filters", "kernel", "stride", "padding", "dilation", "use_bias"})


@register
class Conv2D(Op):
    name = "CONV_2D"
    builtin = 3
    options = Options(1, (padding("padding", 0), pair("stride", 2, 1), activation("activation", 3),
                          pair("dilation", 5, 4, stored_default=1)))
    arity = (2, 3)
    optional_inputs = (2,)
    param_inputs = (1, 2)
    weight_axis = 0
    bias_input = 2
    quant = QuantRule(int16=True)  # TFLM's 16x8 kernel: int16 activations, int8 weights, int64 bias
    fused_activation = True
    absorbs_pad = True
    c = CKernel("conv2d", "conv_params", extra_files=("add",))
    onnx = ("Conv",)
    torch_modules = ("Conv1d", "Conv2d")
    spec_layers = {"conv2d": _SPEC_KEYS}
    spec_aliases = {"conv": "conv2d"}

    def read_tflite(self, r, ins, out):
        r.ranks(ins, (4, 4, 1))
        attrs = super().read_tflite(r, ins, out)
        r.bias(ins, ins[1].shape[0])
        return attrs

    def version(self, graph, node):
        return weighted_version(graph, node)

    def complete_operands(self, graph, node):
        add_zero_bias(graph, node, graph.tensors[node.inputs[1]].shape[0])

    def check_dtypes(self, ins, out):
        return weighted_dtypes(ins, out)

    def shape(self, graph, node, fail):
        x, w = graph.tensors[node.inputs[0]], graph.tensors[node.inputs[1]]
        o, kh, kw, i = w.shape
        if x.shape[-1] != i:
            fail(f"weight expects {i} input channels, input has {x.shape[-1]}",
                 "match the layer's input channels to the previous layer's output")
        oh, ow = c.window_output_hw(x.shape, kh, kw, node.attrs, fail)
        return (x.shape[0], oh, ow, o)

    latency_class = "conv"

    def macs(self, graph, node):
        _, kh, kw, cin = graph.tensors[node.inputs[1]].shape
        return graph.tensors[node.outputs[0]].size * kh * kw * cin

    def param_formula(self, graph, node):
        o, kh, kw, i = graph.tensors[node.inputs[1]].shape
        b = has_bias(node)
        return f"({kh}×{kw}×{c.n(i)}{'+1' if b else ''})×{c.n(o)} = {c.n((kh * kw * i + b) * o)}"

    def mac_formula(self, graph, node):
        out = graph.tensors[node.outputs[0]]
        _, kh, kw, i = graph.tensors[node.inputs[1]].shape
        return f"{c.dims(out.shape[1:])} outputs × {kh}×{kw}×{c.n(i)} = {c.n(out.size * kh * kw * i)}"

    def scale_channels(self, g, node, before, keep, last):
        o, kh, kw, _ = before.tensors[node.inputs[1]].shape
        o2 = o if last else max(1, round(o * keep))
        c.resize(g.tensors[node.inputs[1]], (o2, kh, kw, g.tensors[node.inputs[0]].shape[-1]))
        if has_bias(node):
            c.resize(g.tensors[node.inputs[2]], (o2,))
        return True

    def other_ops(self, graph, node):
        return bias_other_ops(graph, node)

    def prepare(self, graph, node, is_int):
        return prepare_conv_like(graph, node, is_int, depthwise=False)

    def eval(self, p: ConvData, inputs):
        x, w = inputs[0], inputs[1]
        bias = inputs[2] if len(inputs) > 2 and inputs[2] is not None else None
        n, out_c = x.shape[0], w.shape[0]
        is_int = p.dtype == "int8"
        wt = np.ascontiguousarray(w.reshape(out_c, -1).T.astype(np.float32))
        k = wt.shape[0]
        step = max(1, _CHUNK_ELEMS // max(1, p.out_h * p.out_w * k))
        outs = []
        for s in range(0, n, step):
            xb = x[s: s + step]
            if p.dtype == "int16":  # |x * w| <= 2^22: float64 sums are exact far beyond any patch size
                acc = (im2col(c.pad_spatial(xb.astype(np.float64), p, 0.0), p) @ wt.astype(np.float64))
                acc = acc.astype(np.int64)
                if bias is not None:
                    acc += bias.astype(np.int64)
                y = _int16.requantize_acc(acc, p)
            elif is_int:
                xs = xb.astype(np.float32) + np.float32(p.input_offset)
                acc = exact_int_matmul(im2col(c.pad_spatial(xs, p, 0), p), wt)
                if bias is not None:
                    acc += bias.astype(np.int64)
                y = c.requantize(acc, p)
            else:
                acc = im2col(c.pad_spatial(xb.astype(np.float32), p, 0.0), p) @ wt
                if bias is not None:
                    acc = acc + bias.astype(np.float32)
                y = c.clamp_float(acc, p)
            outs.append(y.reshape(len(xb), p.out_h, p.out_w, out_c))
        return np.concatenate(outs, axis=0)

    def pack_c(self, graph, index, node):
        if _int16_c.is_int16(graph, node):  # the 16x8 kernel (kernels/conv_int16.c)
            return _int16_c.pack_conv(graph, index, node, self.prepare(graph, node, True), depthwise=False)
        return pack_conv_like(graph, index, node, depthwise=False)

    def from_onnx(self, cv, node, name, a, ins):
        x = cv.val(ins[0])
        w = cv.const(ins[1], "weight")
        bias = cv.const(ins[2], "bias") if len(ins) > 2 and ins[2] else None
        k = w.ndim - 2
        kernel = tuple(a.get("kernel_shape", w.shape[2:]))
        strides, dil = tuple(a.get("strides", [1] * k)), tuple(a.get("dilations", [1] * k))
        pads = cv.pads(a, x, kernel, strides, dil, k)
        return from_nchw(cv.b, name, x, w, bias, strides, pads, dil, int(a.get("group", 1)))

    def from_torch_module(self, cv, n, m, name, out_shape):
        from tinyopt.graph.torch_import import torch_pads, tup

        k = 1 if type(m).__name__ == "Conv1d" else 2
        if m.padding_mode != "zeros":
            cv.b.unsupported(f"padding_mode='{m.padding_mode}'", "use padding_mode='zeros'")
        pads = torch_pads(m.padding, m.kernel_size, m.dilation, k)
        return from_nchw(cv.b, name, cv.val(n.args[0]), cv.np(m.weight), cv.np(m.bias),
                         tup(m.stride, 2)[-2:] if k == 2 else m.stride, pads, m.dilation, m.groups)

    def from_spec(self, sb, kind, layer, x, lname, fused):
        return spec_conv(sb, kind, layer, x, lname, fused, depthwise=False)
