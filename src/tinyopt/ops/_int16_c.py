"""The C library's 16x8 kernels: each record's ``pack_c`` hands a node with int16 tensors to one of these
(``kernels/*_int16.c``). Every integer comes from the record's ``prepare``, TFLM's Prepare, as for int8;
the kernels are the reference loops, so the packing is plain: weights as TFLite stores them, int64 biases,
per-channel multipliers and shifts, the lookup tables the numpy kernels use. Nothing here names an
operator."""

from __future__ import annotations

from typing import NoReturn

import numpy as np

from tinyopt.errors import UnsupportedOpError
from tinyopt.graph.ir import Graph, Node

INT16_FILES = ("int16",)  # the shared helpers (kernels/int16.c)


def is_int16(graph: Graph, node: Node) -> bool:
    """True when the node computes on int16 tensors (a 16x8 kernel runs it)."""
    return any(graph.tensors[t].dtype == "int16" for t in (*node.inputs, *node.outputs) if t)


def _params(kind: str, ints: dict, arrays: dict, struct: str, entry: str, **kw):
    from tinyopt.export.c.params import OpParams

    return OpParams(kind, ints, arrays, struct=struct, entry=entry, files=(kind, *INT16_FILES), **kw)


def _fail(graph: Graph, index: int, node: Node, what: str, fix: str) -> NoReturn:
    from tinyopt.export.c.params import where

    raise UnsupportedOpError(what, path=graph.source, where=where(index, node), fix=fix)


def _check(graph: Graph, index: int, node: Node, names, dtypes=("int16",)) -> None:
    """The tensors a 16x8 kernel reads and writes: of ``dtypes``, quantized."""
    for name in names:
        t = graph.tensors[name]
        if t.dtype not in dtypes or t.quant is None:
            _fail(graph, index, node, f"tensor '{name}' is {t.dtype}; this C kernel takes quantized "
                  f"{' or '.join(dtypes)} tensors", "convert the whole model with --activations int16, or "
                  "deploy the .tflite with TFLM")


def _channels(a, n: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(a, np.int64).reshape(-1), (n,)).copy()


def _bias(graph: Graph, node: Node, n: int) -> dict:
    b = graph.tensors[node.inputs[2]] if len(node.inputs) > 2 and node.inputs[2] else None
    return {} if b is None else {"bias": ("int64_t", np.asarray(b.data, np.int64).reshape(n))}


def pack_conv(graph: Graph, index: int, node: Node, q, depthwise: bool):
    """CONV_2D / DEPTHWISE_CONV_2D (``q``: ConvData): weights as stored, [O][KH][KW][I] or [KH][KW][O]."""
    x, w, y = (graph.tensors[t] for t in (node.inputs[0], node.inputs[1], node.outputs[0]))
    _check(graph, index, node, [node.inputs[0], node.outputs[0]])
    _, ih, iw, ic = x.shape
    _, oh, ow, oc = y.shape
    _, kh, kw, _ = w.shape
    ints = dict(in_h=ih, in_w=iw, in_c=ic, out_h=oh, out_w=ow, out_c=oc, filter_h=kh, filter_w=kw,
                stride_h=q.stride_h, stride_w=q.stride_w, dilation_h=q.dilation_h, dilation_w=q.dilation_w,
                padding_h=q.padding_h, padding_w=q.padding_w, depth_multiplier=q.depth_multiplier,
                wide=int(q.wide), output_activation_min=q.output_activation_min,
                output_activation_max=q.output_activation_max)
    arrays = {"weights": ("int8_t", np.asarray(w.data, np.int8).reshape(-1)), **_bias(graph, node, oc),
              "multiplier": ("int32_t", _channels(q.output_multiplier, oc)),
              "shift": ("int32_t", _channels(q.output_shift, oc))}
    entry = "depthwise_conv2d_s16" if depthwise else "conv2d_s16"
    return _params("conv_int16", ints, arrays, "conv16_params", entry, optional=("bias",))


def pack_fully_connected(graph: Graph, index: int, node: Node, q):
    x, w = graph.tensors[node.inputs[0]], graph.tensors[node.inputs[1]]
    _check(graph, index, node, [node.inputs[0], node.outputs[0]])
    o, depth = w.shape
    ints = dict(batches=x.size // depth, accum_depth=depth, out_c=o, input_offset=q.input_offset,
                weights_offset=q.weights_offset, output_offset=q.output_offset, wide=int(q.wide),
                output_activation_min=q.output_activation_min, output_activation_max=q.output_activation_max)
    arrays = {"weights": ("int8_t", np.asarray(w.data, np.int8).reshape(-1)), **_bias(graph, node, o),
              "multiplier": ("int32_t", _channels(q.output_multiplier, o)),
              "shift": ("int32_t", _channels(q.output_shift, o))}
    return _params("fully_connected_int16", ints, arrays, "fc16_params", "fully_connected_s16",
                   optional=("bias",))


