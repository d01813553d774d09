"""Static arena plan for the generated C: every activation gets an offset at generation time.

It starts from TFLM's greedy rule (largest buffer first, lowest offset that does not collide with a
buffer alive at the same time) and adds what an interpreter cannot know:

- **In-place rows.** A convolution reads input rows in order; once output row ``r`` is finished (in a
  one-row scratch), the input rows below ``lo(r+1)`` are never read again, so the output may start
  before, at, or inside the input as long as each stored row lands in input that is dead. The bound is
  one number per node and direction (``fwd_max``: largest allowed output-minus-input offset when rows go
  top-down; ``rev_min``: smallest when they go bottom-up). Element-wise ADD is the 1-row case
  (``fwd_max = 0``: write element i after reading it).
- **Reshape is free**: its output aliases its input.
- **Operator order.** Branches (a residual shortcut) may run in any topological order; we plan a few and
  keep the smallest arena.
- **Row-streamed segments** (``stream.py``): runs of row-wise layers whose intermediate tensors live in
  line buffers of a few rows. ``best_plan`` chooses them as the mode asks (``speed``: none;
  ``balanced``: the smallest arena within +15 % estimated Cortex-M4 instructions; ``ram``: the smallest;
  a ``max_ram`` budget: the fewest extra instructions that fit): a greedy pass, then a local search that
  splits, trims, grows, re-bands or replaces the segments around the arena's peak.

The graph input lives in the arena (the caller may write it there directly, as with TFLM), and so does a
single graph output (the caller may read it there, as with TFLM, instead of passing a buffer of its own);
several outputs are written into the caller's buffer, back to back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from tinyopt.errors import BudgetError
from tinyopt.graph.ir import DTYPE_BYTES, Graph, Node

INF = math.inf


@dataclass
class Buffer:
    name: str
    size: int
    first: int
    last: int
    kind: str = "tensor"  # tensor | scratch | im2col
    offset: int | None = None
    align: int = 1

    def alive_with(self, other: Buffer) -> bool:
        return self.first <= other.last and other.first <= self.last


@dataclass
class Overlap:
    """Output ``dst`` of node ``node`` may overlap its dying input ``src`` within these offset bounds."""

    node: int
    src: str
    dst: str
    fwd_max: float
    rev_min: float = INF
    exact: bool = False  # only the very same offset (a fused ADD operand read in whichever row order)


@dataclass
class ArenaPlanner:
    """Greedy offsets with permitted in-place overlaps; ``plan()`` fills ``offset`` and ``reverse_``."""

    allow_inplace: bool = True
    arena_limit: int | None = None
    buffers: dict = field(default_factory=dict)
    overlaps: list = field(default_factory=list)

    def add_buffer(self, name: str, size: int, first_used: int, last_used: int, kind: str = "tensor",
                   align: int = 1) -> None:
        self.buffers[name] = Buffer(name, int(size), int(first_used), int(last_used), kind, align=align)

    def allow_overlap(self, node: int, src: str, dst: str, fwd_max: float, rev_min: float = INF,
                      exact: bool = False) -> None:
        self.overlaps.append(Overlap(node, src, dst, fwd_max, rev_min, exact))

    def _index(self) -> None:
        """(src, dst) -> (position, permission): the first permission of a pair, found without a scan."""
        self._pairs: dict = {}
        for k, o in enumerate(self.overlaps):
            self._pairs.setdefault((o.src, o.dst), (k, o))

    def _pair(self, a: str, b: str) -> tuple[Overlap, bool] | None:
        """The permission between two buffers and whether ``a`` is the output side (the first in the list
        when both directions have one)."""
        if not self.allow_inplace:
            return None
        as_dst, as_src = self._pairs.get((b, a)), self._pairs.get((a, b))
        if as_dst and (not as_src or as_dst[0] < as_src[0]):
            return as_dst[1], True
        return (as_src[1], False) if as_src else None

    @staticmethod
    def _direction(o: Overlap, delta: int) -> str | None:
        """'fwd'/'rev' when output offset minus input offset ``delta`` is safe that way."""
        if o.exact:
            return "fwd" if delta == 0 else None
        if delta <= o.fwd_max:
            return "fwd"
        if delta >= o.rev_min:
            return "rev"
        return None

    def _fits(self, buf: Buffer, offset: int, alive: list) -> bool:
        """``alive``: the placed buffers whose lifetime meets ``buf``'s."""
        end = offset + buf.size
        for other in alive:
            if end <= other.offset or other.offset + other.size <= offset:
                continue
            pair = self._pair(buf.name, other.name)
            if pair is None:
                return False
            o, buf_is_dst = pair
            delta = offset - other.offset if buf_is_dst else other.offset - offset
            if self._direction(o, delta) is None:
                return False
        return True

    def plan(self) -> ArenaPlanner:
        # Largest first (TFLM's rule): big buffers take the low offsets, small ones fill the gaps.
        order = sorted(self.buffers.values(), key=lambda b: (-b.size, b.first, b.name))
        self._index()
        for b in self.buffers.values():
            b.offset = None
        for buf in order:
            candidates = {0}
            alive = [o for o in self.buffers.values()
                     if o is not buf and o.offset is not None and buf.alive_with(o)]
            for other in alive:
                candidates.add(other.offset + other.size)
                pair = self._pair(buf.name, other.name)
                if pair:
                    o, buf_is_dst = pair
                    sign = 1 if buf_is_dst else -1
                    for d in (o.fwd_max, o.rev_min, 0):
                        if d not in (INF, -INF):
                            candidates.add(int(other.offset + sign * d))
            aligned = sorted({-(-c // buf.align) * buf.align for c in candidates if c >= 0})
            buf.offset = next(c for c in aligned if self._fits(buf, c, alive))
        self.reverse_ = {}
        for o in self.overlaps:
            s, d = self.buffers.get(o.src), self.buffers.get(o.dst)
            if s is None or d is None or o.exact:
                continue
            overlapping = not (d.offset + d.size <= s.offset or s.offset + s.size <= d.offset)
            if overlapping and self.allow_inplace:
                self.reverse_[o.node] = self._direction(o, d.offset - s.offset) == "rev"
        if self.arena_limit is not None and self.peak_bytes > self.arena_limit:
            raise BudgetError(f"the activations need {self.peak_bytes} bytes, the arena limit is "
                              f"{self.arena_limit}", fix="raise the limit or shrink the model's widest layer")
        return self

    @property
    def peak_bytes(self) -> int:
        return max((b.offset + b.size for b in self.buffers.values()), default=0)

    def offset_of(self, name: str) -> int:
        return self.buffers[name].offset

    def in_place_nodes(self) -> set[int]:
        """Nodes whose output overlaps their input rows (they need the row scratch)."""
        out = set()
        for o in self.overlaps:
            s, d = self.buffers.get(o.src), self.buffers.get(o.dst)
            if s and d and not o.exact and self.allow_inplace and not (d.offset + d.size <= s.offset
                                                       or s.offset + s.size <= d.offset):
                out.add(o.node)
        return out

    def check_no_overlap(self) -> None:
        """Our invariant: buffers alive together never share a byte, except permitted in-place pairs."""
        self._index()
        bufs = list(self.buffers.values())
        for i, a in enumerate(bufs):
            for b in bufs[i + 1:]:
                if not a.alive_with(b):
                    continue
                if a.offset + a.size <= b.offset or b.offset + b.size <= a.offset:
                    continue
                pair = self._pair(a.name, b.name)
                assert pair is not None, f"buffers {a.name} and {b.name} overlap while both alive"
                o, a_is_dst = pair
                delta = a.offset - b.offset if a_is_dst else b.offset - a.offset
                assert self._direction(o, delta) is not None, f"{a.name}/{b.name}: unsafe in-place offset"

    def print_plan(self, width: int = 64) -> str:
        """One line per buffer: offset, size, lifetime, and a bar of where it sits in the arena."""
        peak = max(self.peak_bytes, 1)
        lines = [f"arena {self.peak_bytes} bytes", f"{'offset':>8} {'bytes':>7}  {'alive':>9}  buffer"]
        for b in sorted(self.buffers.values(), key=lambda b: (b.first, b.offset)):
            lo = b.offset * width // peak
            hi = max(lo + 1, (b.offset + b.size) * width // peak)
            bar = "." * lo + "#" * (hi - lo) + "." * (width - hi)
            lines.append(f"{b.offset:>8} {b.size:>7}  {b.first:>4}-{b.last:<4}  {bar}  {b.kind} {b.name}")
        return "\n".join(lines)


# -- from a graph ----------------------------------------------------------------------------------------

def _conv_bounds(ints: dict) -> tuple[float, float]:
    """(fwd_max, rev_min) of output-minus-input offset for a row-wise conv with a one-row scratch. The same
    bounds hold when a kernel finishes k rows together in a k-row scratch and stores them in order: the k
    rows read their inputs before any of them is stored, and each stored row covers only input that rows
    not yet computed no longer read."""
    ih, oh = ints["in_h"], ints["out_h"]
    ri = ints["in_w"] * ints["in_c"]
    ro = ints["out_w"] * ints["out_c"]
    sh, ph, kh, dh = ints["stride_h"], ints["padding_h"], ints["filter_h"], ints["dilation_h"]
    fwd, rev = INF, -INF
    for r in range(oh - 1):  # after row r is stored, rows r+1.. still read from lo(r+1) on
        lo = min(max(0, (r + 1) * sh - ph), ih)
        fwd = min(fwd, lo * ri - (r + 1) * ro)
    for r in range(1, oh):  # bottom-up: after row r, rows ..r-1 still read up to hi(r-1)
        hi = min(ih - 1, (r - 1) * sh - ph + (kh - 1) * dh)
        rev = max(rev, (hi + 1) * ri - r * ro)
    return fwd, rev


@dataclass
class Fusion:
    """A residual ADD folded into the conv that produces one of its operands."""

    add_index: int  # the ADD's index in the original graph
    other: str  # the ADD's other operand
    conv_first: bool  # the conv output is the ADD's first operand
    op: str = ""  # the fused node's operator


@dataclass
class Schedule:
    """The graph as executed: fused ADDs removed, each conv carrying its ADD's output and operand."""

    graph: Graph  # shares the original's tensors; nodes are new
    orig: list  # schedule node index -> original node index
    prepared: dict  # schedule node index -> OpParams
    fused: dict  # schedule node index -> Fusion


def find_fusions(graph: Graph, prepared: dict) -> dict:
    """conv index -> Fusion for every ADD whose operand comes from a conv used by nothing else.

    Fusing removes the conv's output buffer entirely: each output is requantized, added to the other
    operand and stored over it.
    """
    producers = {t: i for i, n in enumerate(graph.nodes) for t in n.outputs}
    consumers = graph.consumers()
    fused: dict[int, Fusion] = {}
    for j, n in enumerate(graph.nodes):
        if not prepared[j].epilogue:
            continue
        a, b = n.inputs[:2]
        for conv_t, other, first in ((a, b, True), (b, a, False)):
            i = producers.get(conv_t)
            if (i is None or i in fused or conv_t == other or conv_t in graph.outputs
                    or not prepared[i].fuses_add or len(consumers[conv_t]) != 1):
                continue
            fused[i] = Fusion(j, other, first, n.op)
            break
    return fused


def make_schedule(graph: Graph, prepared: dict, fuse: bool = True) -> Schedule:
    fused = find_fusions(graph, prepared) if fuse else {}
    absorbed = {f.add_index for f in fused.values()}
    g = Graph(graph.name, source=graph.source)
    g.tensors, g.inputs, g.outputs = graph.tensors, list(graph.inputs), list(graph.outputs)
    g.variables = list(getattr(graph, "variables", []))
    origin: dict[int, int] = {}  # id(new node) -> original index
    for i, n in enumerate(graph.nodes):
        if i in absorbed:
            continue
        node = Node(n.name, n.op, list(n.inputs), list(n.outputs), dict(n.attrs))
        if i in fused:
            node.inputs.append(fused[i].other)
            node.outputs = list(graph.nodes[fused[i].add_index].outputs)
        g.nodes.append(node)
        origin[id(node)] = i
    g.toposort()  # a fused conv now also waits for its ADD's other operand
    orig = [origin[id(n)] for n in g.nodes]
    sched_prep = {k: prepared[i] for k, i in enumerate(orig)}
    sched_fused = {k: fused[i] for k, i in enumerate(orig) if i in fused}
    return Schedule(g, orig, sched_prep, sched_fused)


@dataclass
class Plan:
    order: list  # schedule node indices in execution order
    planner: ArenaPlanner
    root: dict  # tensor name -> buffer name (reshape aliases)
    external: set  # tensors in the caller's output buffer (several outputs; a single one is in the arena)
    scratch: dict  # node index -> row scratch buffer name
    col: dict  # node index -> im2col buffer name
    schedule: Schedule | None = None
    segments: list = field(default_factory=list)  # stream.Segment, each a run of ``order`` run by rows
    considered: list = field(default_factory=list)  # (arena, extra instructions, chosen) of the plans tried
    base_instructions: float = 0.0  # the speed plan's estimated instructions
    no_col: frozenset = frozenset()  # nodes that run without their col buffer (OpParams.col_free_extra)

    def segment_of(self, k: int):
        return next((s for s in self.segments if k in s.nodes), None)

    @property
    def extra_instructions(self) -> float:
        """Estimated Cortex-M4 instructions the plan adds to the speed plan's: streamed segments (band
        calls, line-buffer moves) and kernels run without their col buffer."""
        prepared = self.schedule.prepared if self.schedule else {}
        return (sum(s.extra_instructions for s in self.segments)
                + sum(prepared[k].col_free_extra for k in self.no_col))

    @property
    def arena_bytes(self) -> int:
        return self.planner.peak_bytes


def tensor_roots(sched: Schedule, order: list[int]) -> dict:
    """Tensor name -> the buffer it lives in (a reshape's output is its input's, except that a graph input
    never becomes the caller's output buffer: that reshape copies)."""
    graph = sched.graph
    root: dict[str, str] = {t.name: t.name for t in graph.activations()}
    for i in order:
        n = graph.nodes[i]
        first = root.get(n.inputs[0])  # None: a constant operand
        into_output = n.outputs[0] in graph.outputs and first in graph.inputs
        if sched.prepared[i].aliases and not into_output:
            root[n.outputs[0]] = root[n.inputs[0]]
    return root


# the planner's one walk over lifetimes, aliases, in-place, scratch and segments: they share its state
def build_plan(sched: Schedule, order: list[int], allow_inplace: bool = True,  # noqa: C901
               segments: list | None = None, no_col: frozenset = frozenset()) -> Plan:
    """Lifetimes in ``order``, reshape aliases, in-place permissions, im2col and scratch rows, then offsets.
    ``segments`` (``stream.Segment``) run by rows: the tensors between their nodes exist only as line
    buffers, alive while the segment runs, as are its inputs and output. Nodes in ``no_col`` get no col
    buffer (their kernels then run on NULL)."""
    graph, prepared = sched.graph, sched.prepared
    nodes = graph.nodes
    segments = segments or []
    root = tensor_roots(sched, order)
    internal = {t for s in segments for t in s.ring_of}
    in_segment = {k: s for s in segments for k in s.nodes}
    span = {id(s): (order.index(s.nodes[0]), order.index(s.nodes[-1])) for s in segments}
    external = set(graph.outputs) if len(graph.outputs) > 1 else set()
    ext_roots = {root[t] for t in external}
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    variables = getattr(graph, "variables", [])
    for r in {root[t] for t in [*graph.inputs, *(v.state for v in variables)]}:  # a state is copied in first
        first[r] = last[r] = 0
    for step, i in enumerate(order):
        n = nodes[i]
        for t in n.inputs:
            if t and t in root:
                last[root[t]] = max(last.get(root[t], step), step)
        for t in n.outputs:
            r = root[t]
            first.setdefault(r, step)
            last[r] = max(last.get(r, step), step)
    for v in variables:  # a state's update is copied out after the last node
        last[root[v.update]] = len(order)
    for t in graph.outputs:  # an output in the arena is read after the last node
        if t not in external:
            last[root[t]] = len(order)
    for s in segments:  # whole inputs are read, and the output written, while the segment runs
        a, b = span[id(s)]
        for t in s.inputs:
            last[t] = max(last[t], b)
        first[s.output] = min(first[s.output], a)
    planner = ArenaPlanner(allow_inplace=allow_inplace)
    for r in first:
        if r not in ext_roots and r not in internal:  # an int16 tensor starts on an even byte (int16_t reads)
            t = graph.tensors[r]
            planner.add_buffer(r, t.nbytes, first[r], last[r], align=int(DTYPE_BYTES.get(t.dtype, 1)))
    for j, s in enumerate(segments):
        a, b = span[id(s)]
        for x, bound in s.bounds.items():  # the output over a dying input's rows already read
            if allow_inplace and last[x] == b and x in planner.buffers and s.output in planner.buffers:
                planner.allow_overlap(s.nodes[-1], x, s.output, bound)
        for t in s.rings:
            planner.add_buffer(f"rows_{t}", s.ring_bytes(t), a, b, kind="rows", align=4)
        if s.acc_bytes:
            planner.add_buffer(f"sums_{j}", s.acc_bytes, a, b, kind="sums", align=4)
        if s.col_bytes:
            planner.add_buffer(f"im2col_s{j}", s.col_bytes, a, b, kind="im2col", align=4)
    scratch: dict[int, str] = {}
    col: dict[int, str] = {}
    for step, i in enumerate(order):
        n, p = nodes[i], prepared[i]
        if i in in_segment:
            continue
        if p.col_bytes and i not in no_col:  # conv: two patches widened to 16-bit lanes (int8 gathers: half)
            col[i] = f"im2col_{i}"
            planner.add_buffer(col[i], p.col_bytes, step, step, kind="im2col", align=4)
        if p.aliases or root[n.outputs[0]] in ext_roots or not allow_inplace:
            continue
        dst = root[n.outputs[0]]

        def dying(t: str, step: int = step) -> bool:
            r = root.get(t)
            return r is not None and last[r] == step and r in planner.buffers

        if p.inplace == "rows":
            x = n.inputs[0]
            if dying(x):
                fwd, rev = _conv_bounds(p.ints)
                scratch[i] = f"row_{i}"
                planner.add_buffer(scratch[i], p.scratch_rows * p.ints["out_w"] * p.ints["out_c"], step, step,
                                   kind="scratch")
                planner.allow_overlap(i, root[x], dst, fwd, rev)
            f = sched.fused.get(i)
            if f is not None and dying(f.other) and root[f.other] != root[x]:
                planner.allow_overlap(i, root[f.other], dst, 0, exact=True)
        elif p.inplace == "elementwise":
            srcs = [root[t] for t in n.inputs[:2] if t in root]  # constant operands are not in the arena
            for t in n.inputs[:2]:
                if dying(t) and srcs.count(root[t]) == 1:
                    planner.allow_overlap(i, root[t], dst, 0)
    planner.plan()
    planner.check_no_overlap()
    unused = [i for i in scratch if i not in planner.in_place_nodes()]
    if unused:  # scratch rows of nodes that did not end up in place: plan again without them
        for i in unused:
            del planner.buffers[scratch.pop(i)]
            planner.overlaps = [o for o in planner.overlaps if not (o.node == i and not o.exact)]
        planner.plan()  # a node may now stay out of place: its scratch row is then simply unused
        planner.check_no_overlap()
    return Plan(order, planner, root, external, scratch, col, sched, list(segments), no_col=frozenset(no_col))


def topological_orders(graph: Graph, limit: int = 64) -> list[list[int]]:
    """Up to ``limit`` execution orders, the graph's own first; branches are where they differ."""
    producers = {t: i for i, n in enumerate(graph.nodes) for t in n.outputs}
    deps = [{producers[t] for t in n.inputs if t in producers} for n in graph.nodes]
    orders: list[list[int]] = [list(range(len(graph.nodes)))]
    seen = {tuple(orders[0])}

    def walk(done: list[int], remaining: set[int]) -> None:
        if len(orders) >= limit:
            return
        if not remaining:
            if tuple(done) not in seen:
                seen.add(tuple(done))
                orders.append(list(done))
            return
        for i in sorted(remaining):
            if deps[i] <= set(done):
                done.append(i)
                remaining.remove(i)
                walk(done, remaining)
                remaining.add(i)
                done.pop()

    walk([], set(range(len(graph.nodes))))
    return orders


BANDS = (1, 2, 4)  # band heights tried for a streamed segment
BALANCED = 0.15  # balanced mode: at most this many more estimated instructions than the speed plan
MODES = ("speed", "balanced", "ram")


def base_instructions(sched: Schedule) -> float:
    """A rough Cortex-M4 instruction count of the speed plan (the scale the streaming overhead is weighed
    against): the MACs at the measured ~1.3 instructions each, and a few per activation byte written."""
    from tinyopt.export.c.stream import instructions_per_mac

    g = sched.graph
    return sum(instructions_per_mac(p) * p.macs + 3 * g.tensors[g.nodes[k].outputs[0]].nbytes
               for k, p in sched.prepared.items())


def _speed_plan(sched: Schedule, inplace: bool, reorder: bool) -> Plan:
    orders = topological_orders(sched.graph) if reorder else [list(range(len(sched.graph.nodes)))]
    best = None
    for order in orders:
        for allow in ((True, False) if inplace else (False,)):
            p = build_plan(sched, order, allow_inplace=allow)
            if best is None or p.arena_bytes < best.arena_bytes:
                best = p
    return best


WINDOW = 8  # the local search's new segments around a peak step: at most this many nodes
ROUNDS = 32  # local-search rounds at most (each lowers the arena, the steps at its peak, or the instructions)


class _Segments:
    """The segments of one order, each (first step, last step, band) built once, and the plans of sets of
    them, each built once: the searches below ask for the same ones many times."""

    def __init__(self, sched: Schedule, speed: Plan) -> None:
        from tinyopt.export.c import stream

        self.stream, self.sched, self.speed, self.order = stream, sched, speed, speed.order
        self.root = tensor_roots(sched, self.order)
        self.runs = stream.valid_runs(sched, self.order, self.root)
        self.maximal: list[list[int]] = []  # the runs merged: every segment lies within one of them
        for a, b in self.runs:
            if self.maximal and a <= self.maximal[-1][1]:
                self.maximal[-1][1] = max(self.maximal[-1][1], b)
            else:
                self.maximal.append([a, b])
        self.built: dict = {}
        self.plans: dict = {(): speed}
        self.tried: list[Plan] = []

    def segment(self, a: int, b: int, band: int):
        if (a, b, band) not in self.built:
            after = self.stream.live_after(self.sched, self.order, b, self.root)
            self.built[a, b, band] = self.stream.build_segment(self.sched, self.order[a:b + 1], band,
                                                               self.root, after)
        return self.built[a, b, band]

    def plan(self, spec) -> Plan | None:
        """The plan streaming the segments ``spec`` ((a, b, band) each), None if one is not a segment."""
        key = tuple(sorted(spec))
        if key not in self.plans:
            segs = [self.segment(*s) for s in key]
            self.plans[key] = None if None in segs else build_plan(
                self.sched, self.order, allow_inplace=self.speed.planner.allow_inplace, segments=segs)
            if self.plans[key] is not None:
                self.tried.append(self.plans[key])
        return self.plans[key]

    def windows(self, step: int):
        """(a, b) of the runs of 2 to ``WINDOW`` nodes around ``step``."""
        for m0, m1 in self.maximal:
            if m0 <= step <= m1:
                for a in range(max(m0, step - WINDOW + 1), step + 1):
                    for b in range(max(step, a + 1), min(m1, a + WINDOW - 1) + 1):
                        yield a, b


def _ram_first(p: Plan) -> tuple:
    """How the RAM-saving searches rank plans: the smallest arena, then the fewest extra instructions."""
    return p.arena_bytes, p.extra_instructions


def _smallest(plans, cap: float) -> Plan:
    """The plan of ``plans`` with the smallest arena (then the fewest extra instructions) within ``cap``."""
    return min((p for p in plans if p.extra_instructions <= cap), key=_ram_first)


def _spec(p: Plan) -> tuple:
    return tuple(sorted((p.order.index(s.nodes[0]), p.order.index(s.nodes[-1]), s.band) for s in p.segments))


def _peak_steps(p: Plan) -> set:
    """The steps at which some buffer reaches the top of the arena (the ones a better plan must change)."""
    top = p.arena_bytes
    tops = [b for b in p.planner.buffers.values() if b.offset + b.size == top]
    return {s for b in tops for s in range(b.first, b.last + 1)}


def _placed(spec: tuple, a: int, b: int, band: int) -> tuple:
    """``spec`` with segment (a, b, band) added: the segments it overlaps keep their parts outside it
    (of two nodes or more), in their own band."""
    out = [(a, b, band)]
    for x, y, bd in spec:
        if y < a or b < x:
            out.append((x, y, bd))
            continue
        out += [piece for piece in ((x, a - 1, bd), (b + 1, y, bd)) if piece[1] > piece[0]]
    return tuple(sorted(out))


def _moves(segs: _Segments, spec: tuple, peak: set):
    """Segment sets one change away from ``spec``. A segment at a peak step may drop, change band, split in
    two (keeping both halves or either), grow by a node at either end; one elsewhere may drop or take
    higher bands (fewer instructions); and a new segment of up to ``WINDOW`` nodes around the first and
    last peak step replaces what it overlaps. Each move comes as a list of alternatives, the first within
    the instruction cap taken: a new segment in 1-row bands, then higher bands."""
    for i, (a, b, band) in enumerate(spec):
        rest = spec[:i] + spec[i + 1:]
        yield [rest]
        at_peak = any(a <= s <= b for s in peak)
        for bd in BANDS:
            if bd > band or (at_peak and bd != band):
                yield [tuple(sorted((*rest, (a, b, bd))))]
        if not at_peak:
            continue
        for m in range(a, b):
            halves = [h for h in ((a, m, band), (m + 1, b, band)) if h[1] > h[0]]
            for keep in (halves, *([h] for h in halves)):
                yield [tuple(sorted((*rest, *keep)))]
        for x, y in ((a - 1, b), (a, b + 1)):
            if any(m0 <= x and y <= m1 for m0, m1 in segs.maximal):
                yield [_placed(spec, x, y, band)]
    for step in sorted({min(peak), max(peak)}) if peak else ():
        for a, b in segs.windows(step):
            yield [_placed(spec, a, b, band) for band in BANDS]


def _greedy(segs: _Segments, cap: float) -> None:
    """Each round adds the segment and band that shrink the arena most within ``cap`` extra instructions."""
    current: tuple = ()
    while True:
        best = None
        for a, b in segs.runs:
            if any(not (y < a or b < x) for x, y, _ in current):
                continue
            for band in BANDS:  # the thinnest band within the cap (the local search tries the others)
                p = segs.plan((*current, (a, b, band)))
                if p is None:
                    break
                if p.extra_instructions <= cap:
                    best = p if best is None else min(best, p, key=_ram_first)
                    break
        if best is None or best.arena_bytes >= segs.plans[current].arena_bytes:
            return
        current = _spec(best)


def _local_search(segs: _Segments, cap: float) -> None:
    """From the best plan so far, each round takes the move (``_moves``) to the plan of least (arena, steps
    at its peak, extra instructions) within ``cap``, while that improves on the current one."""

    ranks: dict = {}

    def rank(p: Plan) -> tuple:
        if id(p) not in ranks:
            ranks[id(p)] = p.arena_bytes, len(_peak_steps(p)), p.extra_instructions
        return ranks[id(p)]

    current = _smallest([segs.speed, *segs.tried], cap)
    for _ in range(ROUNDS):
        best = current
        for alternatives in _moves(segs, _spec(current), _peak_steps(current)):
            for spec in alternatives:
                p = segs.plan(spec)
                if p is None:
                    break
                if p.extra_instructions <= cap:
                    best = min(best, p, key=rank)
                    break
        if best is current:
            return
        current = best


def _streamed_plans(sched: Schedule, speed: Plan, cap: float) -> list[Plan]:
    """Plans that stream segments of ``speed``'s order, added greedily, then improved by a local search
    that may split, trim, grow, re-band or replace the chosen segments. The greedy rounds alone keep the
    first segment that lowers the peak: one over two expansions when streaming either alone leaves the
    other's whole tensors at the peak, or a prefix of a long run (the only candidates there besides
    suffixes) when a few layers inside it make the peak. Every plan tried is returned."""
    segs = _Segments(sched, speed)
    _greedy(segs, cap)
    _local_search(segs, cap)
    return segs.tried


def _col_free_plans(sched: Schedule, start: Plan, cap: float) -> list[Plan]:
    """Plans that run some kernels without their col buffer (``OpParams.col_free_extra``), on top of
    ``start``: every such col dropped, then each given back (dearest first) where the arena stays as
    small; if that costs more than ``cap`` extra instructions, cols dropped one at a time instead, each
    round the one that shrinks the arena most within ``cap``. The plans tried that need less RAM than
    ``start`` are returned: a col-free loop that saves none would only add flash."""
    optional = sorted((k for k in start.col if sched.prepared[k].col_free_extra is not None),
                      key=lambda k: -sched.prepared[k].col_free_extra)
    if not optional:
        return []

    def with_dropped(no_col) -> Plan:
        return build_plan(sched, start.order, allow_inplace=start.planner.allow_inplace,
                          segments=start.segments, no_col=frozenset(no_col))

    tried = [with_dropped(optional)]
    least, dropped = tried[0].arena_bytes, set(optional)
    for k in optional:
        p = with_dropped(dropped - {k})
        tried.append(p)
        if p.arena_bytes <= least:
            dropped.discard(k)
    if tried[-1].no_col != frozenset(dropped):
        tried.append(with_dropped(dropped))
    if tried[-1].extra_instructions <= cap:
        return [p for p in tried if p.arena_bytes < start.arena_bytes]
    current = start
    while True:
        best = None
        for k in optional:
            if k in current.no_col:
                continue
            p = with_dropped(current.no_col | {k})
            tried.append(p)
            if p.extra_instructions <= cap:
                best = p if best is None else min(best, p, key=_ram_first)
        if best is None or best.arena_bytes >= current.arena_bytes:
            return [p for p in tried if p.arena_bytes < start.arena_bytes]
        current = best


def best_plan(graph: Graph, prepared: dict, inplace: bool = True, reorder: bool = True, fuse: bool = True,
              optimize: str = "speed", max_ram: int | None = None) -> Plan:
    """The plan a mode asks for. ``speed``: the smallest arena over execution orders (and with/without
    in-place, in case greedy loses), no streaming. ``balanced``: the smallest arena whose streamed segments
    and col-free kernels add at most ``BALANCED`` of the estimated instructions; ``ram``: the smallest
    arena. ``max_ram`` (arena bytes): the plan with the fewest extra instructions that fits, or a
    ``BudgetError`` naming the smallest arena there is. ``plan.considered`` lists (arena, extra
    instructions, chosen) of every plan tried."""
    sched = make_schedule(graph, prepared, fuse=fuse and inplace)
    speed = _speed_plan(sched, inplace, reorder)
    plans = [speed]
    base = base_instructions(sched)
    cap = BALANCED * base if optimize == "balanced" and max_ram is None else math.inf
    if optimize != "speed" or max_ram is not None:
        plans += _streamed_plans(sched, speed, cap)
        plans += _col_free_plans(sched, _smallest(plans, cap), cap)
    if max_ram is not None:
        fits = [p for p in plans if p.arena_bytes <= max_ram]
        if not fits:
            least = min(p.arena_bytes for p in plans)
            kb = -(-least // 1024)
            raise BudgetError(f"no plan fits an arena of {max_ram} bytes: the smallest possible is {least} "
                              f"bytes ({kb} KB)", fix=f"raise --max-ram-kb to at least {kb}")
        best = min(fits, key=lambda p: (p.extra_instructions, p.arena_bytes))
    elif optimize == "speed":
        best = speed
    else:
        best = _smallest(plans, cap)
    best.considered = [(p.arena_bytes, p.extra_instructions, p is best) for p in plans]
    best.base_instructions = base
    return best
