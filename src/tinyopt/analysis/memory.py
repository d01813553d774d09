"""Activation memory: a TFLM-style greedy arena planner and the seeds' textbook memory.

The planner answers "how big must the arena be" before anything runs. It follows TFLM's greedy
planner so that its numbers can be compared with TFLM's own: buffers are placed largest first, each
at the lowest offset that does not collide with an already placed buffer whose lifetime overlaps.

The C code generator plans its own arena (``export/c/plan.ArenaPlanner``: in-place ops, reordering); it
does not build on this class. A subclass may override ``placement_order()`` to change which buffer is placed
first, ``conflicts(i, j)`` to declare that two buffers alive at the same step may still share bytes (an
in-place op's input and output), or add buffers with ``offline_offset`` to pin them; ``plan()`` and
``check_no_overlap()`` use those hooks, so the self-check stays valid for the subclass.
"""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass, field

from tinyopt.analysis.cost import activation_dtype, tensor_bytes
from tinyopt.errors import BudgetError
from tinyopt.graph.ir import Graph

ALIGNMENT = 16  # TFLM's kBufferAlignment: every arena buffer starts on a 16-byte boundary.


def align_up(size: int, alignment: int = ALIGNMENT) -> int:
    return -(-int(size) // alignment) * alignment


@dataclass
class Buffer:
    size: int            # requested bytes
    first_used: int      # first time step (node index) that reads or writes it
    last_used: int       # last time step, inclusive
    offline_offset: int | None = None
    name: str = ""

    def overlaps_in_time(self, other: Buffer) -> bool:
        return not (self.last_used < other.first_used or other.last_used < self.first_used)


class GreedyPlanner:
    """Greedy-by-size arena planner (TFLM's ``GreedyMemoryPlanner`` algorithm).

    >>> p = GreedyPlanner()
    >>> p.add_buffer(100, 0, 1); p.add_buffer(50, 1, 2); p.add_buffer(100, 2, 3)
    0
    1
    2
    >>> [p.offset_of(i) for i in range(3)], p.peak_bytes()
    ([0, 112, 0], 176)

    Parameters are stored as given (scikit-learn style); the plan is computed on first query and again
    after every ``add_buffer``. ``arena_bytes`` (optional) is the arena we must fit in: ``plan()`` raises
    ``BudgetError`` when the peak exceeds it.
    """

    def __init__(self, alignment: int = ALIGNMENT, arena_bytes: int | None = None):
        self.alignment = alignment
        self.arena_bytes = arena_bytes
        self.buffers: list[Buffer] = []
        self.offsets_: list[int] | None = None

    # -- input ----------------------------------------------------------------------------------
    def add_buffer(self, size: int, first_used: int, last_used: int, *, offline_offset: int | None = None,
                   name: str = "") -> int:
        """Register a buffer alive from step ``first_used`` to ``last_used`` (inclusive); returns its id."""
        if size < 0 or first_used < 0 or last_used < first_used:
            raise ValueError(f"bad buffer: size {size}, lifetime {first_used}..{last_used}")
        self.buffers.append(Buffer(int(size), int(first_used), int(last_used), offline_offset, name))
        self.offsets_ = None
        return len(self.buffers) - 1

    # -- planning -------------------------------------------------------------------------------
    def aligned_size(self, i: int) -> int:
        return align_up(self.buffers[i].size, self.alignment)

    def conflicts(self, i: int, j: int) -> bool:
        """May buffers ``i`` and ``j`` not share bytes? By default: when their lifetimes overlap."""
        return self.buffers[i].overlaps_in_time(self.buffers[j])

    def placement_order(self) -> list[int]:
        """Ids in the order they are placed: pinned first, then largest first (ties: earlier first use,
        then insertion order, so the plan is deterministic)."""
        free = [i for i, b in enumerate(self.buffers) if b.offline_offset is None]
        free.sort(key=lambda i: (-self.aligned_size(i), self.buffers[i].first_used, i))
        return [i for i, b in enumerate(self.buffers) if b.offline_offset is not None] + free

    def plan(self) -> GreedyPlanner:
        offsets: dict[int, int] = {}  # buffer index -> offset, filled in placement order
        placed: list[int] = []
        for i in self.placement_order():
            buf = self.buffers[i]
            size = self.aligned_size(i)
            if buf.offline_offset is not None:
                offsets[i] = int(buf.offline_offset)
            else:
                # Only buffers alive at the same time can collide; walk them by offset and take the first
                # gap that is large enough. Largest-first makes big buffers claim low offsets, so small
                # ones fill the holes between them (why greedy-by-size is close to optimal in practice).
                live = sorted((j for j in placed if self.conflicts(i, j)), key=lambda j: offsets[j])
                candidate = 0
                for j in live:
                    if offsets[j] >= candidate + size:
                        break
                    candidate = max(candidate, offsets[j] + self.aligned_size(j))
                offsets[i] = candidate
            placed.append(i)
        self.offsets_ = [offsets[i] for i in range(len(self.buffers))]
        if self.arena_bytes is not None and self.peak_bytes() > self.arena_bytes:
            raise BudgetError(f"the activation arena needs {self.peak_bytes():,} bytes but only "
                              f"{self.arena_bytes:,} are available", where="arena planner",
                              fix="give a larger arena, use int8 activations, or prune channels of the "
                                  "layers that own the largest tensors")
        return self

    def _planned(self) -> list[int]:
        if self.offsets_ is None:
            self.plan()
        return self.offsets_  # type: ignore[return-value]

    # -- queries --------------------------------------------------------------------------------
    def offset_of(self, i: int) -> int:
        return self._planned()[i]

    def peak_bytes(self) -> int:
        """Arena bytes the plan needs: the highest end of any buffer."""
        offsets = self._planned() if self.offsets_ is None else self.offsets_
        return max((o + self.aligned_size(i) for i, o in enumerate(offsets)), default=0)

    def sum_bytes(self) -> int:
        """What the arena would need with no sharing at all (every buffer its own slot)."""
        return sum(self.aligned_size(i) for i in range(len(self.buffers)))

    def check_no_overlap(self) -> bool:
        """Self-check: no two buffers alive at the same time share a byte (AssertionError if they do)."""
        offs = self._planned()
        for i, a in enumerate(self.buffers):
            for j in range(i + 1, len(self.buffers)):
                b = self.buffers[j]
                if not self.conflicts(i, j):
                    continue
                ai, bi = offs[i], offs[j]
                if ai < bi + self.aligned_size(j) and bi < ai + self.aligned_size(i):
                    steps = f"{max(a.first_used, b.first_used)}..{min(a.last_used, b.last_used)}"
                    raise AssertionError(f"buffers {i} and {j} overlap: [{ai}, {ai + self.aligned_size(i)}) "
                                         f"and [{bi}, {bi + self.aligned_size(j)}) at steps {steps}")
        return True

    def plan_text(self, width: int = 64) -> str:
        """The plan as a timeline: one row per step, arena offsets left to right, one letter per buffer."""
        offs = self._planned()
        peak = max(self.peak_bytes(), 1)
        steps = max((b.last_used for b in self.buffers), default=-1) + 1
        letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
        out = io.StringIO()
        from tinyopt.analysis.cost import short_name

        for i, b in enumerate(self.buffers):
            out.write(f"{letters[i % len(letters)]}: {short_name(b.name) if b.name else f'buffer {i}'} "
                      f"{b.size:,} B @ {offs[i]:,} steps {b.first_used}..{b.last_used}\n")
        for t in range(steps):
            row = ["."] * width
            used = 0
            for i, b in enumerate(self.buffers):
                if b.first_used <= t <= b.last_used:
                    lo = offs[i] * width // peak
                    hi = max(lo + 1, (offs[i] + self.aligned_size(i)) * width // peak)
                    for k in range(lo, min(hi, width)):
                        if row[k] == ".":  # a column is peak/width bytes: small neighbours may share one
                            row[k] = letters[i % len(letters)]
                    used += self.aligned_size(i)
            out.write(f"{t:>3} {''.join(row)} {used:,} B\n")
        out.write(f"peak {self.peak_bytes():,} B (no sharing: {self.sum_bytes():,} B); one column = "
                  f"{peak / width:,.0f} B\n")
        return out.getvalue()

    def print_plan(self, file=None, width: int = 64) -> None:
        (file or sys.stdout).write(self.plan_text(width))


@dataclass
class ArenaPlan:
    """The planned activation arena of a graph: one buffer per activation tensor."""

    tensors: list[str]
    sizes: list[int]
    lifetimes: list[tuple[int, int]]
    offsets: list[int]
    peak_bytes: int
    planner: GreedyPlanner = field(repr=False)

    def to_dict(self) -> dict:
        return {"peak_bytes": self.peak_bytes,
                "buffers": [{"tensor": n, "size": s, "first_used": a, "last_used": b, "offset": o}
                            for n, s, (a, b), o in zip(self.tensors, self.sizes, self.lifetimes,
                                                       self.offsets)]}


def tensor_lifetimes(graph: Graph) -> dict[str, tuple[int, int]]:
    """First and last node index touching each activation tensor (graph inputs from step 0, graph
    outputs until the last step), as TFLM's allocator computes them."""
    last_step = max(len(graph.nodes) - 1, 0)
    life: dict[str, list[int]] = {name: [0, 0] for name in graph.inputs}
    for step, node in enumerate(graph.nodes):
        for name in node.outputs:
            if not graph.tensors[name].constant:
                life.setdefault(name, [step, step])
        for name in node.inputs:
            if name and name in life:
                life[name][1] = max(life[name][1], step)
    for name in graph.outputs:
        if name in life:
            life[name][1] = last_step
    return {k: (v[0], v[1]) for k, v in life.items()}


def plan_arena(graph: Graph, dtype: str | None = None, planner: GreedyPlanner | None = None) -> ArenaPlan:
    """Plan the activation arena of ``graph`` (tensor bytes at their dtype, or "as if" ``dtype``)."""
    planner = planner or GreedyPlanner()
    names, sizes, lifes = [], [], []
    for name, (first, last) in tensor_lifetimes(graph).items():
        t = graph.tensors[name]
        size = tensor_bytes(t, activation_dtype(t, dtype))
        planner.add_buffer(size, first, last, name=name)
        names.append(name)
        sizes.append(size)
        lifes.append((first, last))
    planner.plan()
    return ArenaPlan(names, sizes, lifes, [planner.offset_of(i) for i in range(len(names))],
                     planner.peak_bytes(), planner)


def textbook_memory(param_count: int, param_width: float, largest_activation_bytes: int) -> int:
    """The seeds' convention: parameter count × dtype width + the largest single activation tensor."""
    return int(round(param_count * param_width)) + int(largest_activation_bytes)
