"""``tinyopt.convert`` on a module built on the spot (its int8 model runs in TFLM exactly as in our
runtime, and stays close to PyTorch's float outputs) and ``tinyopt.compress`` by recipe on in-memory data."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import tinyopt
from tinyopt.errors import ConfigError, DataError

sys.path.insert(0, str(Path(__file__).parents[1]))
from runtime._reference import run_tflm

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def net_and_data():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                              torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(4 * 3 * 3, 3)).eval()
    x = np.random.default_rng(0).uniform(-1, 1, (64, 1, 8, 8)).astype(np.float32)
    return net, x


def test_convert_module_on_the_spot(tmp_path):
    net, x = net_and_data()
    int8 = tinyopt.convert(net, calib=x, example_input=torch.zeros(1, 1, 8, 8))
    assert int8.dtype == "int8" and int8.inputs[0]["shape"] == [8, 8, 1] and int8.inputs[0]["dtype"] == "int8"
    out = tinyopt.deploy(int8, target="tflite", out=tmp_path / "net.tflite").out
    t = int8.graph.tensors[int8.graph.inputs[0]]
    q = np.clip(np.round(x[:16].transpose(0, 2, 3, 1) / t.quant.scale[0]) + t.quant.zero_point[0], -128, 127)
    q = q.astype(np.int8)
    ours = tinyopt.infer(int8, q)
    np.testing.assert_array_equal(ours, run_tflm(out.read_bytes(), [q])[0])  # bit-exact with TFLM
    o = int8.graph.tensors[int8.graph.outputs[0]].quant
    deq = (ours.astype(np.float32) - o.zero_point[0]) * o.scale[0]
    with torch.no_grad():
        ref = net(torch.from_numpy(x[:16])).numpy()
    assert np.abs(deq - ref).max() < 0.05 * (ref.max() - ref.min())  # int8 close to float


def test_convert_refuses_wrong_layout_and_bad_options(tmp_path):
    net, x = net_and_data()
    shape = torch.zeros(1, 1, 8, 8)
    with pytest.raises(DataError, match=r"np.transpose\(x, \(0, 3, 1, 2\)\)"):
        tinyopt.convert(net, calib=x.transpose(0, 2, 3, 1), example_input=shape)
    with pytest.raises(ConfigError, match="unknown --io"):
        tinyopt.convert(net, calib=x, example_input=shape, io="int4")
    np.savez(tmp_path / "calib.npz", x=x)  # a path works as well as an array, with the same result
    a = tinyopt.convert(net, calib=tmp_path / "calib.npz", example_input=shape)
    b = tinyopt.convert(net, calib=x, example_input=shape)
    tinyopt.deploy(a, target="tflite", out=tmp_path / "a.tflite")
    tinyopt.deploy(b, target="tflite", out=tmp_path / "b.tflite")
    assert (tmp_path / "a.tflite").read_bytes() == (tmp_path / "b.tflite").read_bytes()
    with pytest.raises(ConfigError, match="no weights"):
        tinyopt.convert(Path(__file__).parents[2] / "examples" / "specs" / "exam.yaml", calib=x)


def test_compress_by_recipe_then_convert():
    net, x = net_and_data()
    y = torch.from_numpy((x[:, 0, :4, :4].mean((1, 2)) > 0).astype(np.int64) + (x[:, 0].std((1, 2)) > 0.58))
    data = {"x_train": x[:48], "y_train": y[:48], "x_val": x[48:], "y_val": y[48:]}
    rows = []
    res = tinyopt.compress(net, {"seed": 0, "batch_size": 16, "steps": [{"finetune": {"epochs": 1}}]}, data,
                           on_row=rows.append)  # a bare module: the data give its input shape
    assert [r.step for r in res.rows] == [r.step for r in rows] and len(res.rows) == 2
    # non-zero parameters: conv 4x9+4, BN 4 scales (its 4 biases start at 0), dense 36x3+3 = 155
    assert res.rows[0].step == "input" and res.rows[0].params == 40 + 4 + 111
    assert res.rows[0].macs == 6 * 6 * 4 * 9 + 36 * 3  # conv 1,296 + dense 108
    assert "compression by step" in repr(res) and res.to_dict()["recipe"]["seed"] == 0
    int8 = tinyopt.convert(res, calib=x)  # compress's result goes straight on
    assert int8.dtype == "int8"
    with pytest.raises(DataError, match="x_val"):
        tinyopt.compress(net, {"steps": ["finetune"]}, {"x_train": x, "y_train": y})
    exam = Path(__file__).parents[2] / "examples" / "specs" / "exam.yaml"
    with pytest.raises(ConfigError, match="PyTorch models"):
        tinyopt.compress(tinyopt.load(exam), {"steps": ["finetune"]}, data)
    with pytest.raises(ConfigError, match="is not a model tinyopt compress takes"):
        tinyopt.compress(str(exam), {"steps": ["finetune"]}, data)


def test_compress_a_factory_on_digits_saves_what_load_and_convert_rebuild(tmp_path):
    pytest.importorskip("sklearn")
    (tmp_path / "net.py").write_text(
        "import torch\n\n"
        "def make():\n"
        "    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 16), torch.nn.ReLU(),\n"
        "                               torch.nn.Linear(16, 10))\n")
    ref = f"{tmp_path / 'net.py'}:make"
    recipe = {"seed": 0, "batch_size": 64, "steps": [{"finetune": {"epochs": 1}}]}
    res = tinyopt.compress(ref, recipe, "digits")  # the digits give the input shape: (1, 8, 8)
    again = tinyopt.compress(ref, recipe, "digits")
    assert [r.accuracy for r in res.rows] == [r.accuracy for r in again.rows]  # seeded: the same run
    assert res.rows[0].macs == 64 * 16 + 16 * 10 and res.state.model_ref.label == "net.py:make"
    out = tmp_path / "net.pt"
    assert res.save(out) == out.stat().st_size
    back = tinyopt.load(out)  # rebuilt from the record, without restating the model
    x = np.random.default_rng(0).uniform(0, 16, (4, 1, 8, 8)).astype(np.float32)
    with torch.no_grad():
        a, b = back.module(torch.from_numpy(x)).numpy(), res.model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    assert tinyopt.convert(out).dtype == "int8"  # calibration from the recorded data
