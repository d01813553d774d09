"""Weights that stay compressed on the device (issue #17): the layouts the C library's ``cmat`` kernels
compute from, packed from a layer's int8 weights, and the choice of one per layer.

Every layout stores exactly the int8 values of the graph (``decode`` gives them back and ``pack`` checks
it), so a compressed layer computes what TFLM's reference kernel computes on those values and the numpy
runtime stays the reference, bit for bit:

=========  ==============================================================================================
``i8``     int8 filters (a layer that compresses no further, so no other conv/dense kernel is linked)
``p4``     signed 4-bit values, 8 per word (int4 weights: 4-bit QAT, a 4-bit grid)
``p2``     signed 2-bit values in [-2, 1], 16 per word (ternary, binary and 2-bit weights)
``lut``    1- to 8-bit indices into int8 tables (weight sharing: one table per layer, or per channel)
``sparse`` index-coded filter rows: a column step byte and a value per stored weight (int8, a signed
           nibble, or a 4/8-bit codebook index), fillers bridging gaps over 255 (pruned weights)
=========  ==============================================================================================

Depthwise layers take ``i8`` or ``p4`` (their filters are a few taps). A graph with no encoded weight
(``Tensor.encoding``) keeps the dense kernels; in one that has some, ``choose`` gives every conv, dense and
depthwise layer the layout that minimizes flash (weights, requantization constants and the code of the
kernel files, counted once) while the estimated Cortex-M4 instructions of all of them stay within
``max_slowdown`` times those of the dense kernels (``COST``: instructions per MAC or per stored weight,
measured under qemu, see ``bench/deploy_compressed.py``).
"""

from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass, field

import numpy as np

from tinyopt import ops
from tinyopt.errors import ConfigError
from tinyopt.graph.encoding import index_bits, value_range
from tinyopt.graph.ir import Graph, Node

TILE = 4            # input vectors per pass (TINYOPT_CMAT_TILE)
WIDE = ("i8", "p4", "p2", "lut")  # layouts that multiply 16-bit lanes of the inputs on the Cortex-M4
MAX_DW_TAPS = 64    # TINYOPT_CDW_MAX_TAPS
MAX_SLOWDOWN = 1.5  # default instruction budget: this times the dense kernels' estimate
SHORT_FIELDS = ("in_h", "in_w", "in_c", "out_h", "out_w", "out_c", "filter_h", "filter_w",  # int16_t in
                "stride_h", "stride_w", "dilation_h", "dilation_w", "padding_h", "padding_w",  # the struct
                "depth_multiplier")
