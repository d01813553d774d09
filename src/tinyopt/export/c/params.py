"""What each kernel needs, packed for C: the runtime's ``prepare_node`` integers plus our layouts.

The integers (multipliers, shifts, offsets, activation bounds, padding, softmax parameters) come from
``tinyopt.runtime.prepare.prepare_node``, TFLM's Prepare step, so the numpy runtime and the generated C
agree by construction. What is ours is packing: weights in the layout the kernel walks, and the input
offset folded into the bias (``sum w*(x+off) = sum w*x + off*sum w``, exact in integers; the kernels feed
the input zero point at padded taps, which then contribute exactly 0 as in the reference).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tinyopt.errors import UnsupportedOpError
from tinyopt.graph.ir import Graph, Node, Tensor
from tinyopt.runtime.prepare import prepare_node

MAX_DW_TAPS = 64


def patch_bytes(k: int) -> int:
    """An im2col patch of ``k`` int8 values rounded up to whole 4-byte words.

    >>> patch_bytes(27), patch_bytes(40)
    (28, 40)
    """
    return (k + 3) // 4 * 4


def small_accumulator(bias: np.ndarray, abs_weight_sums: np.ndarray, shifts) -> int:
    """1 when every accumulator stays below 2^30 in magnitude (|bias| + 128 * sum|w|, since |x| <= 128)
    and every shift is a right shift: the kernels may then requantize with ``tinyopt_mbqm_small``.

    >>> small_accumulator(np.array([5]), np.array([100]), [-3]), small_accumulator(np.array([5]), np.array([1]), [0])
    (1, 0)
    """
    bound = np.abs(np.asarray(bias, np.int64)) + 128 * np.asarray(abs_weight_sums, np.int64)
    return int(bool(bound.max(initial=0) < 2**30 and np.max(np.asarray(shifts)) <= -1))


def interleave_pairs(w: np.ndarray) -> np.ndarray:
    """Filters [O][K] stored in pairs interleaved per 4 values (an odd last filter stays as it is).

    >>> interleave_pairs(np.arange(16).reshape(2, 8)).reshape(-1).tolist()
    [0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 12, 13, 14, 15]
    """
    o, k = w.shape
    out = w.copy()
    pairs = o // 2 * 2
    blocks = w[:pairs].reshape(o // 2, 2, k // 4, 4).transpose(0, 2, 1, 3)
    out[:pairs] = blocks.reshape(pairs, k)
    return out


def pack_requant(bias, multipliers, shifts, output_offset: int, act_min: int, act_max: int, small: int,
                 group: int = 2):
    """Per group of ``group`` channels (a conv's filter pair, a depthwise layer's 4 lanes), the words the
    Cortex-M4 loops read with LDMs: [b x group, m x group, r x group, s x group], e.g. for a pair
    [b0, b1, m0, m1, r0, r1, s0, s1], with s = -shift and r = 2^(s-1) + output_offset * 2^s, so that
    ((y + (y < 0 ? -1 : 0) + r) >> s) is the rounded right shift plus the output offset in one add
    (adding a multiple of 2^s before an arithmetic shift adds exactly that multiple after it).

    None unless the loop applies: whole groups, the clamp is all of int8 (one SSAT), the
    accumulators are 'small' (2*acc fits, see tinyopt_mbqm_small) and every s is in 1..22, which keeps
    |y + r| < 2^30 + 2^22 * 128.5 < 2^31.

    >>> pack_requant([7, -3], [1 << 30, 3 << 29], [-1, -2], -128, -128, 127, 1).tolist()
    [7, -3, 1073741824, 1610612736, -255, -510, 1, 2]
    """
    s = -np.asarray(shifts, np.int64).reshape(-1)
    oc = s.size
    if oc % group or (act_min, act_max) != (-128, 127) or not small or s.min() < 1 or s.max() > 22:
        return None
    r = (1 << (s - 1)) + output_offset * (1 << s)
    cols = [np.asarray(bias, np.int64), np.asarray(multipliers, np.int64).reshape(-1), r, s]
    return np.stack([c.reshape(oc // group, group) for c in cols], axis=1).reshape(-1)


def pack_depthwise_lanes(w: np.ndarray) -> np.ndarray:
    """Depthwise weights [taps][C] as int32 words [C/4][taps][2]: int16 pairs in SXTB16 lane order,
    (w_c, w_c+2) then (w_c+1, w_c+3), low half first.

    >>> pack_depthwise_lanes(np.array([[1, -2, 3, -4]])).tolist()  # 1 | 3 << 16, -2 & 0xffff | -4 << 16
    [196609, -196610]
    """
    taps, c = w.shape
    h = w.reshape(taps, c // 4, 4)[:, :, [0, 2, 1, 3]].transpose(1, 0, 2).reshape(-1, 2).astype(np.int64)
    return (h[:, 0] & 0xFFFF) + h[:, 1] * 65536


@dataclass
class OpParams:
    """The prepared integers of one node; ``kind`` picks the C kernel."""

    kind: str
    ints: dict = field(default_factory=dict)
    arrays: dict = field(default_factory=dict)  # name -> (C type, np.ndarray)


def _where(index: int, node: Node) -> str:
    return f"node {index} '{node.name}' ({node.op})"


def _check_int8(graph: Graph, index: int, node: Node, tensors: list[Tensor]) -> None:
    for t in tensors:
        if t.dtype != "int8" or t.quant is None:
            raise UnsupportedOpError(
                f"tensor '{t.name}' is {t.dtype}{'' if t.quant else ' without quantization'}; the C "
                "generator handles int8 quantized tensors", path=graph.source, where=_where(index, node),
                fix="convert the model to int8 first (tinyopt convert) or deploy the .tflite with TFLM")


def _per_channel(a, n: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(a, dtype=np.int64).reshape(-1), (n,)).copy()


def _int32(a: np.ndarray, graph: Graph, index: int, node: Node) -> np.ndarray:
    if a.min(initial=0) < -(2**31) or a.max(initial=0) > 2**31 - 1:
        raise UnsupportedOpError("the bias with the input offset folded in overflows int32", path=graph.source,
                                 where=_where(index, node), fix="requantize the layer with smaller weights")
    return a


def _bias(graph: Graph, node: Node, n: int) -> np.ndarray:
    b = graph.tensors[node.inputs[2]] if len(node.inputs) > 2 and node.inputs[2] else None
    return np.zeros(n, np.int64) if b is None else np.asarray(b.data, dtype=np.int64).reshape(-1)


def _conv_like(graph: Graph, index: int, node: Node, depthwise: bool) -> OpParams:
    x, w = graph.tensors[node.inputs[0]], graph.tensors[node.inputs[1]]
    y = graph.tensors[node.outputs[0]]
    _check_int8(graph, index, node, [x, y, w])
    q = prepare_node(graph, node)
    _, ih, iw, ic = x.shape
    _, oh, ow, oc = y.shape
    _, kh, kw, _ = w.shape
    wq = np.asarray(w.data, dtype=np.int64)
    wsum = wq.sum(axis=(0, 1, 2)) if depthwise else wq.reshape(oc, -1).sum(axis=1)
    bias = _bias(graph, node, oc) + q["input_offset"] * wsum
    ints = dict(in_h=ih, in_w=iw, in_c=ic, out_h=oh, out_w=ow, out_c=oc, k_h=kh, k_w=kw,
                stride_h=q["stride_h"], stride_w=q["stride_w"], dil_h=q["dilation_h"], dil_w=q["dilation_w"],
                pad_h=q["padding_h"], pad_w=q["padding_w"], depth_multiplier=q.get("depth_multiplier", 1),
                input_zp=-q["input_offset"], output_offset=q["output_offset"],
                act_min=q["output_activation_min"], act_max=q["output_activation_max"])
    if depthwise:  # channel-major [O][KH*KW]: one channel's taps are adjacent
        if kh * kw > MAX_DW_TAPS:
            raise UnsupportedOpError(f"a {kh}x{kw} depthwise kernel has more than {MAX_DW_TAPS} taps",
                                     path=graph.source, where=_where(index, node),
                                     fix="use a depthwise kernel of at most 8x8")
        weights = wq.reshape(kh * kw, oc).T
    else:  # [O][patch], the patch zero-padded to a multiple of 4 for the 4-byte SIMD loads
        k = kh * kw * ic
        weights = np.zeros((oc, patch_bytes(k)), np.int64)
        weights[:, :k] = wq.reshape(oc, k)
        weights = interleave_pairs(weights)  # the layout of the 2-pixel x 2-filter loops
    ints["patch"] = 0 if depthwise else patch_bytes(kh * kw * ic)
    ints["small_acc"] = small_accumulator(bias, np.abs(wq).sum(axis=(0, 1, 2)) if depthwise
                                          else np.abs(wq).reshape(oc, -1).sum(axis=1), q["output_shift"])
    arrays = {"weights": ("int8_t", weights.astype(np.int8)),
              "bias": ("int32_t", _int32(bias, graph, index, node)),
              "multiplier": ("int32_t", _per_channel(q["output_multiplier"], oc)),
              "shift": ("int32_t", _per_channel(q["output_shift"], oc))}
    if depthwise:
        arrays["pad_row"] = ("int8_t", np.full(ic, -q["input_offset"], np.int64))
        if kh * kw == 9 and ints["depth_multiplier"] == 1 and oc % 4 == 0:
            arrays["lanes"] = ("int32_t", pack_depthwise_lanes(wq.reshape(9, oc)))
    if not depthwise or "lanes" in arrays:  # the M4 loops: conv filter pairs, 3x3 depthwise 4-lane groups
        rq = pack_requant(arrays["bias"][1], arrays["multiplier"][1], arrays["shift"][1], q["output_offset"],
                          ints["act_min"], ints["act_max"], ints["small_acc"], group=4 if depthwise else 2)
        if rq is not None:
            arrays["rq"] = ("int32_t", rq)
    return OpParams("depthwise_conv2d" if depthwise else "conv2d", ints, arrays)


def _fully_connected(graph: Graph, index: int, node: Node) -> OpParams:
    x, w = graph.tensors[node.inputs[0]], graph.tensors[node.inputs[1]]
    y = graph.tensors[node.outputs[0]]
    _check_int8(graph, index, node, [x, y, w])
    q = prepare_node(graph, node)
    if q["weights_offset"] != 0:
        raise UnsupportedOpError("weights with a non-zero zero point", path=graph.source,
                                 where=_where(index, node), fix="quantize weights symmetrically (int8 spec)")
    o, depth = w.shape
    wq = np.asarray(w.data, dtype=np.int64)
    bias = _bias(graph, node, o) + q["input_offset"] * wq.sum(axis=1)
    ints = dict(batches=x.size // depth, accum_depth=depth, out_c=o,
                small_acc=small_accumulator(bias, np.abs(wq).sum(axis=1), q["output_shift"]),
                output_offset=q["output_offset"],
                act_min=q["output_activation_min"], act_max=q["output_activation_max"])
    arrays = {"weights": ("int8_t", wq.astype(np.int8)),
              "bias": ("int32_t", _int32(bias, graph, index, node)),
              "multiplier": ("int32_t", _per_channel(q["output_multiplier"], o)),
              "shift": ("int32_t", _per_channel(q["output_shift"], o))}
    rq = pack_requant(arrays["bias"][1], arrays["multiplier"][1], arrays["shift"][1], q["output_offset"],
                      ints["act_min"], ints["act_max"], ints["small_acc"]) if depth % 4 == 0 else None
    if rq is not None:  # the M4 loop: filter pairs interleaved per 4 weights, as in conv
        arrays["rq"] = ("int32_t", rq)
        arrays["wpairs"] = ("int8_t", interleave_pairs(wq).astype(np.int8))
    return OpParams("fully_connected", ints, arrays)


def _pool(graph: Graph, index: int, node: Node) -> OpParams:
    x, y = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
    _check_int8(graph, index, node, [x, y])
    if not (x.quant.scale[0] == y.quant.scale[0] and x.quant.zero_point[0] == y.quant.zero_point[0]):
        raise UnsupportedOpError("pooling input and output quantization differ", path=graph.source,
                                 where=_where(index, node),
                                 fix="quantize pooling with the same scale and zero point on both sides")
    q = prepare_node(graph, node)
    _, ih, iw, c = x.shape
    ints = dict(in_h=ih, in_w=iw, channels=c, out_h=q["out_h"], out_w=q["out_w"], f_h=q["filter_h"],
                f_w=q["filter_w"], stride_h=q["stride_h"], stride_w=q["stride_w"], pad_h=q["padding_h"],
                pad_w=q["padding_w"], act_min=q["output_activation_min"], act_max=q["output_activation_max"])
    return OpParams("average_pool2d" if node.op == "AVERAGE_POOL_2D" else "max_pool2d", ints)


def _add(graph: Graph, index: int, node: Node) -> OpParams:
    a, b = graph.tensors[node.inputs[0]], graph.tensors[node.inputs[1]]
    y = graph.tensors[node.outputs[0]]
    _check_int8(graph, index, node, [a, b, y])
    if a.shape != b.shape or a.shape != y.shape:
        raise UnsupportedOpError(f"broadcasting ADD {list(a.shape)} + {list(b.shape)}", path=graph.source,
                                 where=_where(index, node), fix="give both inputs the same shape")
    q = prepare_node(graph, node)
    keys = ("input1_offset", "input2_offset", "output_offset", "left_shift", "input1_multiplier", "input1_shift",
            "input2_multiplier", "input2_shift", "output_multiplier", "output_shift")
    ints = {k: int(q[k]) for k in keys}
    ints.update(size=y.size, act_min=q["output_activation_min"], act_max=q["output_activation_max"])
    # every operand of the three requantizations stays below 2^30 (|x + offset| <= 255 << left_shift, and a
    # multiplier below 1 with no left shift only shrinks it): the add kernel may use tinyopt_mbqm_small
    ints["small"] = int(ints["left_shift"] <= 21 and max(ints["input1_shift"], ints["input2_shift"],
                                                         ints["output_shift"]) <= 0)
    return OpParams("add", ints)


def _softmax(graph: Graph, index: int, node: Node) -> OpParams:
    x, y = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
    _check_int8(graph, index, node, [x, y])
    q = prepare_node(graph, node)
    depth = x.shape[-1]
    ints = dict(rows=x.size // depth, depth=depth, input_multiplier=q["input_multiplier"],
                input_left_shift=q["input_left_shift"], diff_min=q["diff_min"])
    return OpParams("softmax", ints)


def _mean(graph: Graph, index: int, node: Node) -> OpParams:
    x, y = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
    _check_int8(graph, index, node, [x, y])
    q = prepare_node(graph, node)
    if len(x.shape) != 4 or sorted(q["axes"]) != [1, 2]:
        raise UnsupportedOpError(f"MEAN over axes {q['axes']} of a rank-{len(x.shape)} tensor", path=graph.source,
                                 where=_where(index, node),
                                 fix="the C generator reduces the spatial axes [1, 2] of NHWC tensors")
    ints = dict(channels=x.shape[3], count=q["num_elements_in_axis"], input_zero_point=q["input_zero_point"],
                output_zero_point=q["output_zero_point"], multiplier=q["mean_multiplier"], shift=q["mean_shift"])
    return OpParams("mean", ints)


PREPARE = {
    "MEAN": _mean,
    "CONV_2D": lambda g, i, n: _conv_like(g, i, n, depthwise=False),
    "DEPTHWISE_CONV_2D": lambda g, i, n: _conv_like(g, i, n, depthwise=True),
    "FULLY_CONNECTED": _fully_connected,
    "AVERAGE_POOL_2D": _pool,
    "MAX_POOL_2D": _pool,
    "ADD": _add,
    "SOFTMAX": _softmax,
    "RESHAPE": lambda g, i, n: OpParams("reshape", {"size": g.tensors[n.outputs[0]].size}),
}


def prepare(graph: Graph, index: int, node: Node) -> OpParams:
    """The kernel choice and integer parameters of ``node``; unsupported operators are named with index."""
    if node.op not in PREPARE:
        raise UnsupportedOpError(f"operator {node.op} has no C kernel", path=graph.source,
                                 where=f"node {index} '{node.name}'",
                                 fix=f"the C generator supports {', '.join(sorted(PREPARE))}; replace the "
                                     "operator or deploy the .tflite with TFLM")
    return PREPARE[node.op](graph, index, node)
