"""bench/deploy_vs_cmsisnn.py: the CMSIS-NN side is planned as TFLM plans it and calls what TFLM calls; the
flash reader; end to end against TFLM when a CMSIS-NN tree is given (``CMSIS_NN_DIR``)."""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import KWS_INT8, ROOT, need

sys.path.insert(0, str(ROOT / "bench"))
import deploy_vs_cmsisnn as bench


def test_harness_arena_is_tflms_head_and_calls_what_tflm_calls():
    from tinyopt.graph import load_model

    path = need(KWS_INT8)
    g = load_model(path)
    head, tail = bench.tflm_arena_parts(path.read_bytes())
    files, info = bench.harness(g, {})  # no scratch: the tensors alone, as TFLM's reference kernels need
    assert info["head"] == head == 16000 and tail > 0
    model = files["cmsisnn_model.c"]
    assert f"static int8_t arena[{head}]" in model
    calls = re.findall(r"\b(arm_\w+_s8)\(", model)
    assert calls == ["arm_convolve_wrapper_s8"] + ["arm_depthwise_conv_wrapper_s8",
                                                   "arm_convolve_wrapper_s8"] * 4 \
        + ["arm_avgpool_s8", "arm_fully_connected_wrapper_s8", "arm_softmax_s8"]
    assert model.count("memcpy(") == 3  # the input, the RESHAPE between two arena tensors, the output
    # a scratch buffer is planned alive only during its layer: a big one for node 0 raises the head
    _, bigger = bench.harness(g, {0: 20000})
    assert bigger["head"] > head and bigger["scratch"] == {0: 20000}
    probe = bench.harness(g, None)[0]["probe.c"]
    assert probe.count("arm_convolve_wrapper_s8_get_buffer_size") == 5
    assert probe.count("arm_depthwise_conv_wrapper_s8_get_buffer_size") == 4


MAP = """\
Discarded input sections

 .text.unused   0x00000000       0x40 /b/lib.a(gone.o)

Linker script and memory map

.text           0x00000000     0x1000
 *(.text*)
 .text          0x00000000       0x58 /b/startup.o
 .text.arm_convolve_s8
                0x00000058      0x1a4 /b/libcmsisnn.a(arm_convolve_s8.o)
 .rodata.w0     0x000001fc       0x20 /b/cmsisnn_model.o
 .rodata        0x0000021c       0x10 /b/libc.a(lib_a-memcpy.o)
"""


def test_kept_flash_counts_what_the_linker_kept(tmp_path):
    (tmp_path / "f.map").write_text(MAP)
    keep = lambda o: "libcmsisnn.a(" in o or o.endswith("cmsisnn_model.o")  # noqa: E731
    assert bench.kept_flash(tmp_path / "f.map", keep) == 0x1A4 + 0x20  # the discarded 0x40 is not counted


CMSIS = os.environ.get("CMSIS_NN_DIR")


@pytest.mark.skipif(not CMSIS, reason="set CMSIS_NN_DIR to a CMSIS-NN source tree (fetched outside the repo)")
@pytest.mark.skipif(not shutil.which("qemu-system-arm"), reason="qemu-system-arm absent")
def test_both_sides_equal_tflm_on_a_small_model(tmp_path):
    from tinyopt.export.tflite import graph_to_tflite_bytes

    g = bench.zoo_graph("digits_cnn")
    xs = np.random.default_rng(1).integers(-128, 128, size=(2, g.tensors[g.inputs[0]].size), dtype=np.int8)
    lib = bench.build_cmsis_nn(Path(CMSIS), tmp_path)
    r = bench.measure("digits_cnn", g, graph_to_tflite_bytes(g), xs, Path(CMSIS), lib, tmp_path / "m")
    assert r["peer"] == "TFLM" and r["ours_equal"] == r["cmsis_equal"] == 2
    assert r["cmsis_instr"] < r["cmsis_cycles"] and r["ours_instr"] < r["ours_cycles"]
    assert sum(c[1] for c in (row["cmsis"] for row in r["layers"])
               if c) == pytest.approx(r["cmsis_cycles"], rel=0.01)


def test_op_table_sets_a_fused_conv_against_conv_plus_add():
    rows = [{"model": "m", "ours_cycles": 100, "layers": [
        {"node": 0, "op": "CONV_2D", "macs": 10, "ours": (5, 60), "cmsis": (9, 90), "fused_into": None},
        {"node": 1, "op": "CONV_2D", "macs": 10, "ours": (5, 40), "cmsis": (9, 80), "fused_into": None},
        {"node": 2, "op": "ADD", "macs": 0, "ours": None, "cmsis": (9, 30), "fused_into": 1}]}]
    table = bench.op_table(rows)
    # our conv 1 with its ADD (40 cycles) against their conv 1 and ADD 2 (80 + 30): 2.75x; conv 0 alone 1.50x
    assert "| m | CONV_2D + ADD | 1 | 10 | 40 | 40.0 % | 110 | 2.75x |" in table
    assert "| m | CONV_2D | 1 | 10 | 60 | 60.0 % | 90 | 1.50x |" in table


def test_mean_over_the_one_long_axis_of_a_1d_model():
    """cnn1d's global average reduces axis 2 of a (1, 1, L, C) tensor: the same per-channel mean over all
    spatial positions as axes [1, 2], which the CMSIS-NN side writes as a plain loop (TFLM's reference
    MEAN)."""
    g = bench.zoo_graph("cnn1d")
    mean = [n for n in g.nodes if n.op == "MEAN"]
    assert mean and g.tensors[mean[0].inputs[0]].shape[1] == 1
    files, _ = bench.harness(g, {})
    assert files["cmsisnn_model.c"].count("arm_nn_requantize(sum") == 1
