"""RESIZE_BILINEAR: each output pixel interpolates its four nearest input pixels (NHWC, new size as an int32
operand), with ``align_corners`` or ``half_pixel_centers`` (not both: TFLM refuses the pair).

Float as TFLM's ``ResizeBilinear`` (float32 coordinates, weights ``1 - d`` and ``d``). int8 as TFLM's
``ResizeBilinearInteger``, which uses no float at all: the source step is ``scale_10`` =
round(1024 · in / out) (align_corners: (in - 1) / (out - 1)), each coordinate is an integer in 1/1024 of a
pixel (C's truncating division gives its neighbours), the four products carry 20 fraction bits, and the
sum is rounded half away from zero (the installed TFLM is built without ``TFLITE_SINGLE_ROUNDING``; a test
pins it). The int8 values are interpolated as they are, so the output keeps its input's scale and zero
point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyopt.ops import _common as c
from tinyopt.ops import _resize as r
from tinyopt.ops._record import CKernel, Op, OpData, Options, QuantRule, register, scalar


@dataclass(kw_only=True)
class ResizeBilinearData(OpData):
    align_corners: bool
    half_pixel_centers: bool
    height_scale_10: int = 0  # int8: the source step in 1/1024 pixel
    width_scale_10: int = 0
    rows: tuple = ()  # (coordinate, lower, upper) per output row: float32 or 1/1024-pixel integers
    cols: tuple = ()


@register
class ResizeBilinear(Op):
    name = "RESIZE_BILINEAR"
    builtin = 23
    options = Options(15, (scalar("align_corners", 2, "bool", False),
                           scalar("half_pixel_centers", 3, "bool", False)))
    arity = (2, 2)
    int8_version = 2
    quant = QuantRule(output="input")
    ops_per_element = 7  # per output value: 4 products with the pixels' weights and 3 adds
    c = CKernel("resize_bilinear", "resize_bilinear_params")

    def read_tflite(self, rd, ins, out):
        r.read_size(rd, ins)
        return super().read_tflite(rd, ins, out)

    def version(self, graph, node):
        if node.attrs.get("half_pixel_centers"):
            return 3
        return 2 if graph.tensors[node.inputs[0]].dtype == "int8" else 1

    def shape(self, graph, node, fail):
        return r.resize_shape(graph, node, fail)

    def prepare(self, graph, node, is_int):
        x, y = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
        ac, hp = bool(node.attrs.get("align_corners")), bool(node.attrs.get("half_pixel_centers"))
        if ac and hp:
            c.fail(graph, node, "align_corners and half_pixel_centers are both set (TFLM refuses the pair)",
                   "set at most one of them")
        if x.dtype == "int16":
            c.unsupported(graph, node, "an int16 bilinear resize (TFLM has float32 and int8 kernels)",
                          "convert with int8 activations")
        _, in_h, in_w, _ = x.shape
        _, out_h, out_w, _ = y.shape
        if not is_int:
            return ResizeBilinearData(dtype="float32", align_corners=ac, half_pixel_centers=hp,
                                      rows=r.bilinear_float_coords(out_h, in_h, ac, hp),
                                      cols=r.bilinear_float_coords(out_w, in_w, ac, hp))
        r.check_same_quant(graph, node)
        hs, ws = r.scale_10(out_h, in_h, ac), r.scale_10(out_w, in_w, ac)
        rows, cols = r.bilinear_int_coords(out_h, in_h, hs, hp), r.bilinear_int_coords(out_w, in_w, ws, hp)
        if rows[1].max() >= in_h or cols[1].max() >= in_w:  # TFLM would read past the input
            c.unsupported(graph, node, f"resizing {in_h}x{in_w} to {out_h}x{out_w} puts a source pixel "
                          "outside the input in TFLM's integer kernel", "use a smaller upscaling factor")
        return ResizeBilinearData(dtype="int8", align_corners=ac, half_pixel_centers=hp, height_scale_10=hs,
                                  width_scale_10=ws, rows=rows, cols=cols)

    def eval(self, p: ResizeBilinearData, inputs):
        (vy, y0, y1), (vx, x0, x1) = p.rows, p.cols
        if p.dtype == "float32":
            x = inputs[0].astype(np.float32)
            one = np.float32(1)
            dy = (vy - y0.astype(np.float32))[None, :, None, None]
            dx = (vx - x0.astype(np.float32))[None, None, :, None]
            r0, r1 = x[:, y0], x[:, y1]
            return (r0[:, :, x0] * (one - dy) * (one - dx) + r1[:, :, x0] * dy * (one - dx)
                    + r0[:, :, x1] * (one - dy) * dx + r1[:, :, x1] * dy * dx)
        x = inputs[0].astype(np.int64)
        wy1 = (vy - (1 << 10) * y0)[None, :, None, None]
        wx1 = (vx - (1 << 10) * x0)[None, None, :, None]
        wy0, wx0 = (1 << 10) - wy1, (1 << 10) - wx1
        r0, r1 = x[:, y0], x[:, y1]
        acc = (r0[:, :, x0] * wy0 * wx0 + r1[:, :, x0] * wy1 * wx0
               + r0[:, :, x1] * wy0 * wx1 + r1[:, :, x1] * wy1 * wx1)
        acc = acc + np.where(acc > 0, 1 << 19, -(1 << 19))
        return np.where(acc < 0, -((-acc) >> 20), acc >> 20).astype(np.int8)  # C's division: toward zero

    def pack_c(self, graph, index, node):
        from tinyopt.export.c import params as cp

        x, y = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
        cp.check_int8(graph, index, node, [x, y])
        p = self.prepare(graph, node, True)
        _, in_h, in_w, ch = x.shape
        _, out_h, out_w, _ = y.shape
        ints = dict(in_h=in_h, in_w=in_w, channels=ch, out_h=out_h, out_w=out_w,
                    height_scale_10=p.height_scale_10, width_scale_10=p.width_scale_10,
                    half_pixel_centers=int(p.half_pixel_centers))
        return cp.OpParams("resize_bilinear", ints, {})
