"""``tinyopt deploy``: folder layout, --explain, refusals with exit 2 and one line, --run --json."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from conftest import KWS_INT8, need
from tinyopt.cli import main
from tinyopt.export.tflite import save_tflite, single_op_model
from tinyopt.graph.ir import QuantParams, Tensor


def _q(s, z):
    return QuantParams(np.float32(s), np.asarray(z))


def test_deploy_writes_library_and_explains(tmp_path, capsys):
    out = tmp_path / "kws"
    assert main(["deploy", str(need(KWS_INT8)), "--target", "c", "--out", str(out), "--explain",
                 "--optimize", "speed"]) == 0
    text = capsys.readouterr().out
    assert "arena" in text and "scratch" in text and "steps" in text
    assert "node   0 CONV_2D -> offset 0, in place over its input, rows bottom-up" in text  # see test_c_plan
    assert "node  12 SOFTMAX -> the output slot at offset" in text  # the arena holds the one output
    # the default (balanced) plan streams the convs in 1-row bands (each 5-pixel row's last pixel on the
    # single-pixel loops: within +15 % instructions), each 1x1 conv over its input's rows
    assert main(["deploy", str(need(KWS_INT8)), "--target", "c", "--out", str(out), "--explain"]) == 0
    text = capsys.readouterr().out
    assert "segment 0: nodes 0..9 in bands of 1 output row(s)" in text
    assert ("node   2 CONV_2D -> line buffer 1, streamed (segment 0, bands of 1), in place "
            "over its input's rows" in text)
    names = {p.name for p in out.iterdir()}
    assert {"tinyopt_model.h", "tinyopt_model.c", "examples", "tinyopt_manifest.json"} <= names
    assert (out / "examples" / "main.c").is_file()
    assert main(["deploy", str(KWS_INT8), "--out", str(out)]) == 0  # no --explain: the summary line only
    text = capsys.readouterr().out
    assert "steps" not in text and text.count("\n") == 1 and text.startswith(f"wrote {out} (c): arena ")


def test_unsupported_op_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys):
    g = single_op_model("LOG_SOFTMAX", [Tensor("x", (1, 8), "int8", quant=_q(0.1, 0))],
                        Tensor("y", (), "int8", quant=_q(16 / 256, 127)))  # an int8 op without a C kernel
    model = save_tflite(g, tmp_path / "log_softmax.tflite")
    out = tmp_path / "out"
    assert main(["deploy", str(model), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "node 0" in err and "LOG_SOFTMAX" in err and "Fix:" in err
    assert not out.exists()


def test_existing_foreign_folder_refused_unless_force(tmp_path, capsys):
    out = tmp_path / "project"
    out.mkdir()
    (out / "main.c").write_text("/* the user's code */")
    assert main(["deploy", str(need(KWS_INT8)), "--out", str(out)]) == 2
    assert "not written by tinyopt" in capsys.readouterr().err and (out / "main.c").exists()
    assert main(["deploy", str(need(KWS_INT8)), "--out", str(out), "--force", "--target", "arduino"]) == 0
    assert (out / "library.properties").is_file() and not (out / "main.c").exists()


def test_run_needs_c_target_and_known_device(tmp_path, capsys):
    model = str(need(KWS_INT8))
    assert main(["deploy", model, "--out", str(tmp_path / "a"), "--target", "arduino", "--run"]) == 2
    assert main(["deploy", model, "--out", str(tmp_path / "b"), "--device", "uno", "--run"]) == 2
    err = capsys.readouterr().err
    assert "--target c" in err and "unknown device 'uno'" in err and "mps2-an386" in err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_old_board_flag_still_works_with_a_note(tmp_path, capsys):
    assert main(["deploy", str(need(KWS_INT8)), "--out", str(tmp_path / "b"), "--board", "uno", "--run"]) == 2
    err = capsys.readouterr().err
    assert "--board is deprecated, use --device" in err and "unknown device 'uno'" in err


def test_tflite_target_writes_the_model_file(tmp_path, capsys):
    out = tmp_path / "kws.tflite"
    assert main(["deploy", str(need(KWS_INT8)), "--target", "tflite", "--out", str(out)]) == 0
    assert f"wrote {out} (tflite)" in capsys.readouterr().out
    from tinyopt.graph.tflite_import import load_tflite

    ours, ref = load_tflite(out), load_tflite(KWS_INT8)  # the same operators, tensors and weights back
    assert [n.op for n in ours.nodes] == [n.op for n in ref.nodes]
    for a, b in zip(ours.nodes, ref.nodes):
        for x, y in zip(a.inputs, b.inputs):
            if x and ours.tensors[x].data is not None:
                np.testing.assert_array_equal(ours.tensors[x].data, ref.tensors[y].data)
    assert main(["deploy", str(KWS_INT8), "--target", "tflite", "--out", str(tmp_path / "k.bin")]) == 2
    assert "is not a .tflite path" in capsys.readouterr().err


def test_run_without_qemu_names_the_install_command(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    assert main(["deploy", str(need(KWS_INT8)), "--out", str(tmp_path / "k"), "--run"]) == 2
    err = capsys.readouterr().err
    assert "is not installed" in err and "apt-get install gcc-arm-none-eabi" in err


@pytest.mark.skipif(not (shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")),
                    reason="Cortex-M toolchain or qemu absent (apt-get install gcc-arm-none-eabi "
                           "libnewlib-arm-none-eabi qemu-system-arm)")
def test_run_json_on_mps2(tmp_path, capsys):
    assert main(["deploy", str(need(KWS_INT8)), "--out", str(tmp_path / "k"), "--device", "mps2-an386",
                 "--run", "--json", "--inputs", "5"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["inputs"] == 5 and res["board"] == "mps2-an386"
    assert {"instructions", "macs", "instructions_per_mac", "flash_bytes", "ram_bytes",
            "outputs_match_host"} <= set(res)
    assert res["outputs_match_host"] is True and res["macs"] == 2656768
    assert res["instructions_per_mac"] == round(res["instructions"] / res["macs"], 3)
    assert res["ram_bytes"] == res["arena_bytes"]  # the output lives in the arena: no buffer of the caller's
    assert res["ram_bytes"] < 0.4 * 24272  # TFLM's arena for KWS
    assert res["flash_bytes"] < need(KWS_INT8).stat().st_size
