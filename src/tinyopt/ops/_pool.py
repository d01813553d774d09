"""What MAX_POOL_2D and AVERAGE_POOL_2D share: options, shape, preparation, C packing, the doors."""

from __future__ import annotations

from dataclasses import dataclass

from tinyopt.errors import UnsupportedOpError
from tinyopt.graph.ir import Node
from tinyopt.ops import _common as c
from tinyopt.ops import _int16_c
from tinyopt.ops._record import Op, OpData, Options, QuantRule, activation, padding, pair


@dataclass(kw_only=True)
class PoolData(c.Geometry, c.ActivationRange, OpData):
    pass


OPTIONS = Options(5, (padding("padding", 0), pair("stride", 2, 1), pair("filter", 4, 3),
                      activation("activation", 5)))
SPEC_KEYS = frozenset({"pool", "stride", "padding"})


class Pool(Op):
    """Base record of the two pooling operators."""

    options = OPTIONS
    fused_activation = True
    int8_version = 2
    quant = QuantRule(output="input", int16=True)  # TFLM's pooling kernels do not rescale (int8 and int16)
    kind = ""  # "MAX" or "AVG" (framework doors)

    def read_tflite(self, r, ins, out):
        r.ranks(ins, (4,))
        return super().read_tflite(r, ins, out)

    def shape(self, graph, node, fail):
        x = graph.tensors[node.inputs[0]]
        fh, fw = node.attrs["filter"]
        oh, ow = c.window_output_hw(x.shape, fh, fw, node.attrs, fail)
        return (x.shape[0], oh, ow, x.shape[3])

    def prepare(self, graph, node, is_int):
        x = graph.tensors[node.inputs[0]]
        fh, fw = (int(v) for v in node.attrs["filter"])
        if len(x.shape) != 4:
            c.fail(graph, node, f"expects a 4-D NHWC input, got {list(x.shape)}", "reshape to NHWC first")
        dtype = ("int16" if x.dtype == "int16" else "int8") if is_int else "float32"
        return PoolData(dtype=dtype, **c.geometry(graph, node, x.shape, fh, fw),
                        **c.output_range(graph, node, is_int))

    def pack_c(self, graph, index, node):
        if _int16_c.is_int16(graph, node):  # the 16x8 kernels (kernels/pool_int16.c)
            return _int16_c.pack_pool(graph, index, node, self.prepare(graph, node, True), self.kind == "AVG")
        from tinyopt.export.c import params as cp

        x, y = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
        cp.check_int8(graph, index, node, [x, y])
        if not (x.quant.scale[0] == y.quant.scale[0] and x.quant.zero_point[0] == y.quant.zero_point[0]):
            raise UnsupportedOpError("pooling input and output quantization differ", path=graph.source,
                                     where=cp.where(index, node),
                                     fix="quantize pooling with the same scale and zero point on both sides")
        q = self.prepare(graph, node, True)
        _, ih, iw, ch = x.shape
        ints = dict(in_h=ih, in_w=iw, channels=ch, out_h=q.out_h, out_w=q.out_w, filter_h=q.filter_h,
                    filter_w=q.filter_w, stride_h=q.stride_h, stride_w=q.stride_w, padding_h=q.padding_h,
                    padding_w=q.padding_w, output_activation_min=q.output_activation_min,
                    output_activation_max=q.output_activation_max)
        whole = (q.out_h, q.out_w, q.filter_h, q.filter_w, q.padding_h, q.padding_w) == (1, 1, ih, iw, 0, 0)
        # a global average pool can add a streamed input row by row (kernels/pool_rows.c)
        assert self.c is not None  # MAX_POOL_2D and AVERAGE_POOL_2D name their kernels
        return cp.OpParams(self.c.file, ints, stream="sum" if whole and self.kind == "AVG" else "window")

    # -- doors
    def _pool(self, cv, name, x, k, kernel, stride, pads, dilation, ceil_mode, include_pad, indices):
        from tinyopt.graph.torch_import import torch_pads, tup

        if indices:
            cv.b.unsupported("pooling with return_indices=True")
        if any(d != 1 for d in tup(dilation, k)):
            cv.b.unsupported(f"dilated pooling (dilation {dilation})")
        kernel = tup(kernel, k)
        stride = tup(stride, k) if stride not in (None, (), []) else kernel
        return build(cv.b, name, x, self.kind, kernel, stride, torch_pads(pads, kernel, 1, k),
                     bool(ceil_mode), bool(include_pad))

    def from_onnx(self, cv, node, name, a, ins):
        x = cv.val(ins[0])
        if len(node.output) > 1 and cv.uses.get(node.output[1]):
            cv.b.unsupported("MaxPool with an indices output")
        kernel = tuple(a["kernel_shape"])
        k = len(kernel)
        strides, dil = tuple(a.get("strides", [1] * k)), tuple(a.get("dilations", [1] * k))
        if any(d != 1 for d in dil):
            cv.b.unsupported(f"dilated pooling {list(dil)}")
        pads = cv.pads(a, x, kernel, strides, dil, k)
        return build(cv.b, name, x, self.kind, kernel, strides, pads, bool(a.get("ceil_mode", 0)),
                     bool(a.get("count_include_pad", 0)))

    def from_spec(self, sb, kind, layer, x, lname, fused):
        if len(x.shape) != 4:
            sb.fail(f"{kind} needs an H×W×C input", "remove the flatten before it")
        pool = sb.pair(layer.get("pool", 2), "pool")
        stride = sb.pair(layer.get("stride", pool), "stride")
        return Node(lname, self.name, [x.name], [sb.out(lname)],
                    {"filter": pool, "stride": stride, "padding": sb.padding(layer), "activation": fused})


def build(b, name: str, x, kind: str, kernel, stride, pads, ceil_mode=False, count_include_pad=True):
    """Framework pooling (pads t, b, l, r; ceil_mode; count_include_pad) → MAX/AVERAGE_POOL_2D with SAME or
    VALID, behind a PAD where TFLite's own padding differs: a max pool pads with the lowest value
    (PADV2: a padded tap never wins), an average pool that counts its pads with zeros (PAD). What no
    padding reproduces (an average that skips its pads unlike SAME) is refused, saying why."""
    from tinyopt.ops import average_pool_2d, max_pool_2d, pad

    if len(kernel) == 1:
        if x.layout != "ncl":
            b.unsupported(f"a 1-D pooling on a {len(x.shape)}-D input")
        kernel, stride, pads = (1, kernel[0]), (1, stride[0]), (0, 0, *pads[-2:])
    elif x.layout != "nchw":
        b.unsupported(f"a 2-D pooling on a {len(x.shape)}-D input")
    mode = "max" if kind == "MAX" else "avg_include" if count_include_pad else "avg_exclude"
    x, padding = pad.resolve_padding(b, name, x, kernel, stride, (1, 1), pads, True, ceil_mode, mode=mode)
    op = (max_pool_2d.MaxPool2D if kind == "MAX" else average_pool_2d.AveragePool2D).name
    attrs = {"filter": tuple(kernel), "stride": tuple(stride), "padding": padding, "activation": "NONE"}
    return b.emit(name, op, [x.name], attrs, x.layout)
