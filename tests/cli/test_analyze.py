"""`tinyopt analyze`: the JSON contract, the table, and one-line errors (exit 2) for bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import KWS_INT8, RESNET_INT8, ROOT, need
from tinyopt.cli import main

EXAM = ROOT / "examples" / "specs" / "exam.yaml"
CONTRACT_KEYS = {"params", "macs", "flops", "param_bytes", "largest_activation_bytes", "textbook_total_bytes",
                 "arena_bytes", "flash_bytes", "latency_s", "energy_mj", "fits", "reasons", "layers"}


def run(capsys, *args):
    code = main(list(map(str, args)))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *args):
    code, out, err = run(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def test_exam_json_contract(capsys):
    d = run_json(capsys, "analyze", EXAM, "--device", "exam")
    assert CONTRACT_KEYS <= set(d)
    assert d["params"] == 91203 and d["flops"] == 39_037_824 and d["macs"] == 19_518_912
    assert d["param_bytes"] == 364_812 and d["largest_activation_bytes"] == 1_016_064
    assert d["textbook_total_bytes"] == 1_380_876
    assert d["fits"] is False and isinstance(d["reasons"], list) and d["reasons"]
    assert d["latency_s"] == pytest.approx(3.9037824)
    assert d["energy_mj"] is None  # the exam device has no power figure
    for layer in d["layers"]:
        assert {"name", "type", "output_shape", "params", "macs"} <= set(layer)
    assert [layer["output_shape"] for layer in d["layers"]][:2] == [[126, 126, 16], [63, 63, 16]]


def test_exam_json_int8_textbook(capsys):
    d = run_json(capsys, "analyze", EXAM, "--device", "exam", "--dtype", "int8", "--memory", "textbook")
    assert d["textbook_total_bytes"] == 345_219 and d["fits"] is True      # 337.13 KB ≤ 520 KB
    assert d["latency_s"] == pytest.approx(39_037_824 / 80e6)


def test_json_without_device_has_null_verdict(capsys):
    d = run_json(capsys, "analyze", EXAM)
    assert d["fits"] is None and d["latency_s"] is None and d["reasons"] == []


def test_custom_device_flags(capsys):
    d = run_json(capsys, "analyze", EXAM, "--sram-kb", "2048", "--fp32-flops", "25e6", "--memory", "textbook")
    assert d["fits"] is True and d["device"] == "custom"
    assert d["latency_s"] == pytest.approx(39_037_824 / 25e6)


def test_input_shape_overrides_the_spec(capsys):
    d = run_json(capsys, "analyze", EXAM, "--input-shape", "64,64,1")
    # conv1 on 64×64: 62×62×16 outputs × 9 MACs.
    assert d["layers"][0]["macs"] == 62 * 62 * 16 * 9


def test_table_output(capsys):
    code, out, _ = run(capsys, "analyze", EXAM, "--device", "exam", "--memory", "textbook", "--explain")
    assert code == 0
    assert "KB = 1024 bytes" in out and "DOES NOT FIT" in out and "(3×3×1+1)×16 = 160" in out
    assert "int8: needs RAM 337.13 KB" in out


def test_tflite_model(capsys):
    d = run_json(capsys, "analyze", need(KWS_INT8), "--device", "stm32l4r5")
    assert d["macs"] == 2_656_768 and d["fits"] is True and d["dtype"] == "int8"
    # the board's runtime decides whose arena: CMSIS-NN under TFLM; its head is the 16,000 B plan of the
    # activations, CMSIS-NN's scratch buffers fit in its gaps
    assert d["arena_runtime"] == "cmsis-nn" and d["arena"]["head_bytes"] == 16000
    assert d["arena_bytes"] == d["ram_bytes"] > 16000
    # TFLM's reference kernels: 24,272 B, the smallest arena tflite-micro accepts for this file (DESIGN.md)
    r = run_json(capsys, "analyze", need(KWS_INT8), "--device", "stm32l4r5", "--runtime", "tflm-reference")
    assert r["arena_runtime"] == "tflm-reference" and r["arena_bytes"] == 24_272


def test_verdict_uses_the_chosen_runtimes_arena(capsys):
    """16 KB of SRAM: the C library's arena for KWS fits, TFLM's does not; each verdict says whose arena."""
    from tinyopt.export.c.generate import generate_sources
    from tinyopt.graph.tflite_import import load_tflite

    kws = need(KWS_INT8)
    c = run_json(capsys, "analyze", kws, "--sram-kb", "16", "--runtime", "tinyopt-c")
    t = run_json(capsys, "analyze", kws, "--sram-kb", "16", "--runtime", "tflm")
    # the default (balanced) plan streams the conv stack in 1-row bands (3-row line buffers of 320 B before
    # each depthwise layer), with the 490 B input, the pooling sums, the band's im2col and the output
    assert c["arena_bytes"] == generate_sources(load_tflite(kws)).arena_bytes == 5_228
    # --optimize picks deploy's plan: speed = whole tensors, 8,000 B of 25x5x64 activations overwritten in
    # place + the 490 B input + im2col and output
    s = run_json(capsys, "analyze", kws, "--runtime", "tinyopt-c", "--optimize", "speed")
    assert s["arena_bytes"] == generate_sources(load_tflite(kws), optimize="speed").arena_bytes == 9_216
    assert "(speed plan)" in s["arena"]["basis"] and s["arena"]["optimize"] == "speed"
    assert t["arena_bytes"] == 24_272 and t["arena"]["head_bytes"] + t["arena"]["tail_bytes"] == 24_272
    assert (c["fits"], t["fits"]) == (True, False)
    assert (c["arena_runtime"], t["arena_runtime"]) == ("tinyopt-c", "tflm-reference")
    assert c["reasons"][0].startswith("RAM: tinyopt-c arena needs 5.11 KB")  # 5,228 / 1024
    assert t["reasons"][0].startswith("RAM: tflm-reference arena needs 23.70 KB > 16.00 KB")
    code, out, _ = run(capsys, "analyze", kws, "--sram-kb", "16", "--runtime", "tflm", "--explain")
    assert "(tflm-reference arena): DOES NOT FIT" in out
    assert "tflm-reference arena = smallest arena that takes head, tail" in out  # --explain's sum
    # without --runtime and without a board runtime: TFLM's reference kernels, and the report says so
    d = run_json(capsys, "analyze", kws)
    assert d["arena_runtime"] == "tflm-reference" and "the default" in d["arena"]["basis"]


def test_zoo_reference(capsys):
    pytest.importorskip("torch")
    import torch

    from tinyopt.zoo import build

    d = run_json(capsys, "analyze", "zoo:dscnn")
    assert d["macs"] == 2_656_768  # the same hand count as the MLPerf KWS .tflite
    m = build("dscnn")
    # The PyTorch door folds batch norm into the bias-less convs before it, as an ONNX export does: each BN's
    # gamma and beta (torch parameters) become one bias per channel.
    bn = sum(mod.num_features for mod in m.modules() if isinstance(mod, torch.nn.BatchNorm2d))
    assert d["params"] == sum(p.numel() for p in m.parameters()) - 2 * bn + bn
    # Priced as int8, BN is folded and ReLU fused as a converter does: the zoo DS-CNN then has exactly the
    # parameters, MACs and activation plan (TFLM's head) of MLPerf's int8 KWS .tflite.
    z = run_json(capsys, "analyze", "zoo:dscnn", "--dtype", "int8")
    t = run_json(capsys, "analyze", need(KWS_INT8))
    assert (z["params"], z["macs"], z["arena"]["head_bytes"]) == (t["params"], t["macs"],
                                                                  t["arena"]["head_bytes"])
    assert z["params"] == 22_604 and z["arena"]["head_bytes"] == 16_000
    # The tails differ a little (the MLPerf file carries a RESHAPE shape operand and other tensors):
    # 24,168 B is what tflite-micro needs for the zoo DS-CNN converted by tinyopt, 24,272 B for MLPerf's.
    assert (z["arena_bytes"], t["arena_bytes"]) == (24_168, 24_272)


def test_python_file_reference(tmp_path, capsys):
    pytest.importorskip("torch")
    f = tmp_path / "net.py"
    f.write_text("from torch import nn\n\ndef make():\n    return nn.Sequential(nn.Flatten(), nn.Linear(128, "
                 "64), nn.ReLU(), nn.Linear(64, 10))\n")
    d = run_json(capsys, "analyze", f"{f}:make", "--input-shape", "128")
    assert d["params"] == 8906  # the seeds' transfer head


# -- bad input: one line naming the file, exit 2, no traceback ---------------------------------------


def _bad(capsys, *args, names=None):
    code, out, err = run(capsys, "analyze", *args)
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and not lines[0].startswith("error"), err
    assert "Traceback" not in err and "Fix:" in lines[0]
    if names:
        assert str(names) in lines[0], lines[0]
    return lines[0]


def test_missing_file(tmp_path, capsys):
    _bad(capsys, tmp_path / "nope.yaml", names=tmp_path / "nope.yaml")


def test_empty_file(tmp_path, capsys):
    for suffix in (".yaml", ".tflite", ".onnx"):
        p = tmp_path / f"empty{suffix}"
        p.write_bytes(b"")
        assert "empty" in _bad(capsys, p, names=p)


def test_truncated_tflite(tmp_path, capsys):
    p = tmp_path / "cut.tflite"
    p.write_bytes(need(RESNET_INT8).read_bytes()[:5000])
    _bad(capsys, p, names=p)


def test_corrupt_tflite(tmp_path, capsys):
    p = tmp_path / "junk.tflite"
    p.write_bytes(b"TFL3" + bytes(range(256)) * 8)
    _bad(capsys, p, names=p)


def test_random_bytes_onnx(tmp_path, capsys):
    import numpy as np

    p = tmp_path / "random.onnx"
    p.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    _bad(capsys, p, names=p)


@pytest.mark.parametrize("text,needle", [
    ("input: [8, 8, 1]\nlayers:\n  - {type: conv9d, filters: 4, kernel: 3}\n", "layer 0"),
    ("input: [8, 8, 1]\nlayers:\n  - {type: conv2d, filters: 0, kernel: 3}\n", "layer 0"),
    ("input: [8, 8, 1]\nlayers:\n  - {type: conv2d, filters: -4, kernel: 3}\n", "layer 0"),
    ("input: [8, 8, 1]\nlayers:\n  - {type: conv2d, filters: 4, kernel: 0}\n", "layer 0"),
    ("input: [0, 8, 1]\nlayers:\n  - {type: dense, units: 3}\n", "input"),
    ("input: [-8, 8, 1]\nlayers:\n  - {type: flatten}\n", "input"),
    ("input: [4, 4, 1]\nlayers:\n  - {type: conv2d, filters: 4, kernel: 5}\n", "larger than"),
    ("input: [8, 8, 1]\nlayers:\n  - {type: conv2d, filters: 4, kernel: 3}\n  - {type: maxpool2d, pool: 7}\n",
     "larger than"),
    ("- just\n- a list\n", "not a mapping"),
    ("name: x\ninput: !!python/object/apply:os.system ['echo pwned']\nlayers: []\n", "tag"),
])
def test_bad_yaml(tmp_path, capsys, text, needle):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    line = _bad(capsys, p, names=p)
    assert needle in line


@pytest.mark.parametrize("args,needle", [
    (["--device", "nano34"], "nano33ble"),
    (["--sram-kb", "0"], "--sram-kb"),
    (["--device", "exam", "--sram-kb", "-1"], "--sram-kb"),
    (["--input-shape", "0,4,1"], "--input-shape"),
    (["--input-shape", "a,b"], "--input-shape"),
    (["--dtype", "int4"], "--dtype"),
    (["--memory", "magic"], "--memory"),
    (["--device", "exam", "--runtime", "tvm"], "--runtime"),
    (["--device", "exam", "--runtime", "tinyopt-c"], "--dtype int8"),  # the C library is int8 only
    (["--device", "exam", "--optimize", "ram"], "--runtime tinyopt-c"),  # other runtimes have one plan
    (["--device", "exam", "--runtime", "tinyopt-c", "--optimize", "fast"], "--optimize"),
])
def test_bad_options(capsys, args, needle):
    assert needle in _bad(capsys, EXAM, *args)


def test_bad_python_reference(tmp_path, capsys):
    _bad(capsys, f"{tmp_path / 'none.py'}:make", names=tmp_path / "none.py")
    f = tmp_path / "net.py"
    f.write_text("x = 1\n")
    _bad(capsys, f"{f}:make", names=f)


def test_whole_process_exit_code_and_single_line(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("input: [4, 4, 1]\nlayers:\n  - {type: conv2d, filters: 4, kernel: 5}\n")
    r = subprocess.run([sys.executable, "-c", "from tinyopt.cli import run; run()", "analyze", str(p)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1 and str(p) in r.stderr and "Traceback" not in r.stderr


def test_training_batch_and_plan_flags(capsys):
    one = run_json(capsys, "analyze", EXAM)["training"]["adam"]
    adam = run_json(capsys, "analyze", EXAM, "--train-batch", "32")["training"]["adam"]
    # 4 × 91,203 × 4 B (weights, gradients, 2 Adam states) + every activation × 32 samples.
    assert adam["batch"] == 32 and adam["activations_bytes"] == 32 * one["activations_bytes"]
    assert adam["total_bytes"] == 4 * 364_812 + adam["activations_bytes"]
    code, out, _ = run(capsys, "analyze", EXAM, "--plan")
    assert code == 0 and "Arena plan" in out and "peak 1,270,080 B" in out
    assert "batch size must be a positive integer" in _bad(capsys, EXAM, "--train-batch", "0")


def test_battery_life_flag(capsys):
    d = run_json(capsys, "analyze", need(KWS_INT8), "--device", "stm32l4r5", "--battery-mah", "1000",
                 "--battery-v", "3", "--rate", "1")
    # avg power = E × 1/s + sleep × idle fraction; hours = 1000 mAh × 3 V / avg mW.
    sleep = 0.0023
    avg = d["energy_mj"] + sleep * (1 - d["latency_s"])
    assert d["battery_life_h"] == pytest.approx(3000 / avg)


def test_onnx_model(tmp_path, capsys):
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((4, 1, 3, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(np.zeros(4, np.float32), "b"),
             numpy_helper.from_array(rng.standard_normal((3, 144)).astype(np.float32), "fw"),
             numpy_helper.from_array(np.zeros(3, np.float32), "fb")]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Flatten", ["r"], ["f"], axis=1),
             helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], transB=1)]
    graph = helper.make_graph(nodes, "tiny",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], inits)
    p = tmp_path / "tiny.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), p)
    d = run_json(capsys, "analyze", p)
    # conv (3×3×1+1)×4 = 40, dense (144+1)×3 = 435; MACs 6×6×4×9 = 1,296 + 144×3 = 432.
    assert d["params"] == 475 and d["macs"] == 1728
    assert d["largest_activation_bytes"] == 6 * 6 * 4 * 4  # the conv output, float32


def test_python_tag_is_never_executed(tmp_path, capsys):
    marker = tmp_path / "pwned"
    p = tmp_path / "evil.yaml"
    p.write_text(f"name: x\ninput: !!python/object/apply:os.system ['touch {marker}']\nlayers: []\n")
    assert "tag" in _bad(capsys, p, names=p)
    assert not marker.exists()
