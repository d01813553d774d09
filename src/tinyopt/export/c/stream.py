"""Row-streamed execution of chains of row-wise operators (line buffers instead of whole tensors).

A *segment* is a run of scheduled nodes that each compute output rows from a bounded window of input rows
(``OpParams.stream``: ``window`` = conv, depthwise, pooling; ``pad`` = PAD of the rows and columns;
``rows`` = element-wise, row i from row i; ``sum`` = a global average pool or MEAN closing the segment,
which adds each input row into int32 channel sums, the same integers as the whole-image kernel, so the
result is bit-exact). Only the segment's inputs and output are whole tensors; every tensor between its
nodes lives in a *line buffer* of a few rows (an element-wise node or a 1x1 conv may write over its
input's rows there), and the output may lie over the input rows no node reads again.

Execution is pulled from the last node: to compute its next band of rows, each node first makes its
producers compute the input rows that band reads, then drops (moves down over) the rows of its own output
buffer that no consumer reads again, then runs its ordinary kernel on the band: an NHWC band of full-width
rows is contiguous, so the kernel sees a shorter image whose ``in_h``/``out_h``/``padding_h`` say which
rows are real and which are padding. The whole sequence is simulated here once, at generation time: the
simulation sizes every line buffer and yields the program (calls and moves) that the C runs from a table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

INF = math.inf

CALL_INSTRUCTIONS = 400  # per band call: struct copy, band geometry, the kernel's set-up (measured, qemu)
MOVE_INSTRUCTIONS = 0.6  # per byte a line buffer moves down (memmove of words)


def instructions_per_mac(p) -> float:
    """Cortex-M4 instructions per MAC of a conv kernel (measured under qemu on KWS and ResNet-8)."""
    return 3.7 if p.kind == "depthwise_conv2d" else 1.1


LONE_PIXEL = 0.2  # a lone pixel on the M4 twin conv loop's single-pixel pass costs 1.2 pixels of a pair
LONE_COLUMN = 0.1  # the depthwise column loop's odd last column alone: 1.1 pixels of a pair
COLUMN_COPY = 0.05  # per pixel of a lone row on the column loop: its band of 3 input rows copied for 1 row


def band_pixels(p, rows: int, out_w: int, columns: bool) -> float:
    """Pixels' worth of M4 work for a band of ``rows`` output rows (measured under qemu on KWS): the conv
    twin loop runs pixels in pairs, an odd count's last one alone; the depthwise pair loop runs two rows
    at a time, a lone row as a pair of rows (twice its pixels) or, with the column variant (``columns``:
    a library streaming bands of odd height; column strides 1 and 2), as pairs of columns, an odd last
    column alone."""
    n = rows * out_w
    if p.ints.get("dw_pairs") and rows % 2:
        on_columns = columns and p.ints["stride_w"] <= 2
        lone = out_w * (1 + COLUMN_COPY) + LONE_COLUMN * (out_w % 2) if on_columns else 2 * out_w
        return n - out_w + lone
    if "wpairs" in p.arrays:
        return n + LONE_PIXEL * (n % 2)
    return n


def per_pixel(p, g) -> float:
    """Estimated M4 instructions per output pixel of a conv or depthwise layer."""
    return instructions_per_mac(p) * p.macs / (g.h_out * p.ints["out_w"])


@dataclass
class Geometry:
    """How node rows map to input rows: ``window`` (stride, top padding, span, input height) or row i."""

    h_out: int
    window: tuple | None  # (stride_h, padding_h, (filter_h - 1) * dilation_h, in_h) of the first input

    def need(self, r0: int, r1: int, first: bool) -> tuple[int, int]:
        """Input rows [lo, hi) that output rows [r0, r1) read (``first``: the windowed input)."""
        if self.window is None or not first:
            return r0, r1
        s, p, span, h_in = self.window
        return max(0, r0 * s - p), min(h_in, (r1 - 1) * s - p + span + 1)


def geometry(p, graph, node) -> Geometry:
    if p.stream == "window":
        i = p.ints
        span = (i["filter_h"] - 1) * i.get("dilation_h", 1)
        return Geometry(i["out_h"], (i["stride_h"], i["padding_h"], span, i["in_h"]))
    x, y = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
    if p.stream == "sum":
        return Geometry(int(x.shape[1]), None)  # one "row" = one input row added into the sums
    if p.stream == "pad":  # output row r is input row r - top (or the pad value): a 1-row window
        return Geometry(int(y.shape[1]), (1, pad_top(p, y), 0, int(x.shape[1])))
    return Geometry(int(graph.tensors[node.outputs[0]].shape[1]), None)


def pad_top(p, y) -> int:
    """A streamed PAD's rows of padding above the image: its output offset of input element 0 (``start``:
    top rows, then left columns and channels, which make less than one output row) in whole rows."""
    return p.ints["start"] // int(y.shape[2] * y.shape[3])


@dataclass
class Segment:
    """A planned segment: its nodes (schedule indices, execution order), band and line buffers."""

    nodes: list
    band: int
    inputs: list  # data tensors read whole (roots)
    output: str  # the tensor written whole (root)
    rings: dict = field(default_factory=dict)  # line buffer (named by its first tensor) -> rows
    ring_of: dict = field(default_factory=dict)  # tensor between the nodes -> its line buffer
    shared: set = field(default_factory=set)  # nodes writing over their input's rows in place
    scratch_bytes: int = 0  # the portable build's row scratch for in-place convs (not in the M4 arena)
    bounds: dict = field(default_factory=dict)  # whole input -> largest output-minus-input offset (bytes)
    # at which the output, written top-down, only ever lands on input rows no node reads again
    row_bytes: dict = field(default_factory=dict)  # tensor -> bytes per row
    program: list = field(default_factory=list)  # (case, a, b, c, d, e): calls and moves
    acc_bytes: int = 0  # int32 channel sums of a closing global pool
    col_bytes: int = 0  # one im2col buffer shared by the segment's nodes
    calls: int = 0
    moved: int = 0  # bytes moved down in line buffers
    wasted: float = 0.0  # estimated instructions the bands' lone rows and pixels add to the layers' work

    @property
    def extra_instructions(self) -> float:
        return self.calls * CALL_INSTRUCTIONS + self.moved * MOVE_INSTRUCTIONS + self.wasted

    def ring_bytes(self, r: str) -> int:
        return self.rings[r] * self.row_bytes[r]


def data_inputs(node, root: dict) -> list[str]:
    """The node's non-constant inputs as the kernel takes them (a fused ADD's operand last)."""
    return [t for t in node.inputs if t and t in root]


def streamable(graph, node, p) -> bool:
    """The node can run on bands of rows: its kernel says so and every tensor is one int8 NHWC image."""
    if p.stream not in ("window", "rows", "sum", "pad") or p.aliases:
        return False
    tensors = [graph.tensors[t] for t in (*node.inputs, *node.outputs) if t and not graph.tensors[t].constant]
    return all(len(t.shape) == 4 and t.shape[0] == 1 and t.dtype == "int8" for t in tensors)


def in_place(p, graph, node) -> bool:
    """The node may write output row r over input row r of a line buffer: element-wise, or a 1x1 stride-1
    conv with as many output as input channels that the Cortex-M4 twin loop runs (it widens each pixel
    pair before it writes; the portable build passes a row scratch instead, see generate.py)."""
    x, y = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
    if x.shape != y.shape:
        return False
    if p.stream == "rows":
        return True
    i = p.ints
    return (p.kind == "conv2d" and "wpairs" in p.arrays and i["filter_h"] == i["filter_w"] == 1
            and i["stride_h"] == i["stride_w"] == 1 and i["padding_h"] == i["padding_w"] == 0)


# one band-by-band simulation whose ring sizes, escapes and call counts share the loop's state
def build_segment(sched, nodes: list[int], band: int, root: dict,  # noqa: C901
                  live_after: set) -> Segment | None:
    """Simulate the pulled execution of ``nodes`` (a valid run, see ``valid_runs``) in bands of ``band``
    rows; None when the run is not a segment (its internal tensors escape)."""
    graph, prepared = sched.graph, sched.prepared
    prod = {root[graph.nodes[k].outputs[0]]: k for k in nodes}
    last = nodes[-1]
    out = root[graph.nodes[last].outputs[0]]
    consumers: dict[str, list[int]] = {t: [] for t in prod}
    for k in nodes:
        for t in data_inputs(graph.nodes[k], root):
            if root[t] in consumers:
                consumers[root[t]].append(k)
    for t in prod:
        if t != out and (t in live_after or not consumers[t]):
            return None
    geo = {k: geometry(prepared[k], graph, graph.nodes[k]) for k in nodes}
    ins = {k: [root[t] for t in data_inputs(graph.nodes[k], root)] for k in nodes}
    whole = sorted({t for k in nodes for t in ins[k] if t not in prod})
    seg = Segment(list(nodes), band, whole, out)
    for t in {*prod, *whole}:
        shape = graph.tensors[t].shape
        seg.row_bytes[t] = int(shape[2] * shape[3])
    ring_of = {t: t for t in prod if t != out}  # tensor -> the line buffer it lives in
    for k in nodes:  # an in-place node's output shares its input's line buffer, row for row
        t, x = root[graph.nodes[k].outputs[0]], ins[k][0] if ins[k] else None
        if (t in ring_of and x in ring_of and consumers[x] == [k] and ins[k].count(x) == 1
                and in_place(prepared[k], graph, graph.nodes[k])):
            ring_of[t] = ring_of[x]
            seg.shared.add(k)
    rings = {r: 0 for r in ring_of.values()}
    base = {r: 0 for r in rings}
    users: dict[str, list[tuple[str, int]]] = {r: [] for r in rings}  # (tensor, consumer) per line buffer
    for t, r in ring_of.items():
        users[r] += [(t, c) for c in consumers[t]]
    done = {k: 0 for k in nodes}
    cases = {k: c for c, k in enumerate(nodes)}
    move_case = {r: len(nodes) + j for j, r in enumerate(sorted(rings))}

    def pos(t: str, row: int) -> int:
        return row - base.get(ring_of.get(t), 0)

    def pull(k: int, upto: int) -> None:
        g = geo[k]
        while done[k] < upto:
            r0, r1 = done[k], min(g.h_out, done[k] + band, upto)
            for j, t in enumerate(ins[k]):
                if t in prod:
                    pull(prod[t], g.need(r0, r1, j == 0)[1])
            t = root[graph.nodes[k].outputs[0]]
            r = ring_of.get(t)
            if r is not None and k not in seg.shared:  # new rows: drop the rows no one reads again
                keep = r0
                for u, c in users[r]:
                    if done[c] < geo[c].h_out:
                        keep = min(keep, geo[c].need(done[c], done[c] + 1, ins[c][0] == u)[0])
                if keep > base[r]:
                    if r0 > keep:
                        seg.program.append((move_case[r], pos(t, keep), 0, r0 - keep, 0, 0))
                        seg.moved += (r0 - keep) * seg.row_bytes[t]
                    base[r] = keep
                rings[r] = max(rings[r], r1 - base[r])
            if k == last and t == out:  # the output may cover whole inputs up to the rows still to be read
                for x in whole:
                    live = [geo[c].need(done[c], done[c] + 1, ins[c][0] == x)[0] for c in nodes
                            if x in ins[c] and done[c] < geo[c].h_out]
                    bound = min(live) * seg.row_bytes[x] - r1 * seg.row_bytes[out] if live else INF
                    seg.bounds[x] = min(seg.bounds.get(x, INF), bound)
            where = [pos(u, geo[k].need(r0, r1, j == 0)[0]) for j, u in enumerate(ins[k])]
            where += [0] * (2 - len(where))
            seg.program.append((cases[k], r0, r1, where[0], where[1], pos(t, r0)))
            seg.calls += 1
            p = prepared[k]
            if p.stream == "window" and p.macs:  # the band's pixels of work, less the whole image's below
                seg.wasted += per_pixel(p, g) * band_pixels(p, r1 - r0, p.ints["out_w"], band % 2 == 1)
            done[k] = r1

    pull(last, geo[last].h_out)
    for k in nodes:
        p = prepared[k]
        if p.stream == "window" and p.macs:
            seg.wasted -= per_pixel(p, geo[k]) * band_pixels(p, geo[k].h_out, p.ints["out_w"], False)
    seg.rings = rings
    seg.ring_of = ring_of
    p_last = prepared[last]
    if p_last.stream == "sum":
        seg.acc_bytes = 4 * int(graph.tensors[graph.nodes[last].inputs[0]].shape[3])
    seg.col_bytes = max((prepared[k].col_bytes for k in nodes), default=0)
    seg.scratch_bytes = max((band * seg.row_bytes[root[graph.nodes[k].outputs[0]]] for k in seg.shared
                             if prepared[k].stream == "window"), default=0)
    return seg


FULL_SEARCH = 12  # runs up to this long: every sub-run is a candidate; longer ones: prefixes and suffixes


def valid_runs(sched, order: list[int], root: dict, min_len: int = 2) -> list[tuple[int, int]]:
    """Candidate (start, end) step ranges of ``order`` whose nodes all stream (a global pool only last):
    within each maximal run, every sub-run of a short run, the prefixes and suffixes of a long one (the
    search stays linear in the model's length)."""
    graph, prepared = sched.graph, sched.prepared
    ok = [streamable(graph, graph.nodes[k], prepared[k]) for k in order]
    maximal, a = [], 0
    while a < len(order):
        if not ok[a]:
            a += 1
            continue
        b = a
        while b + 1 < len(order) and ok[b + 1] and prepared[order[b]].stream != "sum":
            b += 1
        maximal.append((a, b))
        a = b + 1
    runs = set()
    for a0, b0 in maximal:
        if b0 - a0 < FULL_SEARCH:
            runs |= {(a, b) for a in range(a0, b0 + 1) for b in range(a, b0 + 1)}
        else:
            runs |= {(a0, b) for b in range(a0, b0 + 1)} | {(a, b0) for a in range(a0, b0 + 1)}
    return sorted(r for r in runs if r[1] - r[0] + 1 >= min_len)


def live_after(sched, order: list[int], b: int, root: dict) -> set:
    """Tensors (roots) that a node after step ``b`` reads, and the graph outputs."""
    graph = sched.graph
    out = {root[t] for t in graph.outputs}
    for k in order[b + 1:]:
        out |= {root[t] for t in data_inputs(graph.nodes[k], root)}
    return out
