"""RESIZE_NEAREST_NEIGHBOR: every output pixel copies one input pixel (NHWC, new size as an int32 operand).

As TFLM's ``ResizeNearestNeighbor``: the source row of output row y is ``GetNearestNeighbor(y)``, computed
in float32 (floor, or round with ``align_corners``; ``half_pixel_centers`` samples at pixel centres). The
tables depend on the sizes only, so Prepare computes them once and the C kernel receives them as constant
arrays: no float at inference. Values are copied, so an int8 output keeps its input's parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyopt.ops import _resize as r
from tinyopt.ops._record import CKernel, Op, OpData, Options, QuantRule, register, scalar


@dataclass(kw_only=True)
class ResizeNearestData(OpData):
    align_corners: bool
    half_pixel_centers: bool
    in_y: np.ndarray  # source row of each output row
    in_x: np.ndarray  # source column of each output column


@register
class ResizeNearestNeighbor(Op):
    name = "RESIZE_NEAREST_NEIGHBOR"
    builtin = 97
    options = Options(74, (scalar("align_corners", 0, "bool", False),
                           scalar("half_pixel_centers", 1, "bool", False)))
    arity = (2, 2)
    int8_version = 2
    quant = QuantRule(output="input", int16=True)
    c = CKernel("resize_nearest_neighbor", "resize_nearest_neighbor_params")
    onnx = ("Resize", "Upsample")
    torch_modules = ("Upsample",)
    torch_functions = ("interpolate", "upsample", "upsample_nearest", "upsample_bilinear")

    def read_tflite(self, rd, ins, out):
        r.read_size(rd, ins)
        return super().read_tflite(rd, ins, out)

    def version(self, graph, node):
        dtype = graph.tensors[node.inputs[0]].dtype
        if dtype == "int16":
            return 4
        if node.attrs.get("half_pixel_centers") or node.attrs.get("align_corners"):
            return 3
        return 2 if dtype == "int8" else 1

    def shape(self, graph, node, fail):
        return r.resize_shape(graph, node, fail)

    def prepare(self, graph, node, is_int):
        x, y = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
        ac, hp = bool(node.attrs.get("align_corners")), bool(node.attrs.get("half_pixel_centers"))
        if is_int:
            r.check_same_quant(graph, node)
        _, in_h, in_w, _ = x.shape
        _, out_h, out_w, _ = y.shape
        return ResizeNearestData(dtype=x.dtype if is_int else "float32", align_corners=ac,
                                 half_pixel_centers=hp, in_y=r.nearest_index(out_h, in_h, ac, hp),
                                 in_x=r.nearest_index(out_w, in_w, ac, hp))

    def eval(self, p: ResizeNearestData, inputs):
        return np.ascontiguousarray(inputs[0][:, p.in_y][:, :, p.in_x])

    def pack_c(self, graph, index, node):
        from tinyopt.export.c import params as cp

        x, y = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
        cp.check_int8(graph, index, node, [x, y])
        p = self.prepare(graph, node, True)
        _, _, in_w, ch = x.shape
        _, out_h, out_w, _ = y.shape
        ints = dict(in_w=in_w, channels=ch, out_h=out_h, out_w=out_w)
        arrays = {"in_y": ("int32_t", p.in_y), "in_x": ("int32_t", p.in_x)}
        return cp.OpParams("resize_nearest_neighbor", ints, arrays)

    # -- doors: ONNX Resize / Upsample and PyTorch's resizes, nearest or bilinear (see _resize)
    def from_onnx(self, cv, node, name, a, ins):
        return r.from_onnx(cv, node, name, a, ins)

    def from_torch_module(self, cv, n, m, name, out_shape):
        return r.torch_resize(cv, name, cv.val(n.args[0]), out_shape, m)

    def from_torch_function(self, cv, n, key, name, out_shape):
        import torch.fx

        x = cv.val(n.args[0])
        args, kwargs = list(n.args[1:]), dict(n.kwargs)
        size_pos = 0  # F.interpolate(input, size, scale_factor, mode, align_corners, ...)
        if key in ("upsample_nearest", "upsample_bilinear"):
            if key == "upsample_bilinear":  # deprecated aliases: bilinear is align_corners=True
                kwargs.update(mode="bilinear", align_corners=True)
            else:
                kwargs["mode"] = "nearest"
            key = "interpolate"
        size = args[size_pos] if len(args) > size_pos else kwargs.get("size")
        scale = args[1] if len(args) > 1 else kwargs.get("scale_factor")
        if isinstance(scale, torch.fx.Node):
            cv.b.unsupported("a scale_factor computed in forward()", "give a constant scale_factor or size=")
        if isinstance(size, torch.fx.Node) or (isinstance(size, (tuple, list))
                                               and any(isinstance(s, torch.fx.Node) for s in size)):
            size = tuple(out_shape[2:])  # a size read from another tensor: the traced one
        if len(args) > size_pos:
            args[size_pos] = size
        elif "size" in kwargs:
            kwargs["size"] = size
        import torch.nn.functional as F

        return r.torch_resize(cv, name, x, out_shape, lambda t: F.interpolate(t, *args, **kwargs))
