"""Compressed outputs (.pt / .topz with a record): rebuilt without being told the model, and convert /
deploy take them as they are; every error on that path exits 2 with one line naming the file and the fix."""

import json
import os
import shutil

import numpy as np
import pytest
import torch
from torch import nn

from tinyopt.cli import main
from tinyopt.compress import CompressionState, Recipe, StepContext, run_recipe
from tinyopt.compress.artifact import load_output, save_output
from tinyopt.errors import ConfigError, ModelFormatError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

NET = '''
from torch import nn


def make(width=6):
    return nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(width * 16, 24), nn.ReLU(), nn.Linear(24, 10))
'''


@pytest.fixture
def work(tmp_path, monkeypatch):
    (tmp_path / "net.py").write_text(NET)
    rng = np.random.default_rng(0)
    x = rng.random((96, 1, 8, 8), dtype=np.float32)
    y = np.arange(96) % 10
    np.savez(tmp_path / "d.npz", x_train=x[:64], y_train=y[:64], x_val=x[64:], y_val=y[64:])
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _recipe(steps: str) -> None:
    with open("r.yaml", "w") as f:
        f.write("seed: 0\nbatch_size: 32\nsteps:\n" + steps)


def _compress(steps: str, out: str, *extra, data="d.npz") -> int:
    _recipe(steps)
    return main(["compress", "net.py:make", "--recipe", "r.yaml", "--data", data, "--out", out,
                 "--no-progress", *extra])


def _bad(capsys, code: int, *words: str) -> str:
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "Fix:" in err and "Traceback" not in err, err
    for w in words:
        assert w in err, err
    return err


def _ctx(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n + 32, 1, 8, 8, generator=g)
    y = torch.arange(n + 32) % 10
    return StepContext(x[:n], y[:n], x[n:], y[n:], seed=0, batch_size=32)


def _net():
    from tinyopt._modelref import ModelRef

    torch.manual_seed(0)
    ref = ModelRef.parse("net.py:make").resolved()
    return ref.build(), CompressionState(ref)


def test_qat_output_converts_bit_exactly_like_the_in_memory_model(work):
    """The rebuilt plain module plus the recorded int8 ranges give the same int8 graph as converting the
    QAT-prepared module itself: every tensor's scale, zero point and constant identical."""
    from tinyopt.convert import convert_torch
    from tinyopt.runtime import Interpreter

    net, state = _net()
    ctx = _ctx()
    r = run_recipe(net, Recipe.from_dict({"steps": [{"quantize": {"mode": "qat", "epochs": 1}}]}), ctx,
                   state=state)
    save_output("q.pt", r.model, r.state, input_shape=(1, 8, 8))
    cm = load_output("q.pt")
    calib = ctx.x_train.numpy()
    ours = cm.int8_graph(np.ascontiguousarray(calib.transpose(0, 2, 3, 1)))
    ref = convert_torch(r.model, calib, (1, 8, 8))
    assert len(cm.fixed_ranges()) >= 4  # input, conv (BN folded, ReLU fused), dense, output ranges kept
    assert [n.op for n in ours.nodes] == [n.op for n in ref.nodes]
    for a, b in zip(ours.nodes, ref.nodes):
        for ta, tb in zip(a.inputs + a.outputs, b.inputs + b.outputs):
            qa, qb = ours.tensors[ta].quant, ref.tensors[tb].quant
            assert np.array_equal(qa.scale, qb.scale) and np.array_equal(qa.zero_point, qb.zero_point), ta
            if ours.tensors[ta].data is not None:
                assert np.array_equal(ours.tensors[ta].data, ref.tensors[tb].data), ta
    x = np.random.default_rng(1).integers(-128, 128, (8, 8, 8, 1), dtype=np.int8)
    assert np.array_equal(Interpreter(ours).run([x])[0], Interpreter(ref).run([x])[0])


def test_edits_replay_on_rebuild(work):
    """fold_bn, low-rank and structured pruning change the architecture; the record replays them and the
    rebuilt model computes exactly what the compressed one does."""
    net, state = _net()
    steps = [{"fold_bn": {}}, {"lowrank": {"ratio": 0.5, "layer_types": ["dense"], "epochs": 0}},
             {"prune": {"method": "structured", "sparsity": 0.5, "epochs": 0}}]
    r = run_recipe(net, Recipe.from_dict({"steps": steps}), _ctx(), state=state)
    assert [next(iter(e)) for e in r.state.edits] == ["fold_bn", "lowrank"]
    for out in ("e.pt", "e.topz"):
        save_output(out, r.model, r.state, input_shape=(1, 8, 8))
        rebuilt = load_output(out).build()
        x = torch.rand(5, 1, 8, 8)
        with torch.no_grad():
            assert torch.equal(rebuilt(x), r.model.eval()(x)), out


