"""DEPTH_TO_SPACE: each pixel's ``block_size``² groups of channels spread over a block of pixels, as TFLM's
``DepthToSpace`` (NHWC, "DCR" order: input channel ``(i * block + j) * C_out + d`` goes to pixel row
``h * block + i``, column ``w * block + j``, channel ``d``). Bytes are moved, never rescaled.

In the C library it is a strided walk of the input (the same kernel as STRIDED_SLICE and TRANSPOSE).
ONNX's "CRD" order and PyTorch's ``PixelShuffle`` first permute the channels with a GATHER.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyopt.ops import _common as c
from tinyopt.ops import _movement as mv
from tinyopt.ops._record import CKernel, Op, OpData, Options, QuantRule, register, scalar


@dataclass(kw_only=True)
class BlockData(OpData):
    block_size: int


def block_of(graph, node, fail) -> int:
    x = graph.tensors[node.inputs[0]]
    b = int(node.attrs.get("block_size", 0))
    if len(x.shape) != 4:
        fail(f"expects a 4-D NHWC input, got {list(x.shape)}", "reshape to NHWC first")
    if b < 1:
        fail(f"block_size {b} is not positive", "give a block size of at least 1")
    return b


def prepare_block(graph, node, is_int) -> BlockData:
    def fail(msg, fix):
        c.fail(graph, node, msg, fix)

    b = block_of(graph, node, fail)
    mv.check_same_quant(graph, node, node.inputs[:1], is_int)
    return BlockData(dtype=mv.dtype_of(is_int), block_size=b)


@register
class DepthToSpace(Op):
    name = "DEPTH_TO_SPACE"
    builtin = 5
    options = Options(94, (scalar("block_size", 0, "i32"),))
    int8_version = 2
    quant = QuantRule(output="input")
    c = CKernel("strided_slice", "strided_slice_params")
    onnx = ("DepthToSpace",)
    torch_modules = ("PixelShuffle",)
    torch_functions = ("pixel_shuffle",)

    def shape(self, graph, node, fail):
        x = graph.tensors[node.inputs[0]]
        b = block_of(graph, node, fail)
        n, h, w, ch = x.shape
        if ch % (b * b):
            fail(f"{ch} channels are not a multiple of block_size² = {b * b}", "fix the block size")
        return (n, h * b, w * b, ch // (b * b))

    def prepare(self, graph, node, is_int):
        return prepare_block(graph, node, is_int)

    def eval(self, p: BlockData, inputs):
        x, b = inputs[0], p.block_size
        n, h, w, ch = x.shape
        co = ch // (b * b)
        return x.reshape(n, h, w, b, b, co).transpose(0, 1, 3, 2, 4, 5).reshape(n, h * b, w * b, co)

    def pack_c(self, graph, index, node):
        """Output pixel (h*b + i, w*b + j) channel d is input (h, w) channel (i*b + j)*C_out + d: walk
        (h, i, w, j, d) with input steps (W*C, b*C_out, C, C_out, 1)."""
        p = self.prepare(graph, node, True)
        mv.check_c_int8(graph, index, node, [node.inputs[0], *node.outputs])
        _, h, w, ch = graph.tensors[node.inputs[0]].shape
        b = p.block_size
        co = ch // (b * b)
        return mv.walk_params(graph, index, node, 0, [h, b, w, b, co], [w * ch, b * co, ch, co, 1])

    # -- doors
    def from_onnx(self, cv, node, name, a, ins):
        mode = a.get("mode", b"DCR")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        return build(cv.b, name, cv.val(ins[0]), int(a["blocksize"]), mode)

    def from_torch_module(self, cv, n, m, name, out_shape):
        return build(cv.b, name, cv.val(n.args[0]), int(m.upscale_factor), "CRD")

    def from_torch_function(self, cv, n, key, name, out_shape):
        return build(cv.b, name, cv.val(n.args[0]), int(cv.arg(n)(1, "upscale_factor")), "CRD")


def crd_to_dcr(channels: int, block: int) -> np.ndarray:
    """Indices that reorder "CRD" channels (c * b² + i * b + j) into TFLite's "DCR" ((i * b + j) * C + c).

    >>> crd_to_dcr(8, 2).tolist()
    [0, 4, 1, 5, 2, 6, 3, 7]
    """
    co = channels // (block * block)
    return np.arange(channels).reshape(co, block * block).T.ravel()


def build(b, name: str, x, block: int, mode: str):
    from tinyopt.ops import gather

    if x.layout != "nchw" or x.permuted:
        b.unsupported(f"DepthToSpace on a {len(x.shape)}-D {x.layout} tensor", "apply it to (N, C, H, W)")
    if mode not in ("DCR", "CRD"):
        b.unsupported(f"DepthToSpace mode {mode}", "use DCR or CRD")
    if x.shape[1] % (block * block):
        b.unsupported(f"{x.shape[1]} channels for block size {block}")
    if mode == "CRD":
        x = gather.build(b, f"{name}/crd", x, crd_to_dcr(x.shape[1], block), 1)
    return b.emit(name, DepthToSpace.name, [x.name], {"block_size": block}, "nchw")
