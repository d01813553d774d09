"""Deploying a compressed model keeps its encoding (issue #17): ``tinyopt compress`` writes a ``.topz``
(pruned, shared weights) or ``.pt`` (4-bit weights); ``tinyopt.deploy`` of that file stores the weights in
the C library and the ``.tflite``, equal to the numpy runtime and to TFLM; ``analyze`` counts the flash the
library uses; ``deploy --explain`` lists each layer's encoding, bytes and instructions."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

import tinyopt
from runtime._reference import run_tflm
from tinyopt.cli import main
from tinyopt.export.c import compressed
from tinyopt.zoo import build

pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.skipif(shutil.which("cc") is None, reason="no host C compiler (cc)")]

RECIPES = {
    "shared.topz": {"seed": 0, "batch_size": 32, "steps": [
        {"prune": {"layers": {"features.0": 0.3, "features.3": 0.8, "classifier.0": 0.7}, "epochs": 1}},
        {"cluster": {"conv_bits": 4, "dense_bits": 4, "epochs": 1}},
        {"huffman": {}}]},
    "int4.pt": {"seed": 0, "batch_size": 32, "steps": [
        {"quantize": {"mode": "qat", "weight_bits": 4, "epochs": 1, "calibration_samples": 64}}]},
}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("compressed")
    rng = np.random.default_rng(0)
    x = rng.random((160, 1, 8, 8)).astype(np.float32)
    top = x[:, 0, :4].mean((1, 2)) > x[:, 0, 4:].mean((1, 2))
    y = top.astype(np.int64) + 2 * (x[:, 0, :, :4].mean((1, 2)) > 0.5)
    np.savez(tmp / "d.npz", x_train=x[:128], y_train=y[:128], x_val=x[128:], y_val=y[128:])
    torch.manual_seed(0)
    torch.save(build("digits_cnn").state_dict(), tmp / "c.pt")
    for out, recipe in RECIPES.items():
        run = tinyopt.compress("zoo:digits_cnn", recipe, str(tmp / "d.npz"), checkpoint=str(tmp / "c.pt"))
        run.save(tmp / out)
    return tmp


@pytest.mark.parametrize("name", list(RECIPES))
def test_deployed_library_keeps_the_encoding_and_equals_the_runtime(files, name, tmp_path):
    from tinyopt.export.c.board import build_host, run_host

    dep = tinyopt.deploy(str(files / name), target="c", out=tmp_path / "lib", max_slowdown=5.0)
    graph = dep.graph
    assert compressed.is_compressed(graph)
    entries = {p.entry for p in dep.library.prepared.values()}
    assert any(e.startswith(("cconv_", "cfc_")) for e in entries) and "conv2d" not in entries
    rows = compressed.weight_table(graph, 5.0)
    assert sum(r["weight_bytes"] for r in rows) < sum(r["int8_bytes"] for r in rows)
    x = np.random.default_rng(1).integers(-128, 128, (12, 8, 8, 1), dtype=np.int8)
    exe = build_host(tmp_path / "lib", tmp_path / "exe")
    ours = run_host(exe, x.reshape(12, -1), dep.library.output_bytes)
    np.testing.assert_array_equal(ours, tinyopt.infer(tinyopt.convert(str(files / name)), x).reshape(12, -1))
    text = dep.explain()
    assert "weights in flash" in text and "estimated instructions" in text
    for r in rows:
        assert f"{r['weight_bytes']:,}" in text


@pytest.mark.parametrize("name", list(RECIPES))
def test_deployed_tflite_is_smaller_and_equals_tflm(files, name, tmp_path):
    dep = tinyopt.deploy(str(files / name), target="tflite", out=tmp_path / "m.tflite")
    plain = tinyopt.convert(str(files / name))
    for t in plain.graph.tensors.values():
        t.encoding = None
    dense = tinyopt.deploy(plain, target="tflite", out=tmp_path / "d.tflite")
    assert dep.nbytes < dense.nbytes
    x = np.random.default_rng(2).integers(-128, 128, (10, 8, 8, 1), dtype=np.int8)
    np.testing.assert_array_equal(run_tflm((tmp_path / "m.tflite").read_bytes(), [x])[0],
                                  tinyopt.infer(tmp_path / "m.tflite", x))
    back = tinyopt.load(tmp_path / "m.tflite").graph
    assert compressed.is_compressed(back)  # the file's INT4 / lookup-table weights are read as encoded


def test_analyze_counts_the_flash_the_library_uses(files):
    path = str(files / "shared.topz")
    c = tinyopt.analyze(path, runtime="tinyopt-c", dtype="int8").to_dict()["flash_breakdown"]
    t = tinyopt.analyze(path, runtime="tflm-reference", dtype="int8").to_dict()["flash_breakdown"]
    graph = tinyopt.convert(path).graph
    layouts = compressed.flash_bytes(graph)
    biases = sum(graph.tensors[n.inputs[2]].nbytes for n in graph.nodes if len(n.inputs) > 2 and n.inputs[2])
    assert c["weights"] == layouts["weights"] + biases
    assert "C library" in c["weights_stored_as"] and "TFLM" in t["weights_stored_as"]
    assert c["weights"] <= layouts["int8_weights"] + biases  # within the default budget: maybe not smallest
    assert t["weights"] < layouts["int8_weights"] + biases  # the .tflite's lookup tables


def test_cli_deploy_explain_and_refusal(files, tmp_path, capfd):
    assert main(["deploy", str(files / "shared.topz"), "--target", "c", "--out", str(tmp_path / "lib"),
                 "--explain", "--max-slowdown", "4"]) == 0
    out = capfd.readouterr().out
    assert "weights in flash" in out and "codebook indices" in out
    assert main(["deploy", str(files / "shared.topz"), "--target", "c", "--out", str(tmp_path / "bad"),
                 "--max-slowdown", "0.5"]) == 2
    err = capfd.readouterr().err
    assert "max-slowdown" in err and "Traceback" not in err
    assert not (tmp_path / "bad").exists()
