"""Cortex-M4 cycle estimate from the instruction stream qemu executed.

qemu counts instructions, but an LDM, an LDRD or a taken branch takes several cycles. Debian's qemu 7.2 has
no TCG plugins, so the stream comes from its log: ``-d in_asm,exec,nochain`` prints every translated block
(TB) once, with its disassembly, and one ``Trace`` line each time a TB runs (``nochain`` makes every run
visible). Each TB is timed once, statically, from the Cortex-M4 Technical Reference Manual (table 3-1 and
"Load/store timings"); what depends on the path taken (was the block's last branch taken? how wide and how
aligned is the instruction it lands on?) is decided per run from the next TB in the log. The log is a few
bytes per TB run, not per instruction: a KWS inference (4 M instructions) is ~190 k lines.

The timing rules (``CortexM4Timing``; zero wait states unless ``flash_wait_states`` says otherwise):

- data processing, saturation, packing, SIMD, extends, bit fields: 1; every multiply and multiply-accumulate
  (MUL, MLA, SMULL, SMLAL, SMLAD, SMLABB, SMMULR, ...): 1 (the M4's single-cycle MAC);
- SDIV/UDIV: 2-12 by the operands' sizes (early termination); the trace has no register values, so a fixed
  ``divide`` (7) is charged and divides are reported as their own class;
- single load (LDR, LDRB, LDRSB, ...): 2, or 1 when it directly follows a single load without writeback
  whose destination it does not use as an address; a load with writeback: 2 and nothing pipelines behind it;
- single store: 1 (the write buffer takes the data while the next instruction runs); a load or store right
  after a store waits 1 for the bus, any instruction after a register-offset store waits 1;
- LDRD/STRD: 3 (1 + N, N = 2); LDM/STM/PUSH/POP: 1 + N; neither pipelines with its neighbours;
- a load or store whose address register the preceding data-processing instruction wrote: +1 (no
  forwarding path to the address generator);
- branches: 1 when not taken, 1 + P when taken. P (the TRM's 1-3) is 1 for direct branches, whose target
  is fetched speculatively, 2 for register branches (BX, BLX, MOV PC), 3 for loads to the PC (POP {PC},
  LDR PC, TBB/TBH), +1 when the target is a 32-bit instruction at an odd halfword;
- IT: 0 when folded onto a preceding 16-bit instruction, else 1;
- flash wait states W: a block cannot run faster than its fetch (one 32-bit word per 1 + W cycles), a
  refill waits W more, a literal-pool load W more. Loads of other flash data (weights) are not charged:
  the trace has no data addresses.

Not modelled: interrupts taken inside the window, instructions an IT block skips (charged as executed),
bus contention with other masters, and pipelining across a TB boundary that is not a branch (qemu splits a
block where its instruction budget ends, about once per 75 k instructions).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from tinyopt.errors import ToolchainError

TRACE_FLAGS = "in_asm,exec,nochain"
CLASSES = ("alu", "multiply", "divide", "load", "load pipelined", "load writeback", "store",
           "load/store dual", "load/store multiple", "branch", "branch refill", "it", "address interlock",
           "store wait", "flash wait", "float", "other")
_K = {c: i for i, c in enumerate(CLASSES)}
_STALLS = {"branch refill", "address interlock", "store wait", "flash wait"}  # cycles, not instructions


@dataclass(frozen=True)
class CortexM4Timing:
    """Cycles of the Cortex-M4 instruction classes (TRM table 3-1 and its load/store timing notes)."""

    load: int = 2
    load_pipelined: int = 1
    store: int = 1
    after_store: int = 1
    address_interlock: int = 1
    divide: int = 7
    refill_direct: int = 1
    refill_register: int = 2
    refill_load: int = 3
    unaligned_wide_target: int = 1
    flash_wait_states: int = 0


# ---- decoding qemu's (capstone's) disassembly ------------------------------------------------------------

_CONDS = ("eq", "ne", "cs", "hs", "cc", "lo", "mi", "pl", "vs", "vc", "hi", "ls", "ge", "lt", "gt", "le",
          "al")
_PARALLEL = [p + op for p in ("s", "q", "sh", "u", "uq", "uh") for op in ("add8", "add16", "sub8", "sub16",
                                                                         "asx", "sax")]
_DATA = set("adc add addw adr and asr bfc bfi bic clz cmn cmp eor lsl lsr mov movw movt mvn neg orn "
            "orr pkhbt pkhtb rbit rev rev16 revsh ror rrx rsb sbc sbfx sub subw teq tst ubfx sxtb sxth "
            "uxtb uxth sxtb16 uxtb16 sxtab sxtah sxtab16 uxtab uxtah uxtab16 ssat usat ssat16 usat16 sel "
            "usad8 usada8 qadd qsub qdadd qdsub nop yield sev wfi wfe mrs msr cpsid cpsie bkpt svc "
            "udf".split()) | set(_PARALLEL)
_NO_DEST = {"cmp", "cmn", "tst", "teq", "nop", "yield", "sev", "wfi", "wfe", "msr", "cpsid", "cpsie", "bkpt",
            "svc", "udf"}
_MUL = set("mul mla mls smull umull smlal umlal umaal smlad smladx smlald smlaldx smlsd smlsdx smlsld "
           "smlsldx smmla smmlar smmls smmlsr smmul smmulr smuad smuadx smusd smusdx smlawb smlawt smulwb "
           "smulwt".split()) \
    | {f"{m}{x}{y}" for m in ("smla", "smlal", "smul") for x in "bt" for y in "bt"}
_MUL_TWO_DEST = {"smull", "umull", "smlal", "umlal", "umaal", "smlald", "smlaldx", "smlsld", "smlsldx"} \
    | {f"smlal{x}{y}" for x in "bt" for y in "bt"}
_LOAD = set("ldr ldrb ldrh ldrsb ldrsh ldrt ldrbt ldrht ldrsbt ldrsht ldrex ldrexb ldrexh".split())
_STORE = set("str strb strh strt strbt strht strex strexb strexh".split())
_MULTI = set("ldm ldmia ldmfd ldmdb ldmea stm stmia stmea stmdb stmfd push pop".split())
_BRANCH = set("b bl blx bx cbz cbnz tbb tbh".split())
_BARRIER = {"dsb", "dmb", "isb"}
_IT = {"it" + "".join(s) for n in range(4) for s in itertools.product("te", repeat=n)}
_FLAGGED = _DATA | _MUL  # the bases that take an S suffix
_REG = {**{f"r{i}": i for i in range(16)}, "sb": 9, "sl": 10, "fp": 11, "ip": 12, "sp": 13, "lr": 14,
        "pc": 15}


@lru_cache(maxsize=1)
def _mnemonics() -> dict[str, str]:
    """Every spelling qemu prints (base + S + condition) -> base. Bases without an S suffix never take one,
    which keeps ``ldrhs`` = LDR if HS and ``bls`` = B if LS unambiguous."""
    forms: dict[str, str] = {}
    bases = (_DATA | _MUL | _LOAD | _STORE | _MULTI | _BRANCH | _BARRIER | _IT
             | {"ldrd", "strd", "sdiv", "udiv"})
    for base in bases:
        for s in ("", "s") if base in _FLAGGED else ("",):
            for cond in ("", *_CONDS):
                forms.setdefault(base + s + cond, base)
    return forms


def _operands(text: str) -> list[str]:
    """Top-level comma-separated operands (commas inside [] and {} stay)."""
    out, depth, cur = [], 0, ""
    for ch in text:
        depth += ch in "[{"
        depth -= ch in "]}"
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def _regs(text: str) -> set[int]:
    return {_REG[t] for t in re.findall(r"[a-z]+\d*", text) if t in _REG}


@dataclass(frozen=True)
class Insn:
    """One decoded instruction: what its timing depends on."""

    addr: int
    size: int
    base: str  # mnemonic without S, condition and width suffixes ("" when qemu printed something unknown)
    kind: str  # alu, multiply, divide, load, store, dual, multiple, branch, it, barrier, float, other
    dest: frozenset = frozenset()  # registers written (writeback bases included)
    address: frozenset = frozenset()  # registers the address is formed from
    writeback: bool = False
    register_offset: bool = False
    literal: bool = False
    n_regs: int = 0
    refill: str | None = None  # direct | register | load when the instruction can change the PC


def decode(addr: int, size: int, mnemonic: str, operands: str) -> Insn:
    """One instruction of qemu's ``in_asm`` log.

    >>> decode(0x100, 2, "ldr", "r1, [r0], #4").writeback
    True
    >>> decode(0x100, 4, "pop.w", "{r4, r5, r6, pc}").refill
    'load'
    """
    name = mnemonic.split(".")[0]
    if name.startswith("v"):
        return Insn(addr, size, name, "float",
                    n_regs=len(_regs(operands)) if name in ("vpush", "vpop") else 0)
    base = _mnemonics().get(name, "")
    ops = _operands(operands)
    first = _regs(ops[0]) if ops else set()
    mem = re.search(r"\[([^\]]*)\]", operands)
    address = frozenset(_regs(mem.group(1))) if mem else frozenset()
    post = bool(mem) and bool(operands[mem.end():].strip(" ,"))  # "[rn], #4": post-indexed
    wb = "!" in operands or post
    if base in _DATA:
        dest = frozenset() if base in _NO_DEST else frozenset(first)
        return Insn(addr, size, base, "alu", dest, refill="register" if 15 in dest else None)
    if base in _MUL:
        dest = _regs(ops[0]) | (_regs(ops[1]) if base in _MUL_TWO_DEST and len(ops) > 1 else set())
        return Insn(addr, size, base, "multiply", frozenset(dest))
    if base in ("sdiv", "udiv"):
        return Insn(addr, size, base, "divide", frozenset(first))
    if base in _LOAD or base in _STORE:
        base_reg = _regs(mem.group(1).split(",")[0]) if mem else set()
        dest = (first if base in _LOAD else set()) | (base_reg if wb else set())
        return Insn(addr, size, base, "load" if base in _LOAD else "store", frozenset(dest), address, wb,
                    register_offset=bool(mem) and len(_regs(mem.group(1))) > 1, literal=15 in address,
                    refill="load" if base in _LOAD and 15 in first else None)
    if base in ("ldrd", "strd"):
        dest = (first | _regs(ops[1]) if base == "ldrd" and len(ops) > 1 else set()) | (
            _regs(mem.group(1).split(",")[0]) if mem and wb else set())
        return Insn(addr, size, base, "dual", frozenset(dest), address, wb)
    if base in _MULTI:
        lst = re.search(r"\{([^}]*)\}", operands)
        regs = _regs(lst.group(1)) if lst else set()
        rn = {13} if base in ("push", "pop") else first
        loads = base.startswith("ldm") or base == "pop"
        dest = (regs if loads else set()) | (rn if "!" in operands or base in ("push", "pop") else set())
        return Insn(addr, size, base, "multiple", frozenset(dest), frozenset(rn), n_regs=len(regs),
                    refill="load" if loads and 15 in regs else None)
    if base in _BRANCH:
        refill = {"bx": "register", "blx": "register" if first else "direct", "tbb": "load", "tbh": "load"}
        return Insn(addr, size, base, "branch", frozenset({14}) if base.startswith("bl") else frozenset(),
                    address, refill=refill.get(base, "direct"))
    if base in _IT:
        return Insn(addr, size, base, "it")
    if base in _BARRIER:
        return Insn(addr, size, base, "barrier")
    return Insn(addr, size, base, "other")


# one branch per instruction kind, as the TRM timing table reads; the stall rules read the previous one
def time_block(insns: list[Insn], t: CortexM4Timing) -> tuple[np.ndarray, np.ndarray]:  # noqa: C901
    """(cycles per class, instructions per class) of one straight run of instructions, its last branch not
    taken; taking it costs ``refill_cycles`` more, charged per run."""
    cyc = np.zeros(len(CLASSES), np.int64)
    cnt = np.zeros(len(CLASSES), np.int64)

    def add(cls: str, c: int, n: int = 1):
        cyc[_K[cls]] += c
        cnt[_K[cls]] += n

    prev: Insn | None = None
    for ins in insns:
        memory = ins.kind in ("load", "store", "dual", "multiple")
        if (memory and prev is not None and prev.kind in ("alu", "multiply", "divide")
                and prev.dest & ins.address):
            add("address interlock", t.address_interlock, 1)
        if prev is not None and prev.kind == "store" and (memory or prev.register_offset):
            add("store wait", t.after_store, 1)
        if ins.kind == "load":
            pipelined = (prev is not None and prev.kind == "load" and not prev.writeback
                         and prev.refill is None and not prev.dest & ins.address)
            if ins.refill:
                add("load", t.load)  # LDR PC: the refill is charged with the branch
            elif ins.writeback:
                add("load writeback", t.load)
            else:
                add("load pipelined" if pipelined else "load", t.load_pipelined if pipelined else t.load)
            if ins.literal and t.flash_wait_states:
                add("flash wait", t.flash_wait_states, 1)
        elif ins.kind == "store":
            add("store", t.store)
        elif ins.kind == "dual":
            add("load/store dual", 3)
        elif ins.kind == "multiple":
            add("load/store multiple", 1 + ins.n_regs)
        elif ins.kind == "divide":
            add("divide", t.divide)
        elif ins.kind == "branch":
            add("branch", 3 if ins.base in ("tbb", "tbh") else 1)
        elif ins.kind == "it":
            add("it", 0 if prev is not None and prev.size == 2 else 1)
        elif ins.kind == "barrier":
            add("other", 1 + (t.refill_register if ins.base == "isb" else 0))
        elif ins.kind == "float":
            add("float", {"vdiv": 14, "vsqrt": 14, "vldr": 2, "vstr": 2}.get(ins.base, 1 + ins.n_regs))
        elif ins.kind in ("alu", "multiply"):
            add(ins.kind, 1)
        else:
            add("other", 1)
        prev = ins
    if t.flash_wait_states:  # the fetch unit delivers one word per 1 + W cycles
        words = (insns[-1].addr + insns[-1].size - 1) // 4 - insns[0].addr // 4 + 1 if insns else 0
        short = words * (1 + t.flash_wait_states) - int(cyc.sum())
        if short > 0:
            add("flash wait", short, 0)
    return cyc, cnt


def refill_cycles(last: Insn, t: CortexM4Timing) -> int:
    """The refill a taken branch (or other PC write) ending a block costs, wait states included."""
    p = {"direct": t.refill_direct, "register": t.refill_register,
         "load": t.refill_load}.get(last.refill or "", 0)
    return p + t.flash_wait_states if last.refill else 0


# ---- reading the log -------------------------------------------------------------------------------------

_INSN = re.compile(r"0x([0-9a-f]+):  ([0-9a-f]{4}(?: [0-9a-f]{4})?)\s+(\S+)\s*(.*)")
_TRACE = re.compile(r"Trace \d+: (0x[0-9a-f]+) \[[0-9a-f]+/([0-9a-f]+)/[0-9a-f]+/[0-9a-f]+\] ?(\S*)")


@dataclass
class Block:
    pc: int
    symbol: str
    insns: list[Insn]

    @property
    def end(self) -> int:
        return self.insns[-1].addr + self.insns[-1].size if self.insns else self.pc


@dataclass
class Trace:
    """The blocks qemu translated and the order it ran them in (``runs``: block indices)."""

    blocks: list[Block]
    runs: np.ndarray

    @classmethod
    def read(cls, path: str | Path) -> Trace:
        with open(path, encoding="utf-8", errors="replace") as f:
            return cls.parse(f)

    @classmethod
    def parse(cls, lines) -> Trace:
        """Pair every ``IN:`` block with the ``Trace`` line that follows it (the host-code address names the
        translation), then list the runs. A ``Stopped execution of TB chain before`` line takes back the
        run just logged (the block never started: its instruction budget was spent); ``cpu_io_recompile:
        rewound execution of TB to ADDR`` cuts the run just logged at ADDR (an I/O access ended it early)."""
        blocks: list[Block] = []
        by_ptr: dict[str, int] = {}
        cut: dict[tuple[int, int], int] = {}
        runs: list[int] = []
        pending: list[Insn] | None = None
        symbol = ""
        for raw in lines:
            line = raw.rstrip("\n")
            if line.startswith("Trace "):
                m = _TRACE.match(line)
                if m is None:
                    continue
                ptr = m.group(1)
                if pending is not None:
                    by_ptr[ptr] = len(blocks)
                    blocks.append(Block(int(m.group(2), 16), m.group(3) or symbol, pending))
                    pending = None
                if ptr not in by_ptr:
                    raise ToolchainError(f"qemu's trace runs block {ptr} at 0x{m.group(2)} before listing it",
                                         where="qemu -d in_asm,exec,nochain",
                                         fix="check that qemu logged both in_asm and exec")
                runs.append(by_ptr[ptr])
            elif line.startswith("0x") and pending is not None:
                m = _INSN.match(line)
                if m:
                    words = m.group(2).split()
                    pending.append(decode(int(m.group(1), 16), 2 * len(words), m.group(3), m.group(4)))
            elif line.startswith("IN:"):
                pending, symbol = [], line[3:].strip()
            elif line.startswith("Stopped execution of TB chain before") and runs:
                runs.pop()
            elif line.startswith("cpu_io_recompile: rewound execution of TB to") and runs:
                stop = int(line.rsplit(" ", 1)[1], 16)
                key = (runs[-1], stop)
                if key not in cut:
                    b = blocks[runs[-1]]
                    cut[key] = len(blocks)
                    blocks.append(Block(b.pc, b.symbol, [i for i in b.insns if i.addr < stop]))
                runs[-1] = cut[key]
        return cls(blocks, np.asarray(runs, np.int64))

    def find(self, symbol: str, start: int = 0) -> int:
        """Index of the first run at or after ``start`` inside function ``symbol`` (-1 if none)."""
        sym = np.array([b.symbol == symbol for b in self.blocks] or [False])
        hits = np.flatnonzero(sym[self.runs[start:]]) if len(self.runs) else []
        return int(hits[0]) + start if len(hits) else -1


@dataclass
class Estimate:
    """Instructions and estimated cycles of a stretch of the trace, whole and per segment."""

    instructions: int
    cycles: int
    segments: list[tuple[int, int]] = field(default_factory=list)  # (instructions, cycles) per segment
    classes: dict[str, dict[str, int]] = field(default_factory=dict)  # class -> instructions, cycles
    segment_classes: list[dict[str, dict[str, int]]] = field(default_factory=list)  # the same, per segment
    timing: CortexM4Timing = field(default_factory=CortexM4Timing)

    def to_dict(self) -> dict:
        return {"instructions": self.instructions, "cycles": self.cycles, "classes": self.classes}


def estimate(trace: Trace, timing: CortexM4Timing | None = None, enter: str | None = None,
             until: str | None = None, split: str | None = None, exclude: tuple[str, ...] = ()) -> Estimate:
    """Cycles of the runs from the first one inside ``enter`` up to the next one inside ``until`` (the whole
    trace without them). ``split`` starts a new segment at every call of that function; the functions in
    ``exclude`` (the profiling marks themselves) are not charged."""
    t = timing or CortexM4Timing()
    lo, hi = 0, len(trace.runs)
    if enter is not None:
        lo = trace.find(enter)
        if lo < 0:
            raise ToolchainError(f"the trace never enters {enter}", where="qemu trace",
                                 fix="check that the firmware calls it and keeps its symbol")
    if until is not None:
        hi = trace.find(until, lo + 1)
        if hi < 0:
            raise ToolchainError(f"the trace never returns to {until}", where="qemu trace",
                                 fix="raise the qemu timeout or check that the firmware finishes")
    nb = len(trace.blocks)
    cyc = np.zeros((nb, len(CLASSES)), np.int64)
    cnt = np.zeros((nb, len(CLASSES)), np.int64)
    refill = np.zeros(nb, np.int64)
    wide_odd = np.zeros(nb, np.int64)
    pc = np.array([b.pc for b in trace.blocks], np.int64)
    end = np.array([b.end for b in trace.blocks], np.int64)
    for i, b in enumerate(trace.blocks):
        cyc[i], cnt[i] = time_block(b.insns, t)
        if b.insns:
            refill[i] = refill_cycles(b.insns[-1], t)
            wide_odd[i] = t.unaligned_wide_target if b.insns[0].size == 4 and b.insns[0].addr % 4 else 0
    runs = trace.runs[lo:hi]
    nxt = trace.runs[lo + 1:hi + 1]
    if len(nxt) < len(runs):  # the last run of the log: nothing follows it
        nxt = np.append(nxt, runs[-1:])
    taken = (refill[runs] > 0) & (pc[nxt] != end[runs])
    penalty = np.where(taken, refill[runs] + wide_odd[nxt], 0)
    skip = np.array([b.symbol in exclude for b in trace.blocks] or [False])[runs]
    keep = ~skip
    if split is not None:
        inside = np.array([b.symbol == split for b in trace.blocks] or [False])[runs]
        entry = inside & ~np.concatenate([[False], inside[:-1]])
        seg = np.cumsum(entry)
    else:
        seg = np.zeros(len(runs), np.int64)
    n_seg = int(seg.max()) + 1 if len(seg) else 1
    k_refill = _K["branch refill"]
    instr = (cnt * ~np.isin(np.arange(len(CLASSES)), [_K[c] for c in _STALLS])).sum(axis=1)
    per_run_cyc = cyc.sum(axis=1)[runs] + penalty
    segments = [(int(instr[runs][keep & (seg == s)].sum()), int(per_run_cyc[keep & (seg == s)].sum()))
                for s in range(n_seg)]
    uses = np.zeros((n_seg, nb), np.int64)
    np.add.at(uses, (seg[keep], runs[keep]), 1)
    seg_cyc, seg_cnt = uses @ cyc, uses @ cnt
    seg_cyc[:, k_refill] += np.bincount(seg[keep], weights=penalty[keep], minlength=n_seg).astype(np.int64)
    seg_cnt[:, k_refill] += np.bincount(seg[keep], weights=taken[keep], minlength=n_seg).astype(np.int64)

    def named(cy, cn) -> dict[str, dict[str, int]]:
        return {c: {"instructions" if c not in _STALLS else "events": int(cn[k]), "cycles": int(cy[k])}
                for c, k in _K.items() if cn[k] or cy[k]}

    return Estimate(int(instr[runs][keep].sum()), int(per_run_cyc[keep].sum()), segments,
                    named(seg_cyc.sum(axis=0), seg_cnt.sum(axis=0)),
                    [named(seg_cyc[i], seg_cnt[i]) for i in range(n_seg)], t)