def test_deep_compression_container_holds_the_coded_weights(work):
    net, state = _net()
    steps = [{"prune": {"sparsity": 0.6, "epochs": 0}}, {"cluster": {"dense_bits": 3, "epochs": 0}},
             "huffman"]
    r = run_recipe(net, Recipe.from_dict({"steps": steps}), _ctx(), state=state)
    n = save_output("dc.topz", r.model, r.state, input_shape=(1, 8, 8))
    assert n == os.path.getsize("dc.topz")
    rebuilt = load_output("dc.topz").build()
    mine = rebuilt.state_dict()
    assert set(mine) == set(r.model.state_dict())
    for k, a in r.model.state_dict().items():
        assert torch.equal(a, mine[k]), k
    assert len(torch.unique(rebuilt[5].weight)) <= 8  # 3-bit indices: at most 8 shared values


def test_a_weight_changed_after_sharing_is_refused(work):
    net, state = _net()
    steps = [{"cluster": {"dense_bits": 3, "epochs": 0}}, {"finetune": {"epochs": 1}}]
    r = run_recipe(net, Recipe.from_dict({"steps": steps}), _ctx(), state=state)
    with pytest.raises(ConfigError,
                       match="weight changed after weight sharing.*Fix: put the cluster and huffman"):
        save_output("x.topz", r.model, r.state, input_shape=(1, 8, 8))
    assert not os.path.exists("x.topz")


def test_cli_chain_compress_convert_deploy(work, capsys):
    """compress -> convert (no calib: samples of the recorded .npz) -> deploy (a .pt straight to C)."""
    assert _compress("  - quantize: {mode: ptq, calibration_samples: 32}\n", "m.pt") == 0
    assert main(["convert", "m.pt", "--out", "m.tflite"]) == 0
    assert main(["deploy", "m.pt", "--target", "c", "--out", "lib"]) == 0
    assert os.path.isfile("lib/tinyopt_model.c") and os.path.getsize("m.tflite") > 0
    # a compress output is also a MODEL for the next compress run (it says which model it is)
    assert main(["compress", "m.pt", "--recipe", "r.yaml", "--data", "d.npz", "--out", "m2.topz",
                 "--no-progress"]) == 0
    assert load_output("m2.topz").model_ref.source.endswith("net.py:make")


def test_convert_from_another_folder(work, capsys, monkeypatch):
    """Paths in the record are relative to the output's folder: the pair can be used from elsewhere."""
    assert _compress("  - prune: {sparsity: 0.5, epochs: 0}\n", "out/m.pt") == 0
    (work / "elsewhere").mkdir()
    monkeypatch.chdir(work / "elsewhere")
    assert main(["convert", "../out/m.pt", "--out", "m.tflite"]) == 0


# -- errors on the walkthrough path ----------------------------------------------------------------------
def test_compress_errors_name_the_door(work, capsys):
    _recipe("  - prune: {sparsity: 0.5, epochs: 0}\n")
    args = ["--recipe", "r.yaml", "--out", "o.pt", "--no-progress"]
    _bad(capsys, main(["compress", "nope.py:make", "--data", "d.npz", *args]), "nope.py", "file not found")
    _bad(capsys, main(["compress", "net.py:nothere", "--data", "d.npz", *args]), "no callable 'nothere'")
    (work / "boom.py").write_text("def make():\n    raise RuntimeError('no GPU')\n")
    _bad(capsys, main(["compress", "boom.py:make", "--data", "d.npz", *args]), "calling make() failed",
         "no GPU")
    _bad(capsys, main(["compress", "lenett5", "--data", "d.npz", *args]), "did you mean 'lenet5'")
    _bad(capsys, main(["compress", "net.py:make", "--data", "digitz", *args]), "digitz", "not a data source")
    (work / "empty").mkdir()
    _bad(capsys, main(["compress", "net.py:make", "--data", "empty", *args]),
         "no MNIST IDX files, .wav files")
    (work / "log.csv").write_text("a,label\n1,x\n")
    _bad(capsys, main(["compress", "net.py:make", "--data", "log.csv", *args]), "need a window",
         "project file")
    (work / "small.py").write_text("from torch import nn\n\ndef make():\n    return nn.Linear(10, 10)\n")
    _bad(capsys, main(["compress", "small.py:make", "--data", "d.npz", *args]), "d.npz",
         "does not run on the samples")
    (work / "three.py").write_text("from torch import nn\n\ndef make():\n    return "
                                   "nn.Sequential(nn.Flatten(), nn.Linear(64, 3))\n")
    _bad(capsys, main(["compress", "three.py:make", "--data", "d.npz", *args]), "10 classes", "outputs (3,)")
    _bad(capsys,
         main(["compress", "net.py:make", "--data", "d.npz", "--recipe", "r.yaml", "--out", "o.onnx"]),
         "neither .pt nor .topz")
    _bad(capsys, main(["compress", "net.py:make", "--data", "d.npz", *args, "--set", "epochs"]),
         "not KEY=VALUE")
    _bad(capsys, main(["compress", "net.py:make", "--data", "d.npz", *args, "--set", "prnue.epochs=1"]),
         "did you mean 'prune'")
    assert not os.path.exists("o.pt") and not [f for f in os.listdir(".") if f.startswith(".tinyopt-tmp")]