NIB4 = np.array([0, 1, 4, 5, 2, 3, 6, 7])                  # p4: nibble j of a word holds weight NIB4[j]
CRUMB2 = np.array([4 * (j % 4) + j // 4 for j in range(16)])  # p2: field j holds weight CRUMB2[j]

# Estimated Cortex-M4 instructions (qemu, -O2): (per MAC, per output) of a dense layout by vectors per pass
# (1: a dense layer's single row; TILE: a conv's patches), MACs counted on filters padded to the layout's
# block (8 or 16 weights); (per stored entry and vector, per output) of the sparse one; a codebook layout
# adds DECODE per weight and pass (4-bit / 8-bit indices, other widths); im2col costs GATHER per patch byte
# (transposed or under 16 channels: bytes one at a time). Fitted under qemu on 1x1 convs and dense layers
# of 16 to 512 inputs and on the first convs of LeNet-5 and the DS-CNN (bench/deploy_compressed.py
# --calibrate); the dense kernels' (conv2d.c, depthwise_conv2d.c, fully_connected.c) on the same builds.
COST = {
    "dense": {"fc": (1.11, 11.0), "conv": (0.93, 14.0), "depthwise": (3.7, 10.0)},
    "i8": {1: (2.2, 20.0), TILE: (1.36, 75.0)},
    "p4": {1: (2.4, 20.0), TILE: (1.46, 75.0)},
    "p2": {1: (3.1, 20.0), TILE: (1.55, 75.0)},
    "lut": {1: (2.2, 20.0), TILE: (1.36, 75.0)},
    "sparse": {1: (7.5, 20.0), TILE: (5.0, 40.0)},
    "cdw": (14.5, 0.0),
}
DECODE = {4: 7.0, 8: 6.0, "other": 14.0}
GATHER, GATHER_BYTES = 2.0, 10.0
BLOCK = {"p4": 8}  # weights per padded block (16 for the others)
# .text + .rodata of each kernel file in the Cortex-M4 build (arm-none-eabi-gcc -O2), counted once when
# used; the dense kernels' are what they link with (conv and depthwise call add.c for a fused ADD).
CODE = {"cmat": 1770, "cmat_i8": 580, "cmat_p4": 610, "cmat_p2": 740, "cmat_lut": 290, "cmat_sparse": 1500,
        "cdw": 920, "conv2d": 6800, "add": 1360, "depthwise_conv2d": 4700, "fully_connected": 2100}
DENSE_FILES = {"conv": ("conv2d", "add"), "depthwise": ("depthwise_conv2d", "add"),
               "fc": ("fully_connected",)}


@dataclass
class Packed:
    """One layer's weights in one layout: the C arrays and struct fields, and their exact bytes."""

    layout: str            # i8 | p4 | p2 | lut | sparse | cdw8 | cdw4
    arrays: dict           # name -> (C type, array)
    ints: dict             # tinyopt_cmat_params fields
    nbytes: int            # flash bytes of the weight arrays (tables and indices included)
    entries: int = 0       # sparse: stored entries (fillers included)
    what: str = ""         # how --explain names it
    variant: str = ""      # sparse: its values (i8, n4, c4, c8)


@dataclass
class Choice:
    """The layout of one layer, with what it costs."""

    layout: str            # a Packed layout, or "dense" (the int8 kernels of the record)
    weight_bytes: int      # weight arrays
    const_bytes: int       # bias, multipliers, shifts
    instructions: float    # estimated Cortex-M4 instructions of the layer
    dense_instructions: float
    int8_bytes: int        # the weights as plain int8
    what: str
    files: tuple = ()
    packed: Packed | None = field(default=None, repr=False)


# -- the weight matrix of a layer ------------------------------------------------------------------------

def kind_of(node: Node) -> str | None:
    """conv, depthwise or fc: the layers with a compressed kernel (CONV_2D, DEPTHWISE_CONV_2D and
    FULLY_CONNECTED, by their records' names)."""
    from tinyopt.ops.conv_2d import Conv2D
    from tinyopt.ops.depthwise_conv_2d import DepthwiseConv2D
    from tinyopt.ops.fully_connected import FullyConnected

    return {Conv2D.name: "conv", DepthwiseConv2D.name: "depthwise", FullyConnected.name: "fc"}.get(node.op)


def weight_matrix(graph: Graph, node: Node) -> np.ndarray:
    """The int8 weights as the kernels walk them: [O][K], a conv filter in its [KH][KW][I] patch order, a
    depthwise filter its KH*KW taps."""
    w = np.asarray(graph.tensors[node.inputs[1]].data, np.int64)
    if kind_of(node) == "depthwise":
        return w.reshape(-1, w.shape[-1]).T.copy()
    return w.reshape(w.shape[0], -1)


def _pad(w: np.ndarray, multiple: int) -> np.ndarray:
    o, k = w.shape
    out = np.zeros((o, -(-k // multiple) * multiple), np.int64)
    out[:, :k] = w
    return out


def _fits(w: np.ndarray, bits: int) -> bool:
    lo, hi = value_range(bits)
    return bool(w.size == 0 or (w.min() >= lo and w.max() <= hi))


def _words(fields: np.ndarray, width: int) -> np.ndarray:
    """Rows of unsigned ``width``-bit fields (32 // width per word, lowest first) as int32 words."""
    per = 32 // width
    f = fields.reshape(fields.shape[0], -1, per).astype(np.int64)
    words = (f << (width * np.arange(per))).sum(axis=2)
    return (((words + 2**31) % 2**32) - 2**31).astype(np.int64)


def _codebook(w: np.ndarray, include_zero: bool = False) -> tuple[np.ndarray, int, np.ndarray]:
    """(tables [T][stride], table_stride (0: one table), indices [O][K]) with the fewest table bytes."""
    rows = [np.unique(r) for r in w]
    if include_zero:
        rows = [np.union1d(r, [0]) for r in rows]
    shared = np.unique(np.concatenate(rows)) if rows else np.zeros(1, np.int64)
    stride = max(len(r) for r in rows)
    per_channel_better = len(shared) > 256 or (index_bits(stride) < index_bits(len(shared))
                                               and w.shape[0] * stride < len(shared) + w.size // 16)
    if not per_channel_better:
        return shared.reshape(1, -1), 0, np.searchsorted(shared, w)
    tables = np.zeros((len(rows), stride), np.int64)
    idx = np.zeros(w.shape, np.int64)
    for c, (r, u) in enumerate(zip(w, rows)):
        tables[c, :len(u)] = u
        idx[c] = np.searchsorted(u, r)
    return tables, stride, idx


# -- packers (each returns None when the layout cannot hold the weights) --------------------------------

def pack_i8(w: np.ndarray) -> Packed:
    a = _pad(w, 16)
    return Packed("i8", {"weights": ("int8_t", a)}, {"row_stride": a.shape[1]}, a.size, what="int8")


def pack_p4(w: np.ndarray) -> Packed | None:
    if not _fits(w, 4):
        return None
    a = _pad(w, 8)  # the lanes are zero-padded to 16-value blocks: whole 8-weight words suffice
    groups = a.reshape(a.shape[0], -1, 8)[:, :, NIB4] & 0xF
    words = _words(groups.reshape(a.shape[0], -1), 4)
    return Packed("p4", {"weights": ("int32_t", words)}, {"row_stride": a.shape[1] // 2}, 4 * words.size,
                  what="4-bit values")


def pack_p2(w: np.ndarray) -> Packed | None:
    if not _fits(w, 2):
        return None
    a = _pad(w, 16)
    groups = a.reshape(a.shape[0], -1, 16)[:, :, CRUMB2] & 0x3
    words = _words(groups.reshape(a.shape[0], -1), 2)
    ternary = bool(w.size and w.min() >= -1)
    return Packed("p2", {"weights": ("int32_t", words)}, {"row_stride": a.shape[1] // 4}, 4 * words.size,
                  what="ternary (2-bit)" if ternary else "2-bit values")


def _lsb_rows(idx: np.ndarray, bits: int) -> np.ndarray:
    """Each row's ``bits``-wide indices, lowest bit first, packed into whole bytes per row."""
    o, k = idx.shape
    b = ((idx[:, :, None] >> np.arange(bits)) & 1).reshape(o, k * bits).astype(np.uint8)
    return np.packbits(b, axis=1, bitorder="little")


def pack_lut(w: np.ndarray) -> Packed:
    tables, stride, idx = _codebook(w)
    bits = index_bits(tables.shape[1])
    rows = _lsb_rows(idx, bits)
    where = "per channel" if stride else "per layer"
    return Packed("lut", {"weights": ("uint8_t", rows), "table": ("int8_t", tables)},
                  {"row_stride": rows.shape[1], "bits": bits, "table_stride": stride},
                  rows.size + tables.size,
                  what=f"{bits}-bit codebook indices ({tables.shape[1]} values {where})")


def pack_sparse(w: np.ndarray, values: str) -> Packed | None:
    """Index-coded rows; ``values``: ``i8`` (int8), ``n4`` (signed nibbles), ``c4`` / ``c8`` (codebook
    indices of 4 / 8 bits)."""
    if values == "n4" and not _fits(w, 4):
        return None
    tables = idx = None
    stride = 0
    if values in ("c4", "c8"):
        tables, stride, idx = _codebook(w, include_zero=True)
        if tables.shape[1] > (16 if values == "c4" else 256):
            return None
    deltas: list[int] = []
    vals: list[int] = []
    counts = np.zeros(w.shape[0], np.int64)
    for o, row in enumerate(w):
        zero = 0 if idx is None else int(np.searchsorted(tables[o if stride else 0], 0))
        prev, n = 0, 0
        for c in np.flatnonzero(row).tolist():
            while c - prev > 255:  # a zero-valued filler 255 columns on
                deltas.append(255)
                vals.append(zero)
                prev += 255
                n += 1
            deltas.append(c - prev)
            vals.append(int(row[c]) if idx is None else int(idx[o, c]))
            prev, n = c, n + 1
        counts[o] = n
    if counts.max(initial=0) > 0xFFFF:
        return None
    v = np.asarray(vals, np.int64)
    if values in ("n4", "c4"):
        nib = v & 0xF
        if nib.size % 2:
            nib = np.append(nib, 0)
        stream = (nib[0::2] | (nib[1::2] << 4)) if nib.size else np.zeros(1, np.int64)
    else:
        stream = (v & 0xFF) if v.size else np.zeros(1, np.int64)
    arrays = {"weights": ("uint8_t", stream), "deltas": ("uint8_t", np.asarray(deltas or [0], np.int64)),
              "counts": ("uint16_t", counts)}
    ints = {"bits": 4 if values in ("n4", "c4") else 8}
    nbytes = stream.size + max(len(deltas), 1) + 2 * counts.size
    kept = np.count_nonzero(w) / max(w.size, 1)
    what = {"i8": "int8 values", "n4": "4-bit values", "c4": "4-bit codebook indices",
            "c8": "8-bit codebook indices"}[values]
    if tables is not None:
        arrays["table"] = ("int8_t", tables)
        ints["table_stride"] = stride
        nbytes += tables.size
    return Packed("sparse", arrays, ints, nbytes, entries=len(deltas),
                  what=f"sparse rows, {what}, {100 * kept:.1f} % kept", variant=values)


def pack_dw(w: np.ndarray, bits: int) -> Packed | None:
    """A depthwise layer's [C][taps] filters, stored tap-major [taps][C] as int8 or signed nibbles
    (channel c in the low half of byte c/2 when even; cdw.c)."""
    if w.shape[1] > MAX_DW_TAPS or (bits == 4 and not _fits(w, 4)):
        return None
    t = w.T  # [taps][C]
    if bits == 8:
        return Packed("cdw8", {"weights": ("int8_t", t)}, {"row_stride": t.shape[1], "bits": 8}, t.size,
                      what="int8 taps")
    a = _pad(t, 2) & 0xF
    rows = a[:, 0::2] | (a[:, 1::2] << 4)
    if rows.shape[1] % 2:  # a whole 16-bit read per four channels stays inside the row
        rows = np.concatenate([rows, np.zeros((rows.shape[0], 1), np.int64)], axis=1)
    return Packed("cdw4", {"weights": ("uint8_t", rows)}, {"row_stride": rows.shape[1], "bits": 4}, rows.size,
                  what="4-bit taps")


def candidates(w: np.ndarray, kind: str) -> list[Packed]:
    """Every layout that holds ``w`` exactly."""
    if kind == "depthwise":
        return [p for p in (pack_dw(w, 8), pack_dw(w, 4)) if p is not None]
    out = [pack_i8(w), pack_p4(w), pack_p2(w), pack_lut(w)]
    if np.count_nonzero(w) <= w.size // 2:  # index-coded rows pay off below half density
        out += [pack_sparse(w, v) for v in ("i8", "n4", "c4", "c8")]
    return [p for p in out if p is not None]


# -- the numpy reference of every layout: its int8 weights ----------------------------------------------

def _unwords(words: np.ndarray, width: int, count: int) -> np.ndarray:
    u = np.asarray(words, np.int64) & 0xFFFFFFFF
    per = 32 // width
    f = (u[:, :, None] >> (width * np.arange(per))) & ((1 << width) - 1)
    return f.reshape(u.shape[0], -1)[:, :count]


def decode(p: Packed, shape: tuple[int, int]) -> np.ndarray:
    """The [O][K] int8 weights ``p`` stores (what the C kernels multiply with)."""
    o, k = shape
    a = p.arrays
    if p.layout == "i8":
        return np.asarray(a["weights"][1], np.int64).reshape(o, -1)[:, :k]
    if p.layout == "cdw8":
        return np.asarray(a["weights"][1], np.int64).reshape(k, -1)[:, :o].T
    if p.layout in ("p4", "p2"):
        width, perm = (4, NIB4) if p.layout == "p4" else (2, CRUMB2)
        group = len(perm)
        f = _unwords(np.asarray(a["weights"][1]).reshape(o, -1), width, 10**9)
        f = f.reshape(o, -1, group)[:, :, np.argsort(perm)].reshape(o, -1)[:, :k]
        return np.where(f >= 1 << (width - 1), f - (1 << width), f)
    if p.layout == "cdw4":
        b = np.asarray(a["weights"][1], np.int64).reshape(k, -1)
        f = np.stack([b & 0xF, b >> 4], axis=2).reshape(k, -1)[:, :o].T
        return np.where(f > 7, f - 16, f)
    tables = np.asarray(a["table"][1], np.int64) if "table" in a else None
    stride = p.ints.get("table_stride", 0)
    if p.layout == "lut":
        bits = p.ints["bits"]
        rows = np.asarray(a["weights"][1], np.uint8).reshape(o, -1)
        b = np.unpackbits(rows, axis=1, bitorder="little")[:, : k * bits].reshape(o, k, bits)
        idx = (b.astype(np.int64) << np.arange(bits)).sum(axis=2)
        return np.stack([tables[c if stride else 0][idx[c]] for c in range(o)])
    # sparse
    out = np.zeros((o, k), np.int64)
    counts, deltas = np.asarray(a["counts"][1]), np.asarray(a["deltas"][1])
    stream = np.asarray(a["weights"][1], np.int64)
    e = 0
    for r in range(o):
        col = 0
        for _ in range(int(counts[r])):
            col += int(deltas[e])
            u = int((stream[e >> 1] >> (4 * (e & 1))) & 0xF) if p.ints["bits"] == 4 else int(stream[e])
            if tables is not None:
                v = int(tables[r if stride else 0][u])
            elif p.ints["bits"] == 4:
                v = u - 16 if u > 7 else u
            else:
                v = u - 256 if u > 127 else u
            if v:
                out[r, col] = v
            e += 1
    return out


# -- costs ---------------------------------------------------------------------------------------------

def vectors(graph: Graph, node: Node) -> int:
    """Input vectors a layout multiplies per pass: a conv's patches (TILE), a dense layer's rows."""
    if kind_of(node) == "fc":
        w = graph.tensors[node.inputs[1]]
        return min(TILE, max(1, graph.tensors[node.inputs[0]].size // w.shape[1]))
    return TILE


def _rate(layout: str, n: int) -> tuple[float, float]:
    """(per MAC or entry, per output) for n vectors per pass, between the measured 1 and TILE."""
    (a1, o1), (a4, o4) = COST[layout][1], COST[layout][TILE]
    t = (min(n, TILE) - 1) / (TILE - 1)
    return a1 + (a4 - a1) * t, o1 + (o4 - o1) * t


def _gather(graph: Graph, node: Node, kind: str, transposed: bool) -> float:
    """im2col: the patch bytes a conv gathers (none for a 1x1 stride-1 unpadded one, unless transposed)."""
    if kind != "conv":
        return 0.0
    q = ops.get(node.op).prepare(graph, node, True)
    wt = graph.tensors[node.inputs[1]]
    y = graph.tensors[node.outputs[0]]
    _, kh, kw, ic = wt.shape
    pixels = y.size // y.shape[-1]
    direct = (kh, kw, q.stride_h, q.stride_w, q.padding_h, q.padding_w) == (1, 1, 1, 1, 0, 0)
    if direct and not transposed:
        return 0.0
    return (GATHER_BYTES if transposed or ic < 16 else GATHER) * kh * kw * ic * pixels


def instructions(p: Packed, macs: int, w: np.ndarray, n: int, kind: str, outputs: int,
                 gather: float) -> float:
    """Estimated Cortex-M4 instructions of a layer in layout ``p``."""
    if p.layout.startswith("cdw"):
        return COST["cdw"][0] * macs
    if p.layout == "sparse":
        vectors_total = macs / max(w.size, 1)  # how many vectors the whole matrix is applied to
        per_entry, per_out = _rate("sparse", n)
        return per_entry * p.entries * vectors_total + per_out * outputs + gather
    k = w.shape[1]
    block = BLOCK.get(p.layout, 16)
    padded = macs * (-(-k // block) * block) / max(k, 1)
    per_mac, per_out = _rate(p.layout, n)
    decode = DECODE.get(p.ints.get("bits"), DECODE["other"]) * macs / n if p.layout == "lut" else 0.0
    return per_mac * padded + per_out * outputs + gather + decode


def const_bytes(multipliers: np.ndarray, shifts: np.ndarray, channels: int, compressed: bool) -> int:
    """Requantization constants in flash: int32 bias + multiplier + shift per channel for the dense
    kernels; the cmat kernels keep one multiplier and int8 shift when every channel has the same."""
    if not compressed:
        return 12 * channels
    same = np.unique(multipliers).size == 1 and np.unique(shifts).size == 1
    return 4 * channels + (5 if same else 5 * channels)


def layout_files(layout: str) -> tuple[str, ...]:
    """The kernel files a conv/dense layout compiles (the codebook layout multiplies with i8's dot)."""
    return ("cmat", "cmat_i8", "cmat_lut") if layout == "lut" else ("cmat", f"cmat_{layout}")


def layer_choices(graph: Graph, index: int, node: Node) -> list[Choice]:
    """The dense kernel and every compressed layout of one layer, priced."""
    kind = kind_of(node)
    rec = ops.get(node.op)
    w = weight_matrix(graph, node)
    macs = rec.macs(graph, node)
    n = vectors(graph, node)
    q = rec.prepare(graph, node, True)
    mult = np.broadcast_to(np.asarray(q.output_multiplier).reshape(-1), (w.shape[0],))
    shift = np.broadcast_to(np.asarray(q.output_shift).reshape(-1), (w.shape[0],))
    outputs = graph.tensors[node.outputs[0]].size
    per_mac, per_out = COST["dense"][kind]
    dense_instr = per_mac * macs + per_out * outputs + _gather(graph, node, kind, False)
    out = [Choice("dense", w.size, const_bytes(mult, shift, w.shape[0], False), dense_instr, dense_instr,
                  w.size, "int8 (dense kernel)", DENSE_FILES[kind])]
    cb = const_bytes(mult, shift, w.shape[0], True)
    for p in candidates(w, kind):
        files = ("cmat", "cdw") if kind == "depthwise" else layout_files(p.layout)
        gather = _gather(graph, node, kind, p.layout == "sparse")
        out.append(Choice(p.layout, p.nbytes, cb, instructions(p, macs, w, n, kind, outputs, gather),
                          dense_instr, w.size, p.what, files, p))
    return out


# -- the choice ----------------------------------------------------------------------------------------

def is_compressed(graph: Graph) -> bool:
    """A graph with at least one encoded weight: its layers get compressed layouts."""
    return any(t.encoding is not None for t in graph.tensors.values())


def _total(picks: dict[int, Choice]) -> tuple[int, float]:
    files = {f for c in picks.values() for f in c.files}
    flash = sum(c.weight_bytes + c.const_bytes for c in picks.values()) + sum(CODE.get(f, 0) for f in files)
    return flash, sum(c.instructions for c in picks.values())


def choose(graph: Graph, max_slowdown: float | None = None) -> dict[int, Choice]:
    """Node index -> the layout of every conv, dense and depthwise layer of a compressed graph ({} for
    others): the least flash (weights, constants, each kernel file once) whose estimated instructions stay
    within ``max_slowdown`` (default 1.5) times the dense kernels'. Greedy and deterministic: each layer
    starts at its smallest layout; while over budget, the layer switch that saves the most instructions
    per byte it adds is taken; then layers move to a layout already linked when that saves code."""
    limit = MAX_SLOWDOWN if max_slowdown is None else float(max_slowdown)
    if not limit >= 1.0:
        raise ConfigError(f"max_slowdown {max_slowdown} is below 1", where="max_slowdown",
                          fix="give 1.0 (no slower than the dense kernels) or more")
    if not is_compressed(graph):
        return {}
    options = {i: layer_choices(graph, i, n) for i, n in enumerate(graph.nodes)
               if kind_of(n) is not None and graph.tensors[n.inputs[1]].data is not None}
    if not options:
        return {}
    budget = limit * sum(opts[0].dense_instructions for opts in options.values())
    picks = {i: min(opts, key=lambda c: (c.weight_bytes + c.const_bytes, c.instructions))
             for i, opts in options.items()}
    while _total(picks)[1] > budget:
        best = None
        for i, opts in options.items():
            cur = picks[i]
            for c in opts:
                saved = cur.instructions - c.instructions
                if saved <= 0:
                    continue
                added = (c.weight_bytes + c.const_bytes) - (cur.weight_bytes + cur.const_bytes)
                score = saved / max(added, 1)
                if best is None or score > best[0]:
                    best = (score, i, c)
        if best is None:
            break
        picks[best[1]] = best[2]
    improved = True
    while improved:  # code: drop a layout file (or the dense kernels) that only a few layers use
        improved = False
        flash, instr = _total(picks)
        for i, opts in options.items():
            for c in opts:
                trial = {**picks, i: c}
                f2, n2 = _total(trial)
                if f2 < flash and (n2 <= budget or n2 <= instr):
                    picks, flash, instr, improved = trial, f2, n2, True
    return picks


# -- from a choice to the kernel's parameters -------------------------------------------------------------

_BUDGET: contextvars.ContextVar[float | None] = contextvars.ContextVar("tinyopt_compressed_budget",
                                                                       default=None)
_FORCE: contextvars.ContextVar[str | None] = contextvars.ContextVar("tinyopt_compressed_force", default=None)
_CACHE: dict = {}


@contextlib.contextmanager
def force(layout: str):
    """Every layer that can take ``layout`` (a depthwise one: ``cdw8`` / ``cdw4``) takes it, budget or not:
    how the tests run each kernel on purpose."""
    token = _FORCE.set(layout)
    try:
        yield
    finally:
        _FORCE.reset(token)


@contextlib.contextmanager
def budget(max_slowdown: float | None):
    """The instruction budget ``pack`` chooses layouts within, for the C generation it encloses."""
    token = _BUDGET.set(max_slowdown)
    try:
        yield
    finally:
        _BUDGET.reset(token)


def _key(graph: Graph, max_slowdown) -> tuple:
    """What the choice depends on: the nodes, their weights (by identity) and encodings, the budget."""
    parts = []
    for n in graph.nodes:
        t = graph.tensors.get(n.inputs[1]) if kind_of(n) is not None and len(n.inputs) > 1 else None
        parts.append((n.op, n.name, None if t is None else (id(t.data), t.encoding)))
    return (id(graph), max_slowdown, tuple(parts), is_compressed(graph))


def cached_choose(graph: Graph, max_slowdown: float | None = None) -> dict[int, Choice]:
    """``choose``, remembered for the last few graphs (the generator asks once per node)."""
    forced = _FORCE.get()
    key = (*_key(graph, max_slowdown), forced)
    if key not in _CACHE:
        if len(_CACHE) >= 4:
            _CACHE.pop(next(iter(_CACHE)))
        picks = choose(graph, max_slowdown)
        if forced is not None:
            for i, n in enumerate(graph.nodes):
                if i in picks:
                    opts = [c for c in layer_choices(graph, i, n) if forced in (c.layout, f"{c.layout}:"
                            f"{c.packed.variant if c.packed else ''}", getattr(c.packed, "layout", None))]
                    picks[i] = opts[0] if opts else picks[i]
        _CACHE[key] = (graph, picks)  # the graph is held so its id is not reused
    return _CACHE[key][1]


def pack(graph: Graph, index: int, node: Node):
    """The compressed kernel's ``OpParams`` of a layer, or None when it keeps the dense kernel (the
    records' ``pack_c`` ask this first)."""
    if kind_of(node) is None or not is_compressed(graph):
        return None
    choice = cached_choose(graph, _BUDGET.get()).get(index)
    if choice is None or choice.packed is None:
        return None
    return op_params(graph, index, node, choice.packed)


def op_params(graph: Graph, index: int, node: Node, p: Packed):
    """``OpParams`` of the cmat kernels for layer ``node`` stored as ``p``."""
    from tinyopt.export.c import params as cp

    kind = kind_of(node)
    rec = ops.get(node.op)
    x, wt, y = (graph.tensors[t] for t in (node.inputs[0], node.inputs[1], node.outputs[0]))
    cp.check_int8(graph, index, node, [x, y, wt])
    q = rec.prepare(graph, node, True)
    if getattr(q, "weights_offset", 0):
        from tinyopt.errors import UnsupportedOpError

        raise UnsupportedOpError("weights with a non-zero zero point", path=graph.source,
                                 where=cp.where(index, node),
                                 fix="quantize weights symmetrically (int8 spec)")
    w = weight_matrix(graph, node)
    o, k = w.shape
    bias = cp.int32_or_fail(cp.bias_of(graph, node, o) + q.input_offset * w.sum(axis=1), graph, index, node)
    mult, shift = cp.per_channel(q.output_multiplier, o), cp.per_channel(q.output_shift, o)
    same = np.unique(mult).size == 1 and np.unique(shift).size == 1
    ints = dict(out_c=o, depth=k, small_acc=cp.small_accumulator(bias, np.abs(w).sum(axis=1), shift),
                per_channel=int(not same), input_zero_point=-q.input_offset, output_offset=q.output_offset,
                output_activation_min=q.output_activation_min, output_activation_max=q.output_activation_max)
    if kind == "fc":
        ints["batches"] = x.size // k
    else:
        _, ih, iw, ic = x.shape
        _, oh, ow, _ = y.shape
        _, kh, kw, _ = wt.shape
        ints.update(in_h=ih, in_w=iw, in_c=ic, out_h=oh, out_w=ow, filter_h=kh, filter_w=kw,
                    stride_h=q.stride_h, stride_w=q.stride_w, dilation_h=q.dilation_h,
                    dilation_w=q.dilation_w, padding_h=q.padding_h, padding_w=q.padding_w,
                    depth_multiplier=q.depth_multiplier)
    ints.update(p.ints)
    wide = [k for k in SHORT_FIELDS if not -(2**15) <= ints.get(k, 0) < 2**15]
    if wide:
        from tinyopt.errors import UnsupportedOpError

        raise UnsupportedOpError(f"{wide[0]} = {ints[wide[0]]} is past the compressed kernels' "
                                 "16-bit geometry",
                                 path=graph.source, where=cp.where(index, node),
                                 fix="deploy this layer's weights uncompressed (a model without encodings)")
    arrays = {**p.arrays, "bias": ("int32_t", bias),
              "multiplier": ("int32_t", mult[:1] if same else mult),
              "shift": ("int8_t", shift[:1] if same else shift)}
    if kind == "depthwise":
        arrays["pad_row"] = ("int8_t", np.full(ints["in_c"] + 4, -q.input_offset, np.int64))
        return cp.OpParams("cdw", ints, arrays, signature="rows", inplace="rows", struct="cmat_params",
                           entry="cdw", files=("cmat", "cdw"))
    # the col buffer (tinyopt_cmat.h): patches, then the Cortex-M4's 16-bit lanes, then decoding room
    ka, k16 = (k + 3) // 4 * 4, (k + 15) // 16 * 16
    ints["tile"] = min(TILE, ints["batches"]) if kind == "fc" else TILE
    room = (ints["tile"] * k16 * 2 if p.layout in WIDE else 0) + (k16 if p.layout == "lut" else 0)
    if kind == "fc":
        if p.layout == "sparse" and ints["tile"] > 1:  # several rows go transposed
            room = TILE * ka
        return cp.OpParams(f"cfc_{p.layout}", ints, arrays, signature="rows_col", struct="cmat_params",
                           entry=f"cfc_{p.layout}", files=layout_files(p.layout), col_bytes=room)
    direct = (kh, kw, q.stride_h, q.stride_w, q.padding_h, q.padding_w) == (1, 1, 1, 1, 0, 0) and iw == ow
    patches = 0 if direct and p.layout != "sparse" else TILE * ka  # sparse: the transposed pass, always
    return cp.OpParams(f"cconv_{p.layout}", ints, arrays, signature="rows_col", inplace="rows",
                       struct="cmat_params", entry=f"cconv_{p.layout}", files=layout_files(p.layout),
                       col_bytes=room + patches)


# -- what the library's layers store (deploy --explain, analyze) -----------------------------------------

def weight_table(graph: Graph, max_slowdown: float | None = None) -> list[dict]:
    """One row per conv, dense and depthwise layer of a compressed graph: its layout and what it costs."""
    rows = []
    for i, c in sorted(cached_choose(graph, max_slowdown).items()):
        n = graph.nodes[i]
        rows.append({"node": i, "op": n.op, "name": n.name, "layout": c.layout, "encoding": c.what,
                     "weight_bytes": c.weight_bytes, "int8_bytes": c.int8_bytes, "const_bytes": c.const_bytes,
                     "instructions": int(round(c.instructions)),
                     "dense_instructions": int(round(c.dense_instructions)), "files": list(c.files)})
    return rows


def flash_bytes(graph: Graph, max_slowdown: float | None = None) -> dict | None:
    """The compressed layers' flash as the C library stores it (weights, constants, kernel code), or None
    for a graph the generator keeps dense."""
    picks = cached_choose(graph, max_slowdown)
    if not picks:
        return None
    files = sorted({f for c in picks.values() for f in c.files})
    return {"weights": sum(c.weight_bytes for c in picks.values()),
            "int8_weights": sum(c.int8_bytes for c in picks.values()),
            "constants": sum(c.const_bytes for c in picks.values()),
            "code": sum(CODE.get(f, 0) for f in files), "files": files,
            "nodes": sorted(picks)}


def explain(graph: Graph, max_slowdown: float | None = None, measured: dict | None = None) -> str:
    """The per-layer table ``deploy --explain`` prints: encoding, bytes, estimated (and, with a --profile
    run's ``{node: instructions}``, measured) Cortex-M4 instructions."""
    rows = weight_table(graph, max_slowdown)
    if not rows:
        return ""
    head = f"{'node':>4}  {'op':<18} {'layout':<7} {'weights B':>10} {'int8 B':>9} {'consts B':>9} " \
           f"{'est. instr':>11} {'dense est.':>11}" \
        + (f" {'measured':>11}" if measured else "") + "  encoding"
    lines = ["weights in flash (compressed layouts; Cortex-M4 instruction estimates, tinyopt-c):", head]
    for r in rows:
        meas = f" {measured.get(r['node'], 0):>11,}" if measured else ""
        lines.append(f"{r['node']:>4}  {r['op']:<18} {r['layout']:<7} {r['weight_bytes']:>10,} "
                     f"{r['int8_bytes']:>9,} "
                     f"{r['const_bytes']:>9,} {r['instructions']:>11,} {r['dense_instructions']:>11,}{meas}  "
                     f"{r['encoding']}")
    tot = flash_bytes(graph, max_slowdown)
    est = sum(r["instructions"] for r in rows)
    dense = sum(r["dense_instructions"] for r in rows)
    lines.append(f"total: weights {tot['weights']:,} B (int8 {tot['int8_weights']:,} B, "
                 f"{tot['int8_weights'] / max(tot['weights'], 1):.1f}x smaller), "
                 f"constants {tot['constants']:,} B, "
                 f"kernel code ~{tot['code']:,} B ({', '.join(tot['files'])}); estimated instructions "
                 f"{est:,} = {est / max(dense, 1):.2f}x the dense kernels'")
    return "\n".join(lines)