def pack_pool(graph: Graph, index: int, node: Node, q, average: bool):
    x = graph.tensors[node.inputs[0]]
    _check(graph, index, node, [node.inputs[0], node.outputs[0]])
    xq, yq = x.quant, graph.tensors[node.outputs[0]].quant
    assert xq is not None and yq is not None  # _check refused unquantized tensors
    if xq.scale[0] != yq.scale[0]:
        _fail(graph, index, node, "pooling input and output quantization differ",
              "quantize pooling with the same scale on both sides (tinyopt convert does)")
    _, ih, iw, ch = x.shape
    ints = dict(in_h=ih, in_w=iw, channels=ch, out_h=q.out_h, out_w=q.out_w, filter_h=q.filter_h,
                filter_w=q.filter_w, stride_h=q.stride_h, stride_w=q.stride_w, padding_h=q.padding_h,
                padding_w=q.padding_w, output_activation_min=q.output_activation_min,
                output_activation_max=q.output_activation_max)
    return _params("pool_int16", ints, {}, "pool16_params",
                   "average_pool2d_s16" if average else "max_pool2d_s16")


def pack_arithmetic(graph: Graph, index: int, node: Node, q, op: int):
    """ADD (0), SUB (1), MUL (2) on the broadcasting walk; a constant operand as an int16 array."""
    from tinyopt.ops._broadcast import WALK_RANK, broadcast_walk

    a, b, y = (graph.tensors[t] for t in (node.inputs[0], node.inputs[1], node.outputs[0]))
    _check(graph, index, node, [node.inputs[0], node.inputs[1], node.outputs[0]])
    walk = broadcast_walk(y.shape, a.shape, b.shape)
    if walk is None:
        _fail(graph, index, node,
              f"{node.op} of {list(a.shape)} and {list(b.shape)} needs more than {WALK_RANK} "
              "broadcast dimensions", "broadcast over fewer, or adjacent, axes")
    ints = {"op": op}
    for f in ("input1_offset", "input2_offset", "output_offset", "left_shift", "input1_multiplier",
              "input2_multiplier", "output_multiplier", "input1_shift", "input2_shift", "output_shift",
              "output_activation_min", "output_activation_max"):
        ints[f] = int(getattr(q, f, None) or 0)
    dims, s1, s2 = walk
    arrays = {"dims": ("int32_t", np.array(dims)), "strides1": ("int32_t", np.array(s1)),
              "strides2": ("int32_t", np.array(s2))}
    for key, t in (("input1", a), ("input2", b)):
        if t.data is not None:
            arrays[key] = ("int16_t", np.asarray(t.data, np.int16).reshape(-1))
    same = a.shape == b.shape == y.shape and a.data is None and b.data is None
    return _params("elementwise_int16", ints, arrays, "arithmetic16_params", "arithmetic_s16",
                   signature="lists", optional=("input1", "input2"), inplace="elementwise" if same else None)


def pack_sigmoid(graph: Graph, index: int, node: Node, q, tanh: bool):
    """LOGISTIC / TANH: TFLM's sigmoid table, the input multiplier and shift; in place."""
    from tinyopt.ops._lstm import SIGMOID_TABLE

    _check(graph, index, node, [node.inputs[0], node.outputs[0]])
    ints = dict(size=graph.tensors[node.outputs[0]].size, tanh=int(tanh), input_multiplier=q.input_multiplier,
                input_left_shift=q.input_left_shift)
    return _params("elementwise_int16", ints, {"table": ("uint16_t", SIGMOID_TABLE)}, "sigmoid16_params",
                   "sigmoid_s16", inplace="elementwise")


def pack_softmax(graph: Graph, index: int, node: Node, q):
    from tinyopt.ops.softmax import int16_tables

    x = graph.tensors[node.inputs[0]]
    _check(graph, index, node, [node.inputs[0], node.outputs[0]])
    exp_lut, recip_lut = int16_tables()
    depth = x.shape[-1]
    ints = dict(rows=x.size // depth, depth=depth, input_multiplier=q.input_multiplier,
                input_left_shift=q.input_left_shift)
    return _params("softmax_int16", ints,
                   {"exp_lut": ("int16_t", exp_lut), "recip_lut": ("int16_t", recip_lut)}, "softmax16_params",
                   "softmax_s16")


