"""DEPTHWISE_CONV_2D: one filter per input channel (times ``depth_multiplier``), weight ``[1, KH, KW, I*M]``.

Integer path as TFLM's ``DepthwiseConvPerChannel``: each output channel accumulates its own input
channel's window, then per-channel requantization (shared with CONV_2D, see ``conv_2d.py``).
"""

from __future__ import annotations

import numpy as np

from tinyopt.ops import _common as c
from tinyopt.ops import _int16, _int16_c
from tinyopt.ops._record import CKernel, Op, Options, QuantRule, activation, padding, pair, register, scalar
from tinyopt.ops.conv_2d import (
    ConvData,
    add_zero_bias,
    bias_other_ops,
    has_bias,
    pack_conv_like,
    prepare_conv_like,
    spec_conv,
    weighted_dtypes,
    weighted_version,
)

_MULTIPLIER = scalar("depth_multiplier", 3, "i32")


@register
class DepthwiseConv2D(Op):
    name = "DEPTHWISE_CONV_2D"
    builtin = 4
    options = Options(2,
                      (padding("padding", 0), pair("stride", 2, 1), _MULTIPLIER, activation("activation", 4),
                       pair("dilation", 6, 5, stored_default=1)))
    arity = (2, 3)
    optional_inputs = (2,)
    param_inputs = (1, 2)
    weight_axis = 3
    bias_input = 2
    quant = QuantRule(int16=True)  # TFLM's 16x8 kernel: int16 activations, int8 weights, int64 bias
    fused_activation = True
    absorbs_pad = True
    c = CKernel("depthwise_conv2d", "conv_params", extra_files=("add",))
    spec_layers = {"depthwise_conv2d": frozenset({"kernel", "stride", "padding", "dilation",
                                                  "depth_multiplier", "use_bias"})}
    spec_aliases = {"depthwise": "depthwise_conv2d", "dwconv2d": "depthwise_conv2d"}

    def read_tflite(self, r, ins, out):
        r.ranks(ins, (4, 4, 1))
        attrs = super().read_tflite(r, ins, out)
        dm = attrs["depth_multiplier"]
        cin, cout = ins[0].shape[3], ins[1].shape[3]
        if dm == 0 and cout % cin == 0:  # some converters leave it unset; TFLite derives it
            dm = attrs["depth_multiplier"] = cout // cin
        if ins[1].shape[0] != 1 or dm <= 0 or cin * dm != cout:
            r.fail(f"weight shape {list(ins[1].shape)} does not match {cin} input channels × "
                   f"depth multiplier {dm}")
        r.bias(ins, cout)
        return attrs

    def write_tflite(self, w, graph, node):
        attrs = dict(node.attrs)
        if "depth_multiplier" not in attrs:
            x_channels = graph.tensors[node.inputs[0]].shape[-1]
            attrs["depth_multiplier"] = graph.tensors[node.inputs[1]].shape[-1] // max(x_channels, 1)
        return w.fields(self.options.fields, attrs)

    def version(self, graph, node):
        v = weighted_version(graph, node)
        if v == 1 and tuple(node.attrs.get("dilation", (1, 1))) != (1, 1):
            return 2
        return v

    def complete_operands(self, graph, node):
        add_zero_bias(graph, node, graph.tensors[node.inputs[1]].shape[-1])

    def check_dtypes(self, ins, out):
        return weighted_dtypes(ins, out)

    def shape(self, graph, node, fail):
        x, w = graph.tensors[node.inputs[0]], graph.tensors[node.inputs[1]]
        _, kh, kw, om = w.shape
        oh, ow = c.window_output_hw(x.shape, kh, kw, node.attrs, fail)
        return (x.shape[0], oh, ow, om)

    latency_class = "depthwise"

    def param_formula(self, graph, node):
        _, kh, kw, ch = graph.tensors[node.inputs[1]].shape
        b = has_bias(node)
        return f"({kh}×{kw}{'+1' if b else ''})×{c.n(ch)} = {c.n((kh * kw + b) * ch)}"

    def mac_formula(self, graph, node):
        out = graph.tensors[node.outputs[0]]
        _, kh, kw, _ = graph.tensors[node.inputs[1]].shape
        return f"{c.dims(out.shape[1:])} outputs × {kh}×{kw} = {c.n(out.size * kh * kw)}"

    def scale_channels(self, g, node, before, keep, last):
        _, kh, kw, om = before.tensors[node.inputs[1]].shape
        mult = max(1, om // before.tensors[node.inputs[0]].shape[-1])
        o2 = g.tensors[node.inputs[0]].shape[-1] * mult  # one filter per remaining input channel
        c.resize(g.tensors[node.inputs[1]], (1, kh, kw, o2))
        if has_bias(node):
            c.resize(g.tensors[node.inputs[2]], (o2,))
        return True

    def macs(self, graph, node):
        _, kh, kw, _ = graph.tensors[node.inputs[1]].shape
        return graph.tensors[node.outputs[0]].size * kh * kw

    def other_ops(self, graph, node):
        return bias_other_ops(graph, node)

    def prepare(self, graph, node, is_int):
        return prepare_conv_like(graph, node, is_int, depthwise=True)

    def eval(self, p: ConvData, inputs):
        x, w = inputs[0], inputs[1]
        bias = inputs[2] if len(inputs) > 2 else None
        m = p.depth_multiplier
        is_int = p.dtype in ("int8", "int16")
        acc_dtype: type[np.generic]
        pad_value: float
        if is_int:  # 16x8: no input offset (0), an int64 accumulator
            xs = x.astype(np.int32) + np.int32(p.input_offset)
            acc_dtype, pad_value = np.int64, 0
        else:
            xs, acc_dtype, pad_value = x.astype(np.float32), np.float32, 0.0
        if m > 1:
            xs = np.repeat(xs, m, axis=-1)
        xp = c.pad_spatial(xs, p, pad_value)
        wk = w.reshape(w.shape[1], w.shape[2], w.shape[3]).astype(acc_dtype)
        acc = np.zeros((x.shape[0], p.out_h, p.out_w, w.shape[3]), dtype=acc_dtype)
        for i in range(p.filter_h):
            for j in range(p.filter_w):
                acc += c.window(xp, p, i, j) * wk[i, j]
        if bias is not None:
            acc = acc + bias.astype(acc_dtype)
        if p.dtype == "int16":
            return _int16.requantize_acc(acc, p)
        return c.requantize(acc, p) if is_int else c.clamp_float(acc, p)

    def pack_c(self, graph, index, node):
        if _int16_c.is_int16(graph, node):  # the 16x8 kernel (kernels/conv_int16.c)
            return _int16_c.pack_conv(graph, index, node, self.prepare(graph, node, True), depthwise=True)
        return pack_conv_like(graph, index, node, depthwise=True)

    def from_spec(self, sb, kind, layer, x, lname, fused):
        return spec_conv(sb, kind, layer, x, lname, fused, depthwise=True)
