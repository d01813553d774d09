"""`tinyopt convert`: zoo model + checkpoint, float .tflite and .onnx files → int8 .tflite that TFLM runs
exactly as `tinyopt infer` does; bad calibration data, checkpoints and options exit 2 with one line."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import KWS_FLOAT, need
from tinyopt import zoo
from tinyopt.cli import main
from tinyopt.graph.tflite_import import load_tflite

sys.path.insert(0, str(Path(__file__).parents[1]))
from runtime._reference import run_tflm


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def infer_and_tflm(model: Path, x: np.ndarray, tmp_path, capsys):
    np.save(tmp_path / "in.npy", x)
    code, _, err = run(capsys, "infer", model, "--input", tmp_path / "in.npy",
                       "--output", tmp_path / "out.npy")
    assert code == 0, err
    return np.load(tmp_path / "out.npy"), run_tflm(model.read_bytes(), [x])[0]


@pytest.fixture
def lenet_checkpoint(tmp_path):
    torch.manual_seed(3)
    model = zoo.build("lenet5")
    torch.save(model.state_dict(), tmp_path / "lenet.pt")
    return model, tmp_path / "lenet.pt"


def test_zoo_with_checkpoint(lenet_checkpoint, tmp_path, capsys):
    model, ckpt = lenet_checkpoint
    calib = np.random.default_rng(0).normal(0, 1, (40, 1, 28, 28)).astype(np.float32)  # PyTorch layout
    np.savez(tmp_path / "calib.npz", x=calib)
    out = tmp_path / "lenet_int8.tflite"
    code, stdout, err = run(capsys, "convert", "zoo:lenet5", "--calib", tmp_path / "calib.npz", "--out", out,
                            "--checkpoint", ckpt)
    assert code == 0, err
    assert f"wrote {out}" in stdout
    g = load_tflite(out)
    # The file holds the checkpoint's weights: the first conv, dequantized, is the torch weight in OHWI.
    w = g.tensors[g.nodes[0].inputs[1]]
    deq = w.data.astype(np.float32) * w.quant.scale.reshape(-1, 1, 1, 1)
    ref = model.features[0].weight.detach().numpy().transpose(0, 2, 3, 1)
    assert np.abs(deq - ref).max() <= w.quant.scale.max() / 2 + 1e-7
    x = np.random.default_rng(1).integers(-128, 128, (12, 28, 28, 1)).astype(np.int8)
    ours, ref = infer_and_tflm(out, x, tmp_path, capsys)
    np.testing.assert_array_equal(ours, ref)


def test_float_tflite_to_int8(tmp_path, capsys):
    calib = np.random.default_rng(0).normal(0, 20, (40, 49, 10, 1)).astype(np.float32)
    np.savez(tmp_path / "calib.npz", x=calib)
    out = tmp_path / "kws_int8.tflite"
    code, _, err = run(capsys, "convert", need(KWS_FLOAT), "--calib", tmp_path / "calib.npz", "--out", out)
    assert code == 0, err
    assert {t.dtype for t in load_tflite(out).activations()} == {"int8"}
    x = np.random.default_rng(1).integers(-128, 128, (10, 49, 10, 1)).astype(np.int8)
    ours, ref = infer_and_tflm(out, x, tmp_path, capsys)
    np.testing.assert_array_equal(ours, ref)
    code, _, _ = run(capsys, "check", out)
    assert code == 0
    again = tmp_path / "again.tflite"  # deterministic: the same command gives the same bytes
    assert run(capsys, "convert", KWS_FLOAT, "--calib", tmp_path / "calib.npz", "--out", again)[0] == 0
    assert again.read_bytes() == out.read_bytes()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch's legacy ONNX exporter (no onnxscript here)
def test_onnx_to_int8(tmp_path, capsys):
    torch.manual_seed(4)
    model = zoo.build("lenet5").eval()
    onnx_path = tmp_path / "lenet.onnx"
    torch.onnx.export(model, torch.zeros(1, 1, 28, 28), str(onnx_path), dynamo=False, input_names=["x"],
                      output_names=["y"], opset_version=13)
    calib = np.random.default_rng(0).normal(0, 1, (32, 1, 28, 28)).astype(np.float32)
    np.savez(tmp_path / "calib.npz", x=calib)
    out = tmp_path / "lenet_onnx.tflite"
    code, _, err = run(capsys, "convert", onnx_path, "--calib", tmp_path / "calib.npz", "--out", out,
                       "--io", "float")
    assert code == 0, err
    x = np.random.default_rng(2).normal(0, 1, (6, 28, 28, 1)).astype(np.float32)
    ours, ref = infer_and_tflm(out, x, tmp_path, capsys)
    np.testing.assert_array_equal(ours, ref)
    with torch.no_grad():
        torch_out = model(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
    assert np.abs(ours - torch_out).max() < 0.05 * (torch_out.max() - torch_out.min())


@pytest.mark.parametrize("make,args,fragment", [
    (lambda d: np.savez(d / "c.npz", x=np.zeros((0, 1, 28, 28), np.float32)), [], "calibration set is empty"),
    (lambda d: np.savez(d / "c.npz", x=np.zeros((4, 28, 28), np.float32)), [],
     "calibration samples must have shape"),
    (lambda d: np.savez(d / "c.npz", a=np.zeros(3), b=np.zeros(3)), [], "none named 'x'"),
    (lambda d: (d / "c.npz").write_bytes(b"junk"), [], "not a readable .npz"),
    (lambda d: np.savez(d / "c.npz", x=np.zeros((4, 1, 28, 28), np.float32)), ["--io", "int4"],
     "unknown --io"),
    (lambda d: np.savez(d / "c.npz", x=np.zeros((4, 1, 28, 28), np.float32)), ["--checkpoint", "CKPT"],
     "does not match the architecture"),
])
def test_bad_input_exits_2(make, args, fragment, tmp_path, capsys):
    make(tmp_path)
    torch.save({"nope": torch.zeros(1)}, tmp_path / "bad.pt")
    args = [str(tmp_path / "bad.pt") if a == "CKPT" else a for a in args]
    out = tmp_path / "o.tflite"
    code, _, err = run(capsys, "convert", "zoo:lenet5", "--calib", tmp_path / "c.npz", "--out", out, *args)
    assert code == 2 and err.count("\n") == 1 and fragment in err and "Traceback" not in err
    assert not out.exists()