def pack_requantize(graph: Graph, index: int, node: Node, q):
    """QUANTIZE int16 → int16, int16 → int8, int8 → int16 (a float input never reaches the C library)."""
    x, y = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
    _check(graph, index, node, [node.inputs[0], node.outputs[0]], ("int8", "int16"))
    bits = {"int8": "s8", "int16": "s16"}
    info = np.iinfo(y.dtype)
    ints = dict(size=y.size, input_zero_point=q.input_zero_point, output_zero_point=q.zero_point,
                multiplier=q.input_multiplier, shift=q.input_shift, output_activation_min=int(info.min),
                output_activation_max=int(info.max))
    shrinks = x.dtype == "int16"  # element i written after it is read, never past it: in place is safe
    return _params("quantize_int16", ints, {}, "requantize16_params",
                   f"requantize_{bits[x.dtype]}_{bits[y.dtype]}", inplace="elementwise" if shrinks else None)


def pack_clamp(graph: Graph, index: int, node: Node, multiplier: int, shift: int, offsets: tuple[int, int],
               lo: int, hi: int):
    """An int16 RELU / RELU6: the requantization kernel with (``multiplier``, ``shift``) and the clamp
    [lo, hi]; in place."""
    _check(graph, index, node, [node.inputs[0], node.outputs[0]])
    ints = dict(size=graph.tensors[node.outputs[0]].size, input_zero_point=offsets[0],
                output_zero_point=offsets[1], multiplier=multiplier, shift=shift, output_activation_min=lo,
                output_activation_max=hi)
    return _params("quantize_int16", ints, {}, "requantize16_params", "requantize_s16_s16",
                   inplace="elementwise")


def pack_mean(graph: Graph, index: int, node: Node, q):
    """MEAN (``q`` its MeanData): the input walked as kept and reduced groups (``_reduce.reduce_walk``), the
    multiplier with 1/count folded in."""
    from tinyopt.ops._reduce import MAX_WALK_RANK, reduce_walk

    x = graph.tensors[node.inputs[0]]
    _check(graph, index, node, [node.inputs[0], node.outputs[0]])
    walk = reduce_walk(x.shape, q.axes)
    if walk is None:
        _fail(graph, index, node,
              f"{node.op} over axes {q.axes} of {list(x.shape)} alternates between kept and "
              f"reduced axes more than {MAX_WALK_RANK} times", "reduce fewer, or adjacent, axes")
    kept, reduced = walk
    ints = dict(outer=int(np.prod([d for d, _ in kept], dtype=np.int64)), count=q.num_elements_in_axis,
                kept_rank=len(kept), reduce_rank=len(reduced), input_zero_point=q.input_zero_point,
                output_zero_point=q.output_zero_point, multiplier=q.mean_multiplier, shift=q.mean_shift)
    arrays = {}
    for key, groups in (("kept", kept), ("reduce", reduced)):
        pad = [(1, 0)] * (MAX_WALK_RANK - len(groups))  # unused slots: the kernel reads the ranks
        arrays[f"{key}_dims"] = ("int32_t", np.array([d for d, _ in groups + pad], np.int64))
        arrays[f"{key}_strides"] = ("int32_t", np.array([s for _, s in groups + pad], np.int64))
    return _params("reduce_int16", ints, arrays, "mean16_params", "mean_s16")


def pack_concatenation(graph: Graph, index: int, node: Node, axis: int):
    """CONCATENATION: per outer index, each input's run of int16 elements in turn (inputs from the arena)."""
    names = [t for t in node.inputs if t]
    _check(graph, index, node, [*names, node.outputs[0]])
    for t in names:
        if graph.tensors[t].constant:
            _fail(graph, index, node, f"constant operand '{t}' of a concatenation",
                  "concatenate activations only")
    shape = graph.tensors[node.outputs[0]].shape
    inner = int(np.prod(shape[axis + 1:], dtype=np.int64))
    runs = np.asarray([graph.tensors[t].shape[axis] * inner for t in names], np.int64)
    return _params("movement_int16",
                   {"outer": int(np.prod(shape[:axis], dtype=np.int64)), "parts": len(runs)},
                   {"run": ("int32_t", runs)}, "concat16_params", "concatenation_s16", signature="lists")


def pack_pad(graph: Graph, index: int, node: Node, q):
    """PAD / PADV2 (``q`` their PadData): the output filled with the value, each input row copied to its
    place (the walk of kernels/pad.c, in elements)."""
    from tinyopt.ops import _movement as mv

    x, y = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
    _check(graph, index, node, [node.inputs[0], node.outputs[0]])
    if len(x.shape) > 5:
        _fail(graph, index, node, f"a rank-{len(x.shape)} pad",
              "pad tensors of at most 5 dimensions (as TFLM)")
    lead = 5 - len(x.shape)
    steps = mv.row_strides(y.shape)
    ints = {"value": int(q.pad_value), "out_size": y.size,
            "start": sum(int(b) * s for (b, _), s in zip(q.paddings, steps))}
    arrays = {"count": ("int32_t", np.asarray([1] * lead + list(x.shape), np.int64)),
              "step": ("int32_t", np.asarray([0] * lead + steps, np.int64))}
    return _params("movement_int16", ints, arrays, "pad16_params", "pad_s16")
