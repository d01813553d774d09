"""Packing for the C kernels: the helpers every record's ``pack_c`` uses, and ``prepare`` (node → OpParams).

The integers (multipliers, shifts, offsets, activation bounds, padding, softmax parameters) come from the
record's ``prepare``, TFLM's Prepare step, so the numpy runtime and the generated C agree by construction.
What is ours is packing: weights in the layout the kernel walks, and the input offset folded into the bias
(``sum w*(x+off) = sum w*x + off*sum w``, exact in integers; the kernels feed the input zero point at padded
taps, which then contribute exactly 0 as in the reference).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tinyopt import ops
from tinyopt.errors import UnsupportedOpError
from tinyopt.graph.ir import Graph, Node, Tensor

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

    >>> (small_accumulator(np.array([5]), np.array([100]), [-3]),
    ...  small_accumulator(np.array([5]), np.array([1]), [0]))
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


TWIN_LIMIT = 1 << 23  # |A| below this: 256 * A + B still names A exactly in 32 bits


def twin_sum_range(w: np.ndarray, bias: np.ndarray, x_lo: int = -128, x_hi: int = 127) -> np.ndarray:
    """Per filter, the largest |bias + sum x*w| over every input x in [x_lo, x_hi]^K.

    >>> twin_sum_range(np.array([[2, -3]]), np.array([10])).tolist()  # 10 + 127*2 + 128*3
    [648]
    """
    w = np.asarray(w, np.int64)
    hi = np.maximum(x_hi * w, x_lo * w).sum(axis=1)
    lo = np.minimum(x_hi * w, x_lo * w).sum(axis=1)
    b = np.asarray(bias, np.int64)
    return np.maximum(np.abs(b + hi), np.abs(b + lo))


def pack_twins(w: np.ndarray, groups: int) -> np.ndarray:
    """Filters [O][K] (O a multiple of 2 * groups, K of 4) as "twin" words for the Cortex-M4 loops.

    Filters 2j (A) and 2j+1 (B) share one word per two input values i, k: its 16-bit lanes hold
    256 * a + b (the low byte is b, the high byte a corrected for b's borrow), so SMLAD on the word sums
    256 * A + B and SMLAD on its SXTB16 (the low bytes) sums B alone: A = (first - second) >> 8, exact
    while |A| < 2^23 (``twin_sum_range``). Per block of 4 inputs and group of ``groups`` pairs the words
    are [pairs' (v0, v2) words..., pairs' (v1, v3) words...], the order of the x lanes SXTB16 makes.

    >>> w = np.array([[1, 2, 3, 4], [-1, 0, 5, -6]])
    >>> [hex(v & 0xFFFFFFFF) for v in pack_twins(w, 1)]  # lanes 256*1-1, 256*3+5 ; 256*2+0, 256*4-6
    ['0x30500ff', '0x3fa0200']
    """
    o, k = w.shape
    h = np.asarray(w[0::2], np.int64) * 256 + np.asarray(w[1::2], np.int64)  # [pairs][K] int16 lanes
    assert h.min(initial=0) >= -32768 and h.max(initial=0) <= 32767
    h = h.reshape(o // 2 // groups, groups, k // 4, 2, 2)  # [group][pair][block][lane pair i/k][even/odd]
    h = h.transpose(0, 2, 4, 1, 3)  # [group][block][even/odd][pair][lane]
    return ((h[..., 0] & 0xFFFF) + h[..., 1] * 65536).astype(np.int64).reshape(-1)


def twins_fit(w: np.ndarray, bias: np.ndarray) -> bool:
    """Every A filter (even rows) of ``w`` [O][K] keeps |A| < 2^23 for any int8 input, bias included and
    not (the loops start from the bias), and its 16-bit lanes 256 * a + b fit."""
    w = np.asarray(w, np.int64)
    a, b = w[0::2], w[1::2]
    if (256 * a + b).min(initial=0) < -32768 or (256 * a + b).max(initial=0) > 32767:
        return False
    ba = np.asarray(bias, np.int64)[0::2]
    worst = np.maximum(twin_sum_range(a, ba), twin_sum_range(a, np.zeros_like(ba)))
    return bool(worst.max(initial=0) < TWIN_LIMIT)


def constant_channels(w: np.ndarray, bias, multipliers, shifts, output_offset: int):
    """(bias, multipliers, shifts, small, constants) for the Cortex-M4 loops: a channel whose weights are all
    zero (a dead filter; real models carry them with int32 biases near 2^31, far beyond the loops' 2^30
    bound) outputs the constant MBQM(bias) + offset, computed here; its bias becomes 0, its multiplier 0 and
    its shift -1 (``requant_words`` then gives r = 2 x the constant). ``small``: ``small_accumulator`` of
    the channels so rewritten; ``constants``: channel -> constant. ``w`` [O][K].

    >>> b, m, s, small, c = constant_channels(np.array([[0, 0], [1, 2]]), [1 << 30, 7], [1 << 30] * 2,
    ...                                       [-2, -3], 5)
    >>> b.tolist(), m.tolist(), s.tolist(), small, c  # 2^30 * 2^30 / 2^31 = 2^29, / 4 = 2^27, + 5
    ([0, 7], [0, 1073741824], [-1, -3], 1, {0: 134217733})
    """
    from tinyopt.runtime.fixedpoint import multiply_by_quantized_multiplier

    w = np.asarray(w, np.int64).reshape(len(w), -1)
    dead = ~w.any(axis=1)
    bias = np.asarray(bias, np.int64).reshape(-1).copy()
    m = np.asarray(multipliers, np.int64).reshape(-1).copy()
    s = np.asarray(shifts, np.int64).reshape(-1).copy()
    values = multiply_by_quantized_multiplier(bias[dead], m[dead], s[dead]) + output_offset
    constants = {int(c): int(v) for c, v in zip(np.flatnonzero(dead), values)}
    bias[dead], m[dead], s[dead] = 0, 0, -1
    return bias, m, s, small_accumulator(bias, np.abs(w).sum(axis=1), s), constants


def requant_words(bias, multipliers, shifts, output_offset: int, small: int, constants=None):
    """Per output channel [m, r, s] for the Cortex-M4 loops' requantization, or None when they cannot take
    the layer: the accumulators are not 'small' or a shift is outside 1..22. The loops compute
    y = SMMLAR(2 acc, m, r) - (acc < 0 ? 1 : 0), then y >> s, then the clamp: with s = -shift and
    r = 2^(s-1) + output_offset * 2^s that is TFLM's rounding doubling high multiply (SMMULR of 2 acc,
    exact while |acc| < 2^30), its rounding right shift and the output offset (adding a multiple of 2^s
    before an arithmetic shift adds exactly that multiple after it; the sign of acc decides the -1 where
    the sign of the product would: they differ only when the product is 0, and then the -1 does not change
    the shift). s <= 22 keeps |y + r| < 2^30 + 2^22 * 128.5 < 2^31. A channel with a ``constants`` entry
    (``constant_channels``: m = 0, acc = 0, s = 1) gets r = 2 x its constant, clipped to +-2^20 (the clamp
    saturates it the same).

    >>> requant_words([0], [1 << 30], [-3], -128, 1).tolist()  # r = 4 - 128 * 8
    [[1073741824, -1020, 3]]
    """
    s = -np.asarray(shifts, np.int64).reshape(-1)
    if not small or s.min() < 1 or s.max() > 22:
        return None
    r = (1 << (s - 1)) + output_offset * (1 << s)
    for c, value in (constants or {}).items():
        r[c] = 2 * min(max(value, -2**20), 2**20)
    return np.stack([np.asarray(multipliers, np.int64).reshape(-1), r, s], axis=1)


def pack_conv_twins(w: np.ndarray, bias, multipliers, shifts, output_offset: int, small: int, constants=None):
    """(twin words, requantization words) of a conv layer's 2-pixel x 4-filter Cortex-M4 loop, or None.

    ``w`` [O][P] (P a multiple of 4) is zero-padded to whole groups of 4 filters. Per group the
    requantization words are 16: the pairs' starting accumulators [256 bA + bB, bB] x 2 (mod 2^32),
    then [m, r, s] for its 4 channels (``requant_words``); padded filters requantize 0 harmlessly.
    """
    w = np.asarray(w, np.int64)
    o, k = w.shape
    bias = np.asarray(bias, np.int64)
    words = requant_words(bias, multipliers, shifts, output_offset, small, constants)
    pad = -o % 4
    wp = np.concatenate([w, np.zeros((pad, k), np.int64)])
    bp = np.concatenate([bias, np.zeros(pad, np.int64)])
    if words is None or not twins_fit(wp, bp):
        return None
    words = np.concatenate([words, np.tile([[1 << 30, 1, 1]], (pad, 1))])
    ba, bb = bp[0::2], bp[1::2]
    start = np.stack([((ba * 256 + bb + 2**31) % 2**32) - 2**31, bb], axis=1).reshape(-1, 4)  # per group
    rq = np.concatenate([start, words.reshape(-1, 12)], axis=1).reshape(-1)
    return pack_twins(wp, 2), rq


DW_SPAN = 16  # output columns per band of the depthwise pair loop (bounds its buffer; TINYOPT_DW_SPAN in C)


def pack_depthwise_pairs(w: np.ndarray, bias, multipliers, shifts, output_offset: int, small: int,
                         constants=None):
    """(lanes, requantization words) of a 3x3 depthwise layer's Cortex-M4 pair loop, or None.

    Lanes: the weights doubled (the loop's accumulators are 2 acc, what SMMLAR takes) as
    ``pack_depthwise_lanes`` words, 18 per group of 4 channels. Per group 16 requantization words: the
    doubled biases of its 4 channels, then m x 4, r x 4, s x 4 (``requant_words``).

    >>> lanes, rq = pack_depthwise_pairs(np.ones((9, 4), np.int64), [1, 2, 3, 4], [1 << 30] * 4,
    ...                                  [-1] * 4, 0, 1)
    >>> lanes[:2].tolist(), rq[:4].tolist(), rq[4:7].tolist(), rq[12:].tolist()
    ([131074, 131074], [2, 4, 6, 8], [1073741824, 1073741824, 1073741824], [1, 1, 1, 1])
    """
    words = requant_words(bias, multipliers, shifts, output_offset, small, constants)
    taps, c = w.shape
    if words is None or taps != 9 or c % 4:
        return None
    b2 = 2 * np.asarray(bias, np.int64).reshape(-1, 4)
    rq = np.concatenate([b2, words.reshape(-1, 4, 3).transpose(0, 2, 1).reshape(-1, 12)], axis=1)
    return pack_depthwise_lanes(2 * np.asarray(w, np.int64)), rq.reshape(-1)


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
    """The prepared integers of one node, packed for its C kernel.

    ``kind`` names the kernel (``kernels/<kind>.c``, struct ``<prefix>_<struct>``); ``ints`` are the struct's
    scalar fields under the same names as the record's ``OpData``; ``arrays`` its constant arrays.
    What the planner and the call site need to know, without knowing the operator:
    ``signature``: the kernel's arguments after the parameter block — ``unary`` (in, out), ``binary``
    (in1, in2, out), ``lists`` (an array of the non-constant inputs, an array of the outputs), ``rows``
    (in, out, scratch, reverse, other) or ``rows_col`` (in, out, scratch, col, reverse, other);
    ``optional``: pointer fields left NULL when absent from ``arrays``; ``inplace``:
    ``rows`` (a row-wise kernel whose output may overlap its dying input, given a one-row scratch) or
    ``elementwise`` (element i is written after it is read); ``fuses_add``: a residual ADD may run as its
    epilogue; ``epilogue``: this node can be that ADD; ``col_bytes``: an im2col buffer; ``scratch_rows``:
    output rows a ``rows`` kernel finishes before storing them in place (its scratch holds that many);
    ``fused_asm``: its Cortex-M4 arrays (rq, lanes, wpairs) also serve a fused ADD (else that node drops
    them and runs its portable C path); ``aliases``: no kernel, the output is the input (RESHAPE);
    ``stream``: how the node may run on a band of rows inside a streamed segment (``stream.py``):
    ``window`` (its struct's ``in_h``, ``out_h``, ``padding_h`` describe the band), ``rows`` (element-wise:
    ``size`` = the band's elements) or ``sum`` (a global average pool that adds rows into int32 sums);
    ``col_free_extra``: the estimated extra Cortex-M4 instructions per inference of running without the
    ``col`` buffer (the kernel then gets NULL; ``None``: col is required), which a RAM-saving plan may pay.
    """

    kind: str
    ints: dict = field(default_factory=dict)
    arrays: dict = field(default_factory=dict)  # name -> (C type, np.ndarray)
    signature: str = "unary"
    optional: tuple = ()
    inplace: str | None = None
    fuses_add: bool = False
    epilogue: bool = False
    col_bytes: int = 0
    scratch_rows: int = 1
    fused_asm: bool = True
    aliases: bool = False
    stream: str | None = None
    struct: str = ""  # filled by ``prepare`` from the record's CKernel
    entry: str = ""   # the kernel function (after the prefix)
    files: tuple = ()  # kernel files the node needs
    macs: int = 0
    col_free_extra: float | None = None


def where(index: int, node: Node) -> str:
    return f"node {index} '{node.name}' ({node.op})"


def check_int8(graph: Graph, index: int, node: Node, tensors: list[Tensor]) -> None:
    for t in tensors:
        if t.dtype != "int8" or t.quant is None:
            raise UnsupportedOpError(
                f"tensor '{t.name}' is {t.dtype}{'' if t.quant else ' without quantization'}; the C "
                "generator handles int8 quantized tensors", path=graph.source, where=where(index, node),
                fix="convert the model to int8 first (tinyopt convert) or deploy the .tflite with TFLM")


def per_channel(a, n: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(a, dtype=np.int64).reshape(-1), (n,)).copy()


def int32_or_fail(a: np.ndarray, graph: Graph, index: int, node: Node) -> np.ndarray:
    if a.min(initial=0) < -(2**31) or a.max(initial=0) > 2**31 - 1:
        raise UnsupportedOpError("the bias with the input offset folded in overflows int32",
                                 path=graph.source, where=where(index, node),
                                 fix="requantize the layer with smaller weights")
    return a


def bias_of(graph: Graph, node: Node, n: int) -> np.ndarray:
    b = graph.tensors[node.inputs[2]] if len(node.inputs) > 2 and node.inputs[2] else None
    return np.zeros(n, np.int64) if b is None else np.asarray(b.data, dtype=np.int64).reshape(-1)


def prepare(graph: Graph, index: int, node: Node) -> OpParams:
    """The kernel choice and integer parameters of ``node``; unsupported operators are named with index."""
    rec = ops.find(node.op)
    if rec is None or rec.c is None:
        raise UnsupportedOpError(f"operator {node.op} has no C kernel", path=graph.source,
                                 where=f"node {index} '{node.name}'",
                                 fix=f"the C generator supports {', '.join(c_ops())}; replace the "
                                     "operator or deploy the .tflite with TFLM")
    p = rec.pack_c(graph, index, node)
    p.macs = rec.macs(graph, node)
    if not p.struct:  # the record's kernel (a pack may choose another: its struct, entry and files)
        p.struct, p.entry = rec.c.struct, rec.c.entry
        p.files = () if p.aliases else (rec.c.file, *rec.c.extra_files)
    return p


def lut(rec, graph: Graph, index: int, node: Node) -> OpParams:
    """An int8 element-wise operator whose output depends on the input value alone, as a 256-entry table
    computed by the record's own bit-exact ``eval`` (kernels/lut.c: one load per element, in place)."""
    x, y = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
    check_int8(graph, index, node, [x, y])
    p = rec.prepare(graph, node, True)
    table = np.asarray(rec.eval(p, [np.arange(-128, 128, dtype=np.int8).reshape(256, 1)]),
                       np.int8).reshape(256)
    return OpParams("lut", {"size": y.size}, {"table": ("int8_t", table)}, inplace="elementwise",
                    struct="lut_params", entry="lut", files=("lut",))


def c_ops() -> tuple[str, ...]:
    """The operators the C generator has kernels for."""
    return tuple(r.name for r in ops.records() if r.c is not None)