def test_data_in_another_layout_is_refused_not_reshaped(work, capsys):
    rng = np.random.default_rng(0)
    x = rng.random((40, 8, 8, 3), dtype=np.float32)  # channels last, for a model that takes 3 x 8 x 8
    np.savez("hwc.npz", x_train=x[:30], y_train=np.arange(30) % 10, x_val=x[30:], y_val=np.arange(10))
    (work / "rgb.py").write_text("from torch import nn\n\ndef make():\n    m = nn.Sequential(nn.Conv2d(3, 4, "
                                 "3), nn.Flatten(), nn.Linear(144, 10))\n    m.input_shape = (3, "
                                 "8, 8)\n    return m\n")
    _recipe("  - prune: {sparsity: 0.5, epochs: 0}\n")
    err = _bad(capsys,
               main(["compress", "rgb.py:make", "--data", "hwc.npz", "--recipe", "r.yaml", "--out", "o2.pt"]),
               "hwc.npz", "(8, 8, 3)", "(3, 8, 8)")
    assert "reshape" not in err


def test_convert_and_deploy_errors(work, capsys):
    torch.save(nn.Linear(2, 2).state_dict(), "plain.pt")
    for verb in (["convert", "plain.pt", "--out", "m.tflite"], ["deploy", "plain.pt", "--out", "lib"]):
        _bad(capsys, main(verb), "plain.pt", "plain state_dict", "--checkpoint")
    assert _compress("  - prune: {sparsity: 0.5, epochs: 0}\n", "m.pt") == 0
    _bad(capsys, main(["convert", "m.pt", "--checkpoint", "plain.pt", "--out", "m.tflite"]),
         "carries its weights")
    os.rename("d.npz", "moved.npz")  # the recorded calibration data is gone: say so, and what to give
    _bad(capsys, main(["convert", "m.pt", "--out", "m.tflite"]), "m.pt", "is gone", "--calib")
    np.savez("calib.npz", x=np.random.default_rng(0).random((8, 1, 8, 8), dtype=np.float32))
    assert main(["convert", "m.pt", "--calib", "calib.npz", "--out", "m.tflite"]) == 0
    shutil.move("net.py", "net_moved.py")  # the model's own file is gone
    _bad(capsys, main(["convert", "m.pt", "--calib", "calib.npz", "--out", "m2.tflite"]), "net.py",
         "file not found")
    _bad(capsys, main(["deploy", "m.pt", "--out", "lib2"]), "net.py", "file not found")
    assert not os.path.exists("m2.tflite") and not os.path.exists("lib2")


def test_a_changed_model_file_warns_and_a_foreign_record_is_refused(work, capsys):
    assert _compress("  - prune: {sparsity: 0.5, epochs: 0}\n", "m.pt") == 0
    with open("net.py", "a") as f:
        f.write("# edited after compressing\n")
    with pytest.warns(UserWarning, match="net.py changed since the model was compressed"):
        load_output("m.pt").build()
    sd = load_output("m.pt").tensors
    meta = load_output("m.pt").meta | {"format": 99}
    torch.save({"state_dict": sd, "tinyopt": json.dumps(meta)}, "future.pt")
    with pytest.raises(ModelFormatError, match="record format 99"):
        load_output("future.pt")
    _bad(capsys, main(["convert", "future.pt", "--out", "f.tflite"]), "future.pt", "record format 99")
    with open("bad.topz", "wb") as f:
        f.write(b"TOPZ\x02" + b"\x00" * 3)
    _bad(capsys, main(["convert", "bad.topz", "--out", "b.tflite"]), "bad.topz")
