"""Cortex-M4 build under qemu: outputs equal the host build's, instruction counts, sizes; missing tools."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from test_c_generate import CASES, _conv_model, _q, tflm_outputs
from test_c_inplace import random_network

from conftest import RESNET_INT8, need
from tinyopt.errors import ToolchainError
from tinyopt.export.c import generate_sources, write_library
from tinyopt.export.c.board import APT, build_host, build_m4, require, run_host, run_qemu
from tinyopt.export.tflite import graph_to_tflite_bytes, single_op_model
from tinyopt.graph import load_model
from tinyopt.graph.ir import Tensor

HAVE_ARM = shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm") and shutil.which("cc")
arm = pytest.mark.skipif(not HAVE_ARM, reason=f"Cortex-M toolchain or qemu absent: {APT}")


@arm
@pytest.mark.parametrize("path", [RESNET_INT8], ids=["resnet8"])  # KWS runs through the CLI test
def test_m4_outputs_equal_host_and_counts_are_deterministic(path, tmp_path):
    g = load_model(need(path))
    lib = generate_sources(g)
    write_library(lib.files, tmp_path / "lib")
    xs = np.random.default_rng(3).integers(-128, 128, size=(5, lib.input_bytes), dtype=np.int8)
    m4 = build_m4(tmp_path / "lib", tmp_path / "m4", xs)  # -Werror, Cortex-M4F hard float flags
    outs, counts = run_qemu(m4.elf, lib.output_bytes)
    host = run_host(build_host(tmp_path / "lib", tmp_path / "host"), xs, lib.output_bytes)
    assert np.array_equal(outs, host)
    # the library's RAM is its arena (input included) and nothing else: no hidden static state
    assert m4.ram_bytes == lib.arena_bytes
    assert 0 < m4.flash_bytes < path.stat().st_size  # smaller than the .tflite it came from
    # counts vary only with data-dependent branches (clamps, softmax): within 0.1 % of each other
    assert counts.min() > lib.macs / 4 and (counts.max() - counts.min()) < 1e-3 * counts.min()
    _, again = run_qemu(m4.elf, lib.output_bytes)
    assert np.array_equal(counts, again)  # -icount: the same binary counts the same, run after run


def _depthwise_cases(lib, i, p, fused) -> set[str]:
    """The depthwise pair loop's shapes node ``i`` reaches."""
    if not p.ints["dw_pairs"] or i in fused:
        return {"depthwise C"}
    cases = {f"depthwise pairs stride {p.ints['stride_h']}"}  # two output rows per pass
    if p.ints["padding_h"] or p.ints["padding_w"]:
        cases.add("depthwise pairs padded")
    if p.ints["out_h"] % 2:
        cases.add("depthwise pairs lone row")
    if (p.ints["output_activation_min"], p.ints["output_activation_max"]) != (-128, 127):
        cases.add("depthwise pairs narrowed clamp")
    if i in lib.plan.planner.in_place_nodes():
        cases.add("depthwise pairs in place")
    if p.ints["out_w"] > 16:
        cases.add("depthwise pairs spans")
    return cases


def _twin_cases(lib, i, p, fused, kind) -> set[str]:
    """The 2-pixel x 4-filter twin loop's shapes conv node ``i`` reaches."""
    cases = set()
    seg = p.ints["filter_w"] * p.ints["in_c"]
    rows = kind == "im2col" and p.ints["twin_row"] > 0
    cases.add(f"twins {kind}" + (" rows" if rows else ""))
    if rows and p.ints["twin_row"] > seg:
        cases.add("twins rows padded to words")  # zero weights after each row's taps
    if p.ints["out_w"] % 2 and i not in lib.plan.planner.in_place_nodes():
        cases.add("twins pairs across rows")
    if (kind == "1x1" and p.ints["out_c"] % 4 == 0 and i not in fused
            and p.ints["out_w"] * p.ints["out_h"] > 2):
        cases.add("twins 1x1 row routine")  # the routine widens and walks the row's pixel pairs
    if p.ints["row_pairs"] and i in lib.plan.planner.in_place_nodes():
        cases.add("twins two rows in place")  # odd rows: two at a time in a 2-row scratch
    cases.add(f"twins entry {(p.ints['patch'] // 4) % 8}")  # where the unrolled block loop starts
    if p.ints["out_c"] % 4:
        cases.add("twins partial group")
    if (p.ints["output_activation_min"], p.ints["output_activation_max"]) != (-128, 127):
        cases.add("twins narrowed clamp")
    if i in fused:
        cases.add("twins fused ADD")
    if p.ints["out_w"] % 2:
        cases.add("twins lone pixel")
    if i in lib.plan.planner.in_place_nodes():
        cases.add(f"twins {kind} in place")
    if rows and (p.ints["padding_h"] or p.ints["padding_w"]):
        cases.add("twins rows padded")
    return cases


