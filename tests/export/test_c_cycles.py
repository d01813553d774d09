"""Cortex-M4 cycle estimate: the decoder, the timing rules against the TRM's own examples and hand-counted
micro-benchmarks run under qemu, the log reader's corner cases, and the deploy figures."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from conftest import KWS_INT8, need
from tinyopt.cli import main
from tinyopt.errors import ToolchainError
from tinyopt.export.c.cycles import CortexM4Timing, Trace, decode, estimate, time_block

HAVE_ARM = shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")
arm = pytest.mark.skipif(not HAVE_ARM,
                         reason="Cortex-M toolchain or qemu absent: apt-get install gcc-arm-none-eabi "
                         "libnewlib-arm-none-eabi qemu-system-arm")


def _block(text: str, start: int = 0x100) -> list:
    """Instructions from 'mnemonic operands' lines, laid out from ``start`` (``.w`` or a wide mnemonic: 4
    bytes)."""
    insns, addr = [], start
    for line in text.strip().splitlines():
        mnem, _, ops = line.strip().partition(" ")
        size = 4 if mnem.endswith(".w") or mnem in ("ldrd", "strd", "smlad", "smlabb", "smull", "udiv",
                                                    "mla") else 2
        insns.append(decode(addr, size, mnem, ops.strip()))
        addr += size
    return insns


def _cycles(text: str, t: CortexM4Timing | None = None) -> int:
    return int(time_block(_block(text), t or CortexM4Timing())[0].sum())


@pytest.mark.parametrize("mnemonic, base, kind", [
    ("bls", "b", "branch"), ("bl", "bl", "branch"), ("bleq", "bl", "branch"), ("ldrhs", "ldr", "load"),
    ("ldrsb", "ldrsb", "load"), ("strbne", "strb", "store"), ("smlatt", "smlatt", "multiply"),
    ("sxtbge.w", "sxtb", "alu"), ("lsls", "lsl", "alu"), ("teq", "teq", "alu"),
    ("smmulr", "smmulr", "multiply"), ("ldm.w", "ldm", "multiple"), ("itete", "itete", "it"),
    ("sdiv", "sdiv", "divide"), ("frobnicate", "", "other"),
])
def test_decoder_reads_capstone_mnemonics(mnemonic, base, kind):
    ins = decode(0x100, 4, mnemonic, "r0, r1")
    assert (ins.base, ins.kind) == (base, kind)


def test_decoder_operands():
    ld = decode(0, 4, "ldr.w", "r1, [r5, r3, lsl #2]")
    assert ld.dest == {1} and ld.address == {5, 3} and ld.register_offset and not ld.writeback
    post = decode(0, 2, "ldr", "r1, [r0], #4")
    assert post.writeback and post.dest == {0, 1}
    pre = decode(0, 4, "ldrsb", "r2, [r3, #1]!")
    assert pre.writeback and pre.dest == {2, 3}
    assert decode(0, 2, "ldr", "r0, [pc, #0x60]").literal
    ldm = decode(0, 4, "ldm.w", "r7!, {r3, sb, sl, fp}")
    assert ldm.n_regs == 4 and ldm.dest == {3, 9, 10, 11, 7} and ldm.address == {7} and ldm.refill is None
    assert decode(0, 2, "push", "{r4, r5, lr}").n_regs == 3
    assert decode(0, 2, "pop", "{r4, pc}").refill == "load" and decode(0, 2, "bx", "lr").refill == "register"
    assert (decode(0, 2, "mov", "pc, r3").refill == "register"
            and decode(0, 2, "bne", "#0x40").refill == "direct")
    assert decode(0, 4, "umull", "r2, r3, r4, r5").dest == {2, 3}
    assert decode(0, 2, "cmp", "r0, #0").dest == frozenset()


@pytest.mark.parametrize("text, cycles", [
    # the TRM's own "load/store timings" examples, cycles as it states them
    ("ldr r0, [r1]\nldr r1, [r2]", 3),
    ("ldr.w r0, [r1, r2]\nstr r0, [r3, #20]", 3),
    ("ldr.w r0, [r1, r2]\nstr.w r1, [r3, r2]", 3),
    ("ldr.w r0, [r1, r5]\nldr r1, [r2]\nldr r2, [r3, #4]", 4),
    # the TRM table: LDRD 1 + N, LDM/PUSH 1 + N, multiplies 1, divide the fixed middle of 2-12
    ("ldrd r0, r1, [r2]", 3), ("push {r4, r5, r6, lr}", 5), ("ldm r0!, {r1, r2, r3}", 4),
    ("smlad r0, r1, r2, r0\nsmlabb r0, r1, r2, r0\nmla r0, r1, r2, r0\nsmull r0, r1, r2, r3", 4),
    ("udiv r0, r0, r1", 7),
    # an address from the instruction just before stalls 1; the destination of a load used as the next
    # load's address stops the pipelining; a load with writeback lets nothing pipeline behind it
    ("adds r0, #4\nldr r1, [r0]", 4), ("ldr r2, [r0]\nldr r3, [r2]", 4),
    ("ldr r1, [r0], #4\nldr r2, [r0]", 4),
    # stores: 1, a memory access right behind one waits 1, anything behind a register-offset store waits 1
    ("str r1, [r0]\nstr r2, [r0, #4]", 3), ("str r1, [r0]\nadds r1, #1", 2),
    ("str.w r1, [r0, r3]\nadds r1, #1", 3),
    # IT folds onto a preceding 16-bit instruction only
    ("cmp r0, #0\nit eq\nmoveq r1, #1", 2), ("cmp.w r0, #0\nit ne\nmovne r1, #2", 3),
])
def test_block_timing_by_hand(text, cycles):
    assert _cycles(text) == cycles


def test_flash_wait_states_slow_fetch_and_literal_loads():
    # 3 x 16-bit at 0x100 = one 32-bit word... plus half of the next: 2 words x (1 + 2) = 6 > 3 executed
    assert _cycles("adds r0, #1\nsubs r1, #1\nadds r2, #1", CortexM4Timing(flash_wait_states=2)) == 6
    # a literal load reads flash: 2 + W, and the block of one word cannot beat 1 + W... 4 > 3
    assert _cycles("ldr r0, [pc, #8]", CortexM4Timing(flash_wait_states=2)) == 4
    assert _cycles("adds r0, #1\nsubs r1, #1\nadds r2, #1") == 3


LOG = """\
----------------
IN: f
0x00000100:  2001       movs     r0, #1
0x00000102:  e7fd       b        #0x100

