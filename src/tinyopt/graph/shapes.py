"""Shape inference, one rule per operator, with errors that name the node and the fix."""

from __future__ import annotations

import math

import numpy as np

from tinyopt.errors import ModelFormatError, UnsupportedOpError
from tinyopt.graph.ir import Graph, Node, Tensor
from tinyopt.graph.ops import SUPPORTED_OPS


def conv_output_size(size: int, kernel: int, stride: int, dilation: int, padding: str) -> int:
    """TFLite's rule: SAME → ceil(size / stride); VALID → ceil((size - effective_kernel + 1) / stride)."""
    eff = (kernel - 1) * dilation + 1
    if padding == "SAME":
        return math.ceil(size / stride)
    return math.ceil((size - eff + 1) / stride)


def same_padding(size: int, kernel: int, stride: int, dilation: int, out: int) -> tuple[int, int]:
    """(before, after) padding for SAME, as TFLite computes it (the extra pixel goes after)."""
    eff = (kernel - 1) * dilation + 1
    total = max((out - 1) * stride + eff - size, 0)
    return total // 2, total - total // 2


def _fail(graph: Graph, index: int, node: Node, msg: str, fix: str):
    raise ModelFormatError(msg, path=graph.source, where=f"node {index} '{node.name}' ({node.op})", fix=fix)


def _spatial(graph, index, node, x: Tensor, kh, kw):
    if len(x.shape) != 4:
        _fail(graph, index, node, f"expects a 4-D NHWC input, got shape {list(x.shape)}",
              "add a reshape to [1, H, W, C] before this layer")
    sh, sw = node.attrs.get("stride", (1, 1))
    dh, dw = node.attrs.get("dilation", (1, 1))
    pad = node.attrs.get("padding", "VALID")
    if min(sh, sw, dh, dw, kh, kw) <= 0:
        _fail(graph, index, node, f"kernel {kh}x{kw}, stride {sh}x{sw} and dilation {dh}x{dw} must be positive",
              "use sizes of at least 1")
    _, h, w, _ = x.shape
    if pad == "VALID" and ((kh - 1) * dh + 1 > h or (kw - 1) * dw + 1 > w):
        _fail(graph, index, node, f"kernel {kh}x{kw} is larger than its {h}x{w} input",
              "use a smaller kernel, padding 'same', or fewer pooling layers before it")
    oh = conv_output_size(h, kh, sh, dh, pad)
    ow = conv_output_size(w, kw, sw, dw, pad)
    return oh, ow


def infer_node(graph: Graph, node: Node, index: int = 0) -> None:
    op = node.op
    ins = graph.node_inputs(node)
    x = ins[0] if ins else None
    if op not in SUPPORTED_OPS:
        raise UnsupportedOpError(f"operator {op} is not supported", path=graph.source,
                                 where=f"node {index} '{node.name}'",
                                 fix=f"supported operators are {', '.join(SUPPORTED_OPS)}")
    if x is None:
        _fail(graph, index, node, "has no input", "repair or re-export the model")
    if op == "CONV_2D":
        o, kh, kw, i = ins[1].shape
        if x.shape[-1] != i:
            _fail(graph, index, node, f"weight expects {i} input channels, input has {x.shape[-1]}",
                  "match the layer's input channels to the previous layer's output")
        oh, ow = _spatial(graph, index, node, x, kh, kw)
        shape = (x.shape[0], oh, ow, o)
    elif op == "DEPTHWISE_CONV_2D":
        _, kh, kw, om = ins[1].shape
        oh, ow = _spatial(graph, index, node, x, kh, kw)
        shape = (x.shape[0], oh, ow, om)
    elif op == "FULLY_CONNECTED":
        o, i = ins[1].shape
        if x.size % i:
            _fail(graph, index, node, f"input of {x.size} elements is not a multiple of the weight's {i} inputs",
                  "match the layer's input size to the previous layer's output")
        if node.attrs.get("keep_num_dims"):
            shape = (*x.shape[:-1], o)
        else:
            shape = (x.size // i, o)
    elif op in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
        fh, fw = node.attrs["filter"]
        oh, ow = _spatial(graph, index, node, x, fh, fw)
        shape = (x.shape[0], oh, ow, x.shape[3])
    elif op == "MEAN":
        axes = node.attrs.get("axes")
        if axes is None:
            axes = tuple(int(a) for a in np.asarray(ins[1].data).ravel())
        axes = {a % len(x.shape) for a in axes}
        if node.attrs.get("keep_dims"):
            shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
        else:
            shape = tuple(d for i, d in enumerate(x.shape) if i not in axes)
    elif op in ("ADD", "SUB", "MUL"):
        try:
            shape = tuple(np.broadcast_shapes(x.shape, ins[1].shape))
        except ValueError:
            _fail(graph, index, node, f"cannot broadcast {list(x.shape)} with {list(ins[1].shape)}",
                  "the residual branches must have the same shape")
    elif op == "CONCATENATION":
        axis = node.attrs.get("axis", -1) % len(x.shape)
        for t in ins[1:]:
            if len(t.shape) != len(x.shape) or any(a != b for i, (a, b) in enumerate(zip(t.shape, x.shape))
                                                   if i != axis):
                _fail(graph, index, node, f"cannot concatenate {list(x.shape)} and {list(t.shape)} on axis {axis}",
                      "make the other dimensions equal")
        shape = tuple(sum(t.shape[axis] for t in ins) if i == axis else d for i, d in enumerate(x.shape))
    elif op == "RESHAPE":
        given = node.attrs.get("new_shape")
        if given is None:
            if len(ins) < 2 or ins[1] is None or ins[1].data is None:
                _fail(graph, index, node, "has no target shape", "give new_shape or a constant shape operand")
            given = np.asarray(ins[1].data).ravel().tolist()
        new = list(given)
        if new.count(-1) > 1:
            _fail(graph, index, node, "has more than one -1 in its new shape", "give all but one dimension")
        if -1 in new:
            known = int(np.prod([d for d in new if d != -1]))
            if known <= 0 or x.size % known:
                _fail(graph, index, node, f"cannot reshape {list(x.shape)} to {new}", "fix the target shape")
            new[new.index(-1)] = x.size // known
        if int(np.prod(new)) != x.size:
            _fail(graph, index, node, f"cannot reshape {list(x.shape)} ({x.size} elements) to {new}",
                  "fix the target shape")
        shape = tuple(new)
    elif op == "PAD":
        pads = np.asarray(ins[1].data).reshape(-1, 2)
        if pads.shape[0] != len(x.shape) or (pads < 0).any():
            _fail(graph, index, node, f"paddings {pads.tolist()} do not fit a rank-{len(x.shape)} input",
                  "give one non-negative (before, after) pair per dimension")
        shape = tuple(int(d + a + b) for d, (a, b) in zip(x.shape, pads))
    else:  # element-wise: activations, softmax, quantize, dequantize, batch norm
        shape = x.shape
    out = graph.tensors[node.outputs[0]]
    out.shape = tuple(int(d) for d in shape)
    if any(d <= 0 for d in out.shape):
        _fail(graph, index, node, f"output shape {list(out.shape)} has a non-positive dimension",
              "the input is too small for this layer; use padding 'same' or a smaller kernel/stride")