def _asm_cases(lib) -> set[str]:
    """Which shapes of the packed-requantization M4 loop a library's conv layers reach."""
    fused = {lib.plan.schedule.orig[k] for k in lib.plan.schedule.fused}
    cases = set()
    for i, p in lib.prepared.items():
        if p.kind == "depthwise_conv2d":
            cases |= _depthwise_cases(lib, i, p, fused)
        if p.kind != "conv2d":
            continue
        kind = "1x1" if p.ints["filter_h"] == p.ints["filter_w"] == 1 else "im2col"
        if "wpairs" in p.arrays:  # the 2-pixel x 4-filter twin loop
            cases |= _twin_cases(lib, i, p, fused, kind)
            continue
        if "rq" not in p.arrays:
            cases.add(f"{kind} C requantization")  # the asm filter-pair loop, requantized in C
            continue
        if i in fused:
            cases.add("conv with fused ADD")  # outputs through a stack buffer, then added
        if (p.ints["patch"] // 4) % 2:
            cases.add(f"{kind} odd blocks")  # the unrolled loop's one-block entry
        if p.ints["out_w"] % 2:
            cases.add(f"{kind} lone pixel")  # paired with itself, both stores to one place
        if i in lib.plan.planner.in_place_nodes():
            cases.add(f"{kind} in place")
    return cases


@arm
def test_m4_asm_paths_on_random_networks(tmp_path):
    """The M4 conv and depthwise loops on shapes the MLPerf models lack (odd 4-value block counts, lone last
    pixels of odd-width rows and pairs across row ends, 1x1 layers run in place as one long row, patch
    rows padded to words, stride 2, padding, fused ADDs and narrowed clamps beside them): the M4 outputs
    equal the host build's, which test_c_inplace checks against TFLM on the same networks. Gathered
    (dilated) patches: test_m4_single_layers_equal_tflm."""
    seen = set()
    for seed in (2, 20, 28, 58, 83):
        g = random_network(seed)
        lib = generate_sources(g)
        seen |= _asm_cases(lib)
        write_library(lib.files, tmp_path / f"lib{seed}")
        xs = np.random.default_rng(seed).integers(-128, 128, size=(5, lib.input_bytes), dtype=np.int8)
        m4 = build_m4(tmp_path / f"lib{seed}", tmp_path / f"m4-{seed}", xs)
        outs, _ = run_qemu(m4.elf, lib.output_bytes)
        host = run_host(build_host(tmp_path / f"lib{seed}", tmp_path / f"host{seed}"), xs, lib.output_bytes)
        assert np.array_equal(outs, host), seed
    assert {"twins 1x1", "twins im2col rows", "twins rows padded", "twins partial group",
            "twins rows padded to words", "twins pairs across rows",
            "twins narrowed clamp", "twins fused ADD", "twins lone pixel", "twins 1x1 in place",
            "twins im2col in place", "twins two rows in place", "twins 1x1 row routine",
            "depthwise pairs stride 1", "depthwise pairs stride 2", "depthwise pairs padded",
            "depthwise pairs lone row", "depthwise pairs narrowed clamp", "depthwise pairs in place",
            "depthwise C"} <= seen, seen
    assert len({c for c in seen if c.startswith("twins entry")}) >= 5, seen  # the rest: test_m4_twin_entries


@arm
@pytest.mark.parametrize("case", ["conv-5x2-valid-dil2", "conv-1x1", "dw-3x3-s2", "avg-pool-partial",
                                  "dense-odd-blocks"])
def test_m4_single_layers_equal_tflm(case, tmp_path):
    """Single layers through the M4 paths, against TFLM directly: a dilated strided conv (partly padded
    patch rows), a 1x1 conv over 9 channels (a zero-padded 12-value patch), a strided 3x3 depthwise
    (packed requantization), an average pool whose windows hold 4, 6 or 9 values (16-bit lanes), and a
    dense layer whose 20 inputs make an odd number of 4-value blocks."""
    if case == "dense-odd-blocks":  # 20 inputs = 5 blocks of 4 (the one-block entry), 6 filters = 3 pairs
        rng = np.random.default_rng(11)
        w = rng.integers(-127, 128, size=(6, 20), dtype=np.int8)
        g = single_op_model("FULLY_CONNECTED", [Tensor("x", (1, 20), "int8", quant=_q(0.1, 3)),
                                                Tensor("w", w.shape, "int8", data=w, quant=_q(0.01, 0)),
                                                Tensor("b", (6,), "int32",
                                                       data=np.arange(6, dtype=np.int32) * 40 - 100,
                                                       quant=_q(0.001, 0))],
                            Tensor("y", (), "int8", quant=_q(0.5, -5)), {"activation": "NONE"})
    elif case == "avg-pool-partial":
        q = _q(0.1, 3)
        g = single_op_model("AVERAGE_POOL_2D", [Tensor("x", (1, 5, 6, 8), "int8", quant=q)],
                            Tensor("y", (), "int8", quant=q),
                            {"filter": (3, 3), "stride": (2, 2), "padding": "SAME", "activation": "NONE"})
    else:
        op, x_shape, kernel, out_c, attrs = CASES[case]
        g = _conv_model(op, x_shape, kernel, out_c, attrs, seed=len(case))
    lib = generate_sources(g)
    write_library(lib.files, tmp_path / "lib")
    xs = np.random.default_rng(7).integers(-128, 128, size=(6, lib.input_bytes), dtype=np.int8)
    m4 = build_m4(tmp_path / "lib", tmp_path / "m4", xs)
    outs, _ = run_qemu(m4.elf, lib.output_bytes)
    assert np.array_equal(outs, tflm_outputs(graph_to_tflite_bytes(g), xs).reshape(outs.shape))


@arm
@pytest.mark.parametrize("case",
                         ["max-pool-tail-relu6", "max-pool-words", "add-first-scaled", "add-second-scaled",
                          "add-relu"])
def test_m4_pool_and_add_paths_equal_tflm(case, tmp_path):
    """Max pool on 4 channels per word (SSUB8/SEL) with a 2-channel tail and a RELU6 clamp, and without
    either (SAME windows clipped at the border); ADD's Cortex-M4 loop with the larger input scale on
    either side (TFLM gives that input the exact multiplier 2^30, shift 0), and a RELU ADD (the C loop)."""
    if case.startswith("max-pool"):
        c, act = (10, "RELU6") if "tail" in case else (8, "NONE")
        q = _q(0.05, -7)
        g = single_op_model("MAX_POOL_2D", [Tensor("x", (1, 7, 6, c), "int8", quant=q)],
                            Tensor("y", (), "int8", quant=q),
                            {"filter": (3, 2), "stride": (2, 2), "padding": "SAME", "activation": act})
    else:
        s1, s2 = (0.09, 0.05) if case == "add-first-scaled" else (0.04, 0.07)
        g = single_op_model("ADD", [Tensor("a", (1, 5, 3, 8), "int8", quant=_q(s1, 9)),
                                    Tensor("b", (1, 5, 3, 8), "int8", quant=_q(s2, -13))],
                            Tensor("y", (), "int8", quant=_q(0.11, 3)),
                            {"activation": "RELU" if case == "add-relu" else "NONE"})
    lib = generate_sources(g)
    if case in ("add-first-scaled", "add-second-scaled"):  # the M4 loop's pattern, on the side named
        k = "input1" if case == "add-first-scaled" else "input2"
        assert lib.prepared[0].ints[f"{k}_multiplier"] == 1 << 30 and lib.prepared[0].ints[f"{k}_shift"] == 0
    write_library(lib.files, tmp_path / "lib")
    xs = np.random.default_rng(13).integers(-128, 128, size=(6, lib.input_bytes), dtype=np.int8)
    outs, _ = run_qemu(build_m4(tmp_path / "lib", tmp_path / "m4", xs).elf, lib.output_bytes)
    ref = (tflm_outputs(graph_to_tflite_bytes(g), xs) if case.startswith("max-pool")
           else tflm_two_inputs(g, xs))
    assert np.array_equal(outs, ref.reshape(outs.shape))


def tflm_two_inputs(g, xs: np.ndarray) -> np.ndarray:
    """TFLM on a two-input model, each row of xs holding both inputs back to back."""
    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(graph_to_tflite_bytes(g))
    a, b = (g.tensors[t] for t in g.inputs)
    out = []
    for x in xs:
        interp.set_input(x[:a.size].reshape(a.shape), 0)
        interp.set_input(x[a.size:].reshape(b.shape), 1)
        interp.invoke()
        out.append(interp.get_output(0).reshape(-1).copy())
    return np.stack(out)


@arm
@pytest.mark.parametrize("case",
                         [((1, 9, 37, 8), (2, 2), "SAME", "RELU6"), ((1, 24, 20, 12), (1, 1), "SAME", "NONE"),
                          ((1, 11, 6, 4), (2, 1), "VALID", "RELU"), ((1, 3, 3, 16), (1, 1), "SAME", "NONE")],
                         ids=["s2-spans-relu6", "s1-spans", "s2-rows-only-valid", "3x3-image"])
def test_m4_depthwise_pairs_equal_tflm(case, tmp_path):
    """3x3 depthwise layers through the M4 pair loop (two output rows per pass, a band of input words per
    group of 4 channels): rows wider than one 16-column span (out_w 19 and 20), stride 2 across and down,
    stride 2 down only, an odd row count (the lone last row), VALID and SAME padding, clamps narrowed by
    RELU and RELU6, a 3x3 image whose every pixel touches the padding."""
    x_shape, stride, pad, act = case
    g = _conv_model("DEPTHWISE_CONV_2D", x_shape, (3, 3), x_shape[-1],
                    {"stride": stride, "padding": pad, "activation": act, "depth_multiplier": 1},
                    seed=x_shape[2])
    lib = generate_sources(g)
    assert lib.prepared[0].ints["dw_pairs"] == 1
    write_library(lib.files, tmp_path / "lib")
    xs = np.random.default_rng(9).integers(-128, 128, size=(4, lib.input_bytes), dtype=np.int8)
    outs, _ = run_qemu(build_m4(tmp_path / "lib", tmp_path / "m4", xs).elf, lib.output_bytes)
    assert np.array_equal(outs, tflm_outputs(graph_to_tflite_bytes(g), xs).reshape(outs.shape))


@arm
@pytest.mark.parametrize("in_c,out_c", [(32, 12), (16, 8), (20, 9), (48, 4)])
def test_m4_twin_entries_equal_tflm(in_c, out_c, tmp_path):
    """1x1 convs whose patches are 8, 4, 5 and 12 blocks of 4 values: the twin loop (unrolled 8 blocks)
    entered at block 0, 4, 3 and 4 (12 blocks: a half pass, then a whole one); 9 filters end in a
    group of 1."""
    g = _conv_model("CONV_2D", (1, 3, 5, in_c), (1, 1), out_c, {"stride": (1, 1), "padding": "VALID",
                                                               "activation": "NONE"}, seed=in_c + out_c)
    lib = generate_sources(g)
    assert "wpairs" in lib.prepared[0].arrays
    write_library(lib.files, tmp_path / "lib")
    xs = np.random.default_rng(5).integers(-128, 128, size=(4, lib.input_bytes), dtype=np.int8)
    outs, _ = run_qemu(build_m4(tmp_path / "lib", tmp_path / "m4", xs).elf, lib.output_bytes)
    assert np.array_equal(outs, tflm_outputs(graph_to_tflite_bytes(g), xs).reshape(outs.shape))


@arm
def test_profile_splits_the_count_by_node(tmp_path):
    """--profile's per-node counts (traced, the marks not charged) add up to the unmarked total and put
    the MACs where the model has them."""
    from tinyopt.cli.deploy import run_on_board

    g = random_network(16)  # conv 3x3 / 1x1 pairs
    lib = generate_sources(g)
    write_library(lib.files, tmp_path / "lib")
    res = run_on_board(lib, tmp_path / "lib", "mps2-an386", n_inputs=1, profile=True)
    nodes = res["nodes"]
    assert [r["node"] for r in nodes] == [i for i, p in lib.prepared.items() if p.kind != "reshape"]
    total = sum(r["instructions"] for r in nodes)
    # each mark's call site (a MOVS and a BL) stays with its node; SysTick's resolution is 5 instructions
    assert abs(total - res["instructions"]) <= 20 + 2 * len(nodes), (total, res["instructions"])
    assert all(r["cycles"] >= r["instructions"] for r in nodes)
    assert sum(r["macs"] for r in nodes) == lib.macs
    assert all(r["instructions"] >= r["macs"] / 2 for r in nodes)  # an SMLAD does at most 2 MACs


def test_missing_tool_names_the_install_command(monkeypatch):
    monkeypatch.setenv("PATH", "")
    with pytest.raises(ToolchainError) as e:
        require("qemu-system-arm")
    msg = str(e.value)
    assert "'qemu-system-arm' is not installed" in msg and "apt-get install" in msg and "\n" not in msg


@pytest.mark.skipif(shutil.which("cc") is None, reason="no host C compiler (cc)")
def test_failed_compilation_is_a_toolchain_error(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "broken.c").write_text("int f(void) { return undefined_name; }\n")
    (tmp_path / "main.c").write_text("int main(void) { return 0; }\n")
    with pytest.raises(ToolchainError, match="host compilation failed: .*undefined_name"):
        build_host(tmp_path / "lib", tmp_path / "exe", main_c=tmp_path / "main.c")
