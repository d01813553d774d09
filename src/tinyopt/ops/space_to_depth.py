"""SPACE_TO_DEPTH: each ``block_size`` x ``block_size`` block of pixels folded into one pixel's channels,
as TFLM's ``SpaceToDepth`` (NHWC: input pixel (h * b + i, w * b + j) channel d goes to channel
``(i * b + j) * C + d`` of pixel (h, w)); the inverse of DEPTH_TO_SPACE. Bytes are moved, never rescaled.
PyTorch's ``PixelUnshuffle`` orders the channels the other way: a GATHER follows."""

from __future__ import annotations

from tinyopt.ops import _movement as mv
from tinyopt.ops._record import CKernel, Op, Options, QuantRule, register, scalar
from tinyopt.ops.depth_to_space import BlockData, block_of, crd_to_dcr, prepare_block


@register
class SpaceToDepth(Op):
    name = "SPACE_TO_DEPTH"
    builtin = 26
    options = Options(19, (scalar("block_size", 0, "i32"),))
    int8_version = 2
    quant = QuantRule(output="input")
    c = CKernel("strided_slice", "strided_slice_params")
    onnx = ("SpaceToDepth",)
    torch_modules = ("PixelUnshuffle",)
    torch_functions = ("pixel_unshuffle",)

    def shape(self, graph, node, fail):
        x = graph.tensors[node.inputs[0]]
        b = block_of(graph, node, fail)
        n, h, w, ch = x.shape
        if h % b or w % b:
            fail(f"{h}x{w} pixels are not a multiple of block_size {b}",
                 "fix the block size or the input size")
        return (n, h // b, w // b, ch * b * b)

    def prepare(self, graph, node, is_int):
        return prepare_block(graph, node, is_int)

    def eval(self, p: BlockData, inputs):
        x, b = inputs[0], p.block_size
        n, h, w, ch = x.shape
        return x.reshape(n, h // b, b, w // b, b, ch).transpose(0, 1, 3, 2, 4, 5).reshape(n, h // b, w // b,
                                                                                         ch * b * b)

    def pack_c(self, graph, index, node):
        """Output (h, w) channel (i*b + j)*C + d is input (h*b + i, w*b + j) channel d: walk (h, w, i, j, d)
        with input steps (b*W*C, b*C, W*C, C, 1)."""
        p = self.prepare(graph, node, True)
        mv.check_c_int8(graph, index, node, [node.inputs[0], *node.outputs])
        _, h, w, ch = graph.tensors[node.inputs[0]].shape
        b = p.block_size
        return mv.walk_params(graph, index, node, 0, [h // b, w // b, b, b, ch],
                              [b * w * ch, b * ch, w * ch, ch, 1])

    # -- doors
    def from_onnx(self, cv, node, name, a, ins):
        return build(cv.b, name, cv.val(ins[0]), int(a["blocksize"]), False)

    def from_torch_module(self, cv, n, m, name, out_shape):
        return build(cv.b, name, cv.val(n.args[0]), int(m.downscale_factor), True)

    def from_torch_function(self, cv, n, key, name, out_shape):
        return build(cv.b, name, cv.val(n.args[0]), int(cv.arg(n)(1, "downscale_factor")), True)


def build(b, name: str, x, block: int, channels_first_order: bool):
    """ONNX SpaceToDepth is TFLite's order; PyTorch's pixel_unshuffle puts channel c's block together
    (c * b² + i * b + j): a GATHER reorders TFLite's result into it."""
    import numpy as np

    from tinyopt.ops import gather

    if x.layout != "nchw" or x.permuted:
        b.unsupported(f"SpaceToDepth on a {len(x.shape)}-D {x.layout} tensor", "apply it to (N, C, H, W)")
    if x.shape[2] % block or x.shape[3] % block:
        b.unsupported(f"a {x.shape[2]}x{x.shape[3]} input for block size {block}")
    y = b.emit(name, SpaceToDepth.name, [x.name], {"block_size": block}, "nchw")
    if channels_first_order:
        out_c = x.shape[1] * block * block
        y = gather.build(b, f"{name}/crd", y, np.argsort(crd_to_dcr(out_c, block)), 1)
    return y
