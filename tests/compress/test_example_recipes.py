"""Every recipe in examples/recipes/ runs through ``tinyopt compress`` on a user's own ``file.py:factory``
model with scikit-learn's digits (epochs shortened with --set), and its output does what the recipe's
header promises, checked on the rebuilt model against hand counts."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from tinyopt.cli import main
from tinyopt.compress.artifact import load_output

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RECIPES = Path(__file__).resolve().parents[2] / "examples" / "recipes"
NAMES = sorted(p.stem for p in RECIPES.glob("*.yaml"))

# A network of our own: conv + BatchNorm + pool, then two dense layers; it declares no input_shape, so
# compress finds it from the data. And an MLP that takes the 64 pixels flat (no nn.Flatten of its own).
NET = '''
from torch import nn


def cnn():
    return nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(6 * 16, 24), nn.ReLU(), nn.Linear(24, 10))


def mlp():
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
'''


def test_the_required_recipes_ship():
    assert {"deep-compression", "int8-qat", "mixed-4bit", "structured-latency", "distill-student",
            "lowrank-dense"} <= set(NAMES)
    for name in NAMES:
        head = (RECIPES / f"{name}.yaml").read_text().split("\nseed:")[0]
        assert "What it buys" in head and "When to use it" in head and "tinyopt compress" in head, name


@pytest.fixture(scope="module")
def user(tmp_path_factory):
    d = tmp_path_factory.mktemp("user")
    (d / "net.py").write_text(NET)
    return d


def _run(user: Path, name: str, factory: str, tmp: Path) -> tuple[dict, object, Path]:
    out = tmp / (f"{name}.topz" if name == "deep-compression" else f"{name}.pt")
    epochs = "*.epochs=2" if name == "distill-student" else "*.epochs=0.5"
    code = main(["compress", f"{user / 'net.py'}:{factory}", "--data", "digits", "--recipe",
                 str(RECIPES / f"{name}.yaml"), "--out", str(out), "--set", epochs, "--json",
                 str(tmp / "t.json"), "--no-progress"])
    assert code == 0
    return json.loads((tmp / "t.json").read_text()), load_output(out), out


def _accuracy(module, x, y) -> float:
    with torch.no_grad():
        return float((module(torch.from_numpy(x)).argmax(1).numpy() == y).mean())


def _val():
    from tinyopt.data.doors import open_data

    d = open_data("digits", seed=0).to_model_layout()
    return d.x_val, d.y_val


def _int8_accuracy(cm, x, y) -> float:
    from tinyopt.convert.convert import torch_to_graph_layout
    from tinyopt.runtime import Interpreter

    g = cm.int8_graph()
    q = g.tensors[g.inputs[0]].quant
    xg = torch_to_graph_layout(x, cm.input_shape)
    xq = np.clip(np.round(xg / q.scale[0]) + q.zero_point[0], -128, 127).astype(np.int8)
    return float((Interpreter(g).run([xq])[0].argmax(-1).reshape(len(y)) == y).mean())


def _weights(module) -> dict[str, np.ndarray]:
    return {n: m.weight.detach().numpy() for n, m in module.named_modules()
            if isinstance(m, (nn.Conv2d, nn.Linear))}


@pytest.mark.parametrize("name", NAMES)
def test_recipe_runs_on_a_users_cnn(user, tmp_path, name):
    table, cm, out = _run(user, name, "cnn", tmp_path)
    rows = table["rows"]
    assert rows[0]["step"] == "input" and len(rows) == 1 + len(table["recipe"]["steps"])
    model = cm.build()  # rebuilt from the record alone: factory, input shape, edits, weights
    assert cm.input_shape == (1, 8, 8) and table["input_shape"] == [1, 8, 8]
    x, y = _val()
    if cm.meta["activations"]:
        # quantized activations: the int8 model (numpy runtime, bit-exact with TFLM) built from the record
        # and its data lands where compress's fake-quantized simulation measured it (same split, seed 0)
        assert _int8_accuracy(cm, x, y) == pytest.approx(rows[-1]["accuracy"], abs=0.02)
    else:  # a float model: the rebuilt one computes exactly what compress measured
        assert _accuracy(model, x, y) == pytest.approx(rows[-1]["accuracy"], abs=1.5 / len(y))
    w = _weights(model)
    if name == "deep-compression":
        # sparsity 0.75 over all Conv/Linear weights: 54 + 2,304 + 240 = 2,598 weights, 1,949 removed
        total = sum(a.size for a in w.values())
        assert total == 2598 and sum(int((a == 0).sum()) for a in w.values()) >= int(0.75 * total)
        for n, a in w.items():  # shared weights: at most 2^bits codebook entries (conv 8 bits, dense 5)
            assert len(np.unique(a)) <= (256 if a.ndim == 4 else 32), n
        # the file: the coded records the huffman step measured, plus the record convert reads (name 2 +
        # 7 bytes, kind 1, length 4, the JSON, CRC 4)
        body = json.dumps(cm.meta, sort_keys=True, separators=(",", ":")).encode()
        assert out.stat().st_size == table["bytes"] == table["state"]["container_bytes"] + 18 + len(body)
    elif name == "mixed-4bit":
        bits = table["state"]["mixed_bits"]
        assert set(bits) == set(w)
        for n, b in bits.items():  # narrow symmetric b-bit grid: at most 2^b - 1 levels in each channel
            assert max(len(np.unique(ch)) for ch in w[n].reshape(len(w[n]), -1)) <= 2 ** b - 1, n
        assert cm.meta["activations"]  # QAT's int8 ranges go to the converter
    elif name in ("int8-qat", "int8-ptq"):
        assert cm.meta["activations"] and all(a["bits"] == 8 for a in cm.meta["activations"].values())
        fc = w["5"]  # a dense layer (no BatchNorm): each row an integer multiple of amax / 127
        s = np.abs(fc).max(1, keepdims=True) / 127
        assert np.allclose(fc / s, np.round(fc / s), atol=1e-3)
    elif name == "structured-latency":
        # 40 % of the conv's 6 channels removed (4 kept), so the first dense layer keeps 4 x 16 inputs
        assert w["0"].shape[0] < 6 and w["5"].shape[1] == w["0"].shape[0] * 16
        assert rows[-1]["macs"] < rows[0]["macs"]
    elif name == "distill-student":
        # the student, not the teacher: Flatten + zoo mlp 64-16-10 = 64*16 + 16 + 16*10 + 10 = 1,210 params
        assert sum(p.numel() for p in model.parameters()) == 1210 >= rows[-1]["params"]
        assert cm.model_ref.source == "zoo:mlp" and cm.meta["edits"] == [{"flatten_input": True}]
    elif name == "lowrank-dense":
        # ratio 0.5: rank floor(0.5 * in * out / (in + out)): 96x24 -> 9, 24x10 -> 3; the conv is untouched
        assert w["5.0"].shape == (9, 96) and w["5.1"].shape == (24, 9)
        assert w["7.0"].shape == (3, 24) and w["7.1"].shape == (10, 3) and w["0"].shape == (6, 1, 3, 3)


@pytest.mark.parametrize("name", ["int8-ptq", "distill-student", "lowrank-dense"])
def test_recipe_runs_on_a_flat_mlp(user, tmp_path, name):
    """A model taking the 64 pixels as a vector: the single-channel images are flattened for it."""
    table, cm, _ = _run(user, name, "mlp", tmp_path)
    assert cm.input_shape == (64,)
    x, y = _val()
    assert _accuracy(cm.build(), x.reshape(len(x), -1), y) == pytest.approx(table["rows"][-1]["accuracy"],
                                                                            abs=1.5 / len(y))
