"""``tinyopt.load`` and ``Model``: every door in, and data in the model's own layout at the boundary (a
PyTorch module and an NCHW ONNX file take NCHW, a .tflite NHWC); other layouts are refused with the exact
``np.transpose``, and after that transpose the answer equals the framework's own (PyTorch, ONNX Runtime)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tinyopt
from conftest import KWS_INT8, need
from tinyopt.errors import ConfigError, DataError, ModelFormatError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def small_cnn() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
                               torch.nn.Conv2d(4, 6, 3, stride=2)).eval()  # a 4-D (feature map) output


def test_torch_module_takes_and_gives_nchw(tmp_path):
    net = small_cnn()
    x = np.random.default_rng(0).normal(size=(5, 3, 12, 10)).astype(np.float32)
    m = tinyopt.load(net, torch.zeros(1, 3, 12, 10))
    assert m.inputs[0]["shape"] == [3, 12, 10] and m.inputs[0]["layout"] == "NCHW"
    assert m.outputs[0]["shape"] == [6, 5, 4] and m.outputs[0]["layout"] == "NCHW"
    y = tinyopt.infer(m, x)
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    assert y.shape == ref.shape == (5, 6, 5, 4)
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-5)
    with pytest.raises(DataError) as e:  # the same data in NHWC: refused with the transpose that fixes it
        tinyopt.infer(m, x.transpose(0, 2, 3, 1))
    assert "np.transpose(x, (0, 3, 1, 2))" in str(e.value) and "reshape the" not in str(e.value)
    np.testing.assert_array_equal(tinyopt.infer(m, np.transpose(x.transpose(0, 2, 3, 1), (0, 3, 1, 2))), y)


def test_onnx_file_keeps_its_declared_nchw_layout(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    net = small_cnn()
    path = tmp_path / "cnn.onnx"
    torch.onnx.export(net, torch.zeros(1, 3, 12, 10), str(path), dynamo=False, input_names=["x"],
                      output_names=["y"], opset_version=13)
    x = np.random.default_rng(1).normal(size=(4, 3, 12, 10)).astype(np.float32)
    ref = np.concatenate([ort.InferenceSession(str(path)).run(None, {"x": x[i:i + 1]})[0] for i in range(4)])
    m = tinyopt.load(path)
    assert m.inputs[0]["layout"] == m.outputs[0]["layout"] == "NCHW"
    y = tinyopt.infer(m, x)
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4 * float(np.abs(ref).max()))
    with pytest.raises(DataError, match=r"np.transpose\(x, \(0, 3, 1, 2\)\)"):
        tinyopt.infer(m, x.transpose(0, 2, 3, 1))


def test_tflite_is_nhwc_and_nchw_data_is_refused():
    m = tinyopt.load(need(KWS_INT8))
    assert m.inputs == [{"name": "input_1", "shape": [49, 10, 1], "layout": "NHWC", "dtype": "int8"}]
    with pytest.raises(DataError) as e:
        tinyopt.infer(m, np.zeros((2, 1, 49, 10), np.int8))
    assert "np.transpose(x, (0, 2, 3, 1))" in str(e.value)
    with pytest.raises(DataError, match=r"must have shape \(N, 49, 10, 1\), got \[2, 490\]"):
        tinyopt.infer(m, np.zeros((2, 490), np.int8))
    with pytest.raises(ConfigError, match="declares its input shape"):
        tinyopt.load(KWS_INT8, input_shape=(10, 49, 1))
    assert tinyopt.load(KWS_INT8, input_shape=(49, 10, 1)).graph.name == m.graph.name


def test_file_factory_zoo_and_graph_doors(tmp_path):
    (tmp_path / "net.py").write_text(
        "import torch\n\n"
        "def make():\n"
        "    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 5))\n")
    m = tinyopt.load(f"{tmp_path / 'net.py'}:make", input_shape=(3, 4))
    assert m.module is not None and m.name == "net.py:make"
    assert m.inputs[0]["shape"] == [3, 4] and m.inputs[0]["layout"] == "NCL"  # (C, L), as torch takes it
    assert tinyopt.analyze(m).params == 12 * 5 + 5  # weights + biases, by hand
    lenet = tinyopt.load("zoo:lenet5")  # the zoo knows its input shape
    assert lenet.input_shape == (1, 28, 28) and tinyopt.load(lenet) is lenet
    assert tinyopt.load(lenet.graph).graph is lenet.graph
    bare = tinyopt.load(m.graph).inputs[0]  # a bare graph has no framework layout: the IR's own
    assert bare["layout"] == "NHWC" and bare["shape"] == [1, 4, 3]


def test_load_errors_name_the_fix(tmp_path):
    with pytest.raises(ConfigError, match="example_input=torch.zeros"):
        tinyopt.load(torch.nn.Linear(3, 2))
    with pytest.raises(ModelFormatError, match="file not found"):
        tinyopt.load(tmp_path / "missing.tflite")
    with pytest.raises(ModelFormatError, match="cannot load a int"):
        tinyopt.load(3)
    with pytest.raises(ConfigError, match="checkpoint applies to PyTorch models only"):
        tinyopt.load(need(KWS_INT8), checkpoint=tmp_path / "w.pt")
    with pytest.raises(ConfigError, match="unknown zoo model"):
        tinyopt.load("zoo:lenet55")


def test_model_displays_as_text_and_html():
    m = tinyopt.load(need(KWS_INT8))
    text, html = repr(m), m._repr_html_()
    assert "kws_ref_model" in text and "49×10×1" in text and "NHWC" in text
    assert html.startswith('<div class="tinyopt-result">') and "<td>49×10×1</td>" in html
    assert m.to_dict()["operators"] == 13 and m.has_weights and m.dtype == "int8"