Trace 0: 0x7f0000000100 [00800408/00000100/00000110/ff020200] f
Trace 0: 0x7f0000000100 [00800408/00000100/00000110/ff020200] f
Stopped execution of TB chain before 0x7f0000000100 [00000100] f
Trace 0: 0x7f0000000100 [00800408/00000100/00000110/ff020200] f
----------------
IN: g
0x00000200:  6801       ldr      r1, [r0]
0x00000202:  6842       ldr      r2, [r0, #4]
0x00000204:  6883       ldr      r3, [r0, #8]
0x00000206:  4770       bx       lr

Trace 0: 0x7f0000000200 [00800408/00000200/00000110/ff020200] g
cpu_io_recompile: rewound execution of TB to 00000204
----------------
IN: g
0x00000204:  6883       ldr      r3, [r0, #8]

Trace 0: 0x7f0000000300 [00800408/00000204/00000110/ff020200] g
----------------
IN: g
0x00000206:  4770       bx       lr

Trace 0: 0x7f0000000400 [00800408/00000206/00000110/ff020200] g
----------------
IN: main
0x00000300:  2000       movs     r0, #0

Trace 0: 0x7f0000000500 [00800408/00000300/00000110/ff020200] main
"""


def test_log_reader_takes_back_stopped_runs_and_cuts_rewound_ones():
    tr = Trace.parse(LOG.splitlines(keepends=True))
    # f ran twice (the third Trace line was taken back); g's first block stopped at its I/O load
    assert [tr.blocks[i].symbol for i in tr.runs] == ["f", "f", "g", "g", "g", "main"]
    whole = estimate(tr)
    assert whole.instructions == 2 + 2 + 2 + 1 + 1 + 1
    g = estimate(tr, enter="g", until="main")
    # ldr 2 + ldr pipelined 1 (cut there) | ldr 2 (a new block: nothing to pipeline behind) | bx 1 + refill 2
    assert (g.instructions, g.cycles) == (4, 2 + 1 + 2 + 3)
    f = estimate(tr, enter="f", until="g")
    # movs 1 + b 1 + refill 1, twice (the second b lands in g: a taken branch all the same)
    assert (f.instructions, f.cycles) == (4, 6)
    assert f.classes["branch refill"] == {"events": 2, "cycles": 2}


def test_missing_window_is_a_toolchain_error():
    tr = Trace.parse(LOG.splitlines(keepends=True))
    with pytest.raises(ToolchainError, match="never enters tinyopt_invoke"):
        estimate(tr, enter="tinyopt_invoke", until="main")
    with pytest.raises(ToolchainError, match="never returns to h"):
        estimate(tr, enter="f", until="h")


# Micro-benchmarks: each function's cycles counted by hand from the rules above, run under qemu and timed
# from its instruction log. The driver returns every call onto a 16-bit NOP, so no return lands on a
# misaligned 32-bit instruction.
MICRO = r"""
    .syntax unified
    .thumb
    .text
    .macro fn name
    .global \name
    .type \name, %function
    .thumb_func
    .align 2
\name:
    .endm

fn mb_alu                       @ instructions 302, cycles 403
    movs r1, #100               @ 1
1:  adds r0, r0, #1             @ 1 x 100
    subs r1, r1, #1             @ 1 x 100
    bne 1b                      @ 1 x 100, refill 1 x 99 (direct, onto a 16-bit instruction)
    bx lr                       @ 1 + 2 (register branch)
    .size mb_alu, .-mb_alu

fn mb_loads                     @ instructions 9, cycles 16
    ldr r1, [r0]                @ 2
    ldr r2, [r0, #4]            @ 1 pipelined
    ldr r3, [r0, #8]            @ 1 pipelined
    adds r1, r1, r2             @ 1
    ldr r2, [r0, #12]           @ 2 (behind an ALU instruction)
    ldr r3, [r2]                @ 2 (its address is the load before's result)
    ldr r1, [r0], #4            @ 2 (writeback)
    ldr r2, [r0]                @ 2 (nothing pipelines behind a writeback load)
    bx lr                       @ 3
    .size mb_loads, .-mb_loads

fn mb_stores                    @ instructions 9, cycles 14
    movs r3, #8                 @ 1
    str r1, [r0]                @ 1
    str r2, [r0, #4]            @ 1 + 1 (behind a store)
    adds r1, r1, #1             @ 1
    str r1, [r0, r3]            @ 1
    adds r2, r2, #1             @ 1 + 1 (behind a register-offset store)
    ldr r1, [r0]                @ 2
    str r1, [r0, #12]           @ 1
    bx lr                       @ 3
    .size mb_stores, .-mb_stores

fn mb_multiple                  @ instructions 10, cycles 35
    push {r4, r5, r6, lr}       @ 1 + 4
    ldm r0!, {r1, r2, r3, r4}   @ 1 + 4
    ldrd r5, r6, [r0]           @ 3
    smlad r1, r2, r3, r1        @ 1
    smlabb r1, r2, r3, r1       @ 1
    mla r1, r2, r3, r1          @ 1
    smull r2, r3, r4, r5        @ 1
    udiv r2, r2, r6             @ 7
    strd r5, r6, [r0]           @ 3
    pop {r4, r5, r6, pc}        @ 1 + 4 + 3 (load to the PC)
    .size mb_multiple, .-mb_multiple

fn mb_interlock                 @ instructions 6, cycles 12
    adds r0, r0, #4             @ 1
    ldr r1, [r0]                @ 2 + 1 (address written by the instruction before)
    mov r2, r0                  @ 1
    ldr r3, [r2, #4]            @ 2 + 1
    ldr r1, [r0, #8]            @ 1 pipelined
    bx lr                       @ 3
    .size mb_interlock, .-mb_interlock

fn mb_it                        @ instructions 7, cycles 8
    cmp r0, #0                  @ 1
    it eq                       @ 0 (folded onto the 16-bit CMP)
    moveq r1, #1                @ 1
    cmp.w r0, #0                @ 1
    it ne                       @ 1 (behind a 32-bit instruction)
    movne r1, #2                @ 1
    bx lr                       @ 3
    .size mb_it, .-mb_it

fn mb_wide                      @ instructions 33, cycles 55
    movs r1, #10                @ 1
    b 1f                        @ 1 + 1 + 1 (onto a 32-bit instruction at an odd halfword)
    nop                         @ never runs
1:  add.w r0, r0, #1            @ 1 x 10
    subs r1, r1, #1             @ 1 x 10
    bne 1b                      @ 1 x 10, (1 + 1) x 9
    bx lr                       @ 3
    .size mb_wide, .-mb_wide

fn mb_driver
    push {r4, lr}
    mov r4, r0
    bl mb_alu
    nop
    mov r0, r4
    bl mb_loads
    nop
    mov r0, r4
    bl mb_stores
    nop
    mov r0, r4
    bl mb_multiple
    nop
    mov r0, r4
    bl mb_interlock
    nop
    movs r0, #0
    bl mb_it
    nop
    bl mb_wide
    nop
    pop {r4, pc}
    .size mb_driver, .-mb_driver
"""

HAND = {"mb_alu": (302, 403), "mb_loads": (9, 16), "mb_stores": (9, 14), "mb_multiple": (10, 35),
        "mb_interlock": (6, 12), "mb_it": (7, 8), "mb_wide": (33, 55)}

MAIN = """#include <stdint.h>
void mb_driver(uint32_t *words);
static uint32_t words[16] = {1, 2, 3, 0, 5, 6, 7, 8, 9, 10, 11, 12};
int main(void)
{
    words[3] = (uint32_t)(uintptr_t)words; /* mb_loads reads an address from here */
    mb_driver(words);
    return 0;
}
"""


@pytest.fixture(scope="module")
def micro_trace(tmp_path_factory):
    if not HAVE_ARM:
        pytest.skip("Cortex-M toolchain or qemu absent")
    from tinyopt.export.c.board import build_firmware, run_traced

    d = tmp_path_factory.mktemp("micro")
    (d / "micro.S").write_text(MICRO)
    (d / "main.c").write_text(MAIN)
    elf = build_firmware([d / "main.c", d / "micro.S"], d, name="micro")
    return run_traced(elf)[0]


@arm
@pytest.mark.parametrize("name", list(HAND))
def test_micro_benchmarks_match_hand_counts(micro_trace, name):
    est = estimate(micro_trace, enter=name, until="mb_driver")
    assert (est.instructions, est.cycles) == HAND[name]


@arm
def test_micro_benchmark_with_flash_wait_states(micro_trace):
    # mb_alu at W = 2: its first block (8 bytes, 2 words) and the loop block (6 bytes at +2: 2 words) are
    # fetch-bound at 2 x 3 = 6 cycles each run, the BX block (1 word) at 3; refills 1 + 2 and 2 + 2:
    # 6 + 99 x 6 + 99 x 3 + 3 + 4 = 904
    est = estimate(micro_trace, CortexM4Timing(flash_wait_states=2), enter="mb_alu", until="mb_driver")
    assert (est.instructions, est.cycles) == (302, 904)


@arm
def test_deploy_reports_cycles_and_milliseconds(tmp_path, capsys):
    """KWS through the CLI with --profile: the traced cycles sit between the instruction count and the
    LDM/LDRD-heavy worst case, milliseconds are cycles at 25 MHz, and the nodes add up to the total."""
    assert main(["deploy", str(need(KWS_INT8)), "--out", str(tmp_path / "k"), "--profile", "--json",
                 "--inputs", "1", "--optimize", "speed"]) == 0  # one mark per node (streamed: one per band)
    res = json.loads(capsys.readouterr().out)
    assert res["clock_mhz"] == 25.0 and res["flash_wait_states"] == 0
    assert res["instructions"] < res["cycles"] < 2 * res["instructions"]
    assert res["ms"] == round(res["cycles"] / 25e3, 3)
    classes = res["cycle_classes"]
    # the traced window starts inside invoke; the SysTick count (5 instructions a tick) also has its call site
    assert sum(c.get("instructions", 0)
               for c in classes.values()) == pytest.approx(res["instructions"], abs=15)
    assert sum(c["cycles"] for c in classes.values()) == res["cycles"]
    nodes = res["nodes"]
    # the marked build's nodes: the marks are not charged, their call sites (a MOVS and a BL each) are;
    # its longer invoke moves the kernels, so other branch targets land on odd halfwords (+-1 cycle each)
    assert abs(sum(n["instructions"] for n in nodes) - res["instructions"]) <= 5 + 2 * len(nodes)
    assert sum(n["cycles"] for n in nodes) == pytest.approx(res["cycles"], rel=1e-3)
    assert {n["op"] for n in nodes} >= {"conv2d", "depthwise_conv2d", "softmax"}
    assert all(n["cycles"] >= n["instructions"] for n in nodes)
    # each node's classes add up to its cycles; the 1x1 convs spend theirs in SMLADs and loads
    assert all(sum(c["cycles"] for c in n["classes"].values()) == n["cycles"] for n in nodes)
    conv = nodes[2]["classes"]
    assert conv["multiply"]["instructions"] >= nodes[2]["macs"] // 2 - 100  # an SMLAD per 2 MACs


def test_clock_and_wait_state_options_are_checked(tmp_path, capsys):
    assert main(["deploy", str(need(KWS_INT8)), "--out", str(tmp_path / "a"), "--run",
                 "--flash-wait-states", "-1"]) == 2
    assert main(["deploy", str(need(KWS_INT8)), "--out", str(tmp_path / "b"), "--run", "--clock-mhz",
                 "0"]) == 2
    err = capsys.readouterr().err
    assert ("--flash-wait-states -1 is out of range" in err and "--clock-mhz 0" in err
            and "Traceback" not in err)


@arm
def test_trace_counts_what_systick_counts(tmp_path):
    """The trace's instruction count of one inference equals the SysTick count of the same input, to the
    counter's resolution (5 instructions per tick, read twice) plus the few instructions of the call into
    invoke that the SysTick window holds and the trace window leaves out."""
    from tinyopt.export.c import generate_sources, write_library
    from tinyopt.export.c.board import build_m4, run_qemu, trace_cycles
    from tinyopt.graph import load_model

    lib = generate_sources(load_model(need(KWS_INT8)))
    write_library(lib.files, tmp_path / "lib")
    x = np.random.default_rng(5).integers(-128, 128, size=(1, lib.input_bytes), dtype=np.int8)
    m4 = build_m4(tmp_path / "lib", tmp_path / "m4", x)
    _, counts = run_qemu(m4.elf, lib.output_bytes)
    est, order = trace_cycles(m4)
    assert order == [] and abs(est.instructions - int(counts[0])) <= 20
    again, _ = trace_cycles(m4)
    assert (again.instructions, again.cycles) == (est.instructions, est.cycles)  # deterministic


@arm
def test_estimate_graph_gives_cycles_per_node():
    """What analyze's latency can call: a dense layer's estimate, its node's share, without a folder."""
    from test_c_generate import _q

    from tinyopt.export.c.board import estimate_graph
    from tinyopt.export.tflite import single_op_model
    from tinyopt.graph.ir import Tensor

    rng = np.random.default_rng(2)
    w = rng.integers(-127, 128, size=(16, 64), dtype=np.int8)
    g = single_op_model("FULLY_CONNECTED", [Tensor("x", (1, 64), "int8", quant=_q(0.1, 3)),
                                            Tensor("w", w.shape, "int8", data=w, quant=_q(0.01, 0)),
                                            Tensor("b", (16,), "int32", data=np.zeros(16, np.int32),
                                                   quant=_q(0.001, 0))],
                        Tensor("y", (), "int8", quant=_q(0.5, -5)), {"activation": "NONE"})
    est, nodes = estimate_graph(g)
    assert list(nodes) == [0] and est.cycles > est.instructions > 16 * 64 / 2  # an SMLAD per 2 MACs at most
    assert nodes[0]["cycles"] == pytest.approx(est.cycles, abs=20)  # the marked build's one node: all of it
    assert estimate_graph(g)[0].cycles == est.cycles  # seeded: the same estimate again
