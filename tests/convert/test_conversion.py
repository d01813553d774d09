"""Converted zoo models: the exported .tflite runs in TFLM exactly like our runtime and in LiteRT within
1 LSB; the int8 model stays close to the float one; a PTQ-prepared model converts to what it simulated."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from runtime._reference import run_tflm
from tinyopt import zoo
from tinyopt.convert import convert_graph, convert_torch, torch_to_graph_layout
from tinyopt.errors import DataError
from tinyopt.export.tflite import graph_to_tflite_bytes
from tinyopt.graph.torch_import import from_torch
from tinyopt.runtime import Interpreter


def run_litert(model: bytes, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter as LiteRT

    lite = LiteRT(model_content=model)
    lite.allocate_tensors()
    i, o = lite.get_input_details()[0]["index"], lite.get_output_details()[0]["index"]
    rows = []
    for r in x:
        lite.set_tensor(i, r[None])
        lite.invoke()
        rows.append(lite.get_tensor(o)[0])
    return np.stack(rows)


def quantize_input(g, x_nhwc):
    q = g.tensors[g.inputs[0]].quant
    return np.clip(np.round(x_nhwc / q.scale[0]) + q.zero_point[0], -128, 127).astype(np.int8)


@pytest.mark.parametrize("name", ["lenet5", "dscnn", "resnet8"])
def test_zoo_model_runs_in_tflm_and_litert(name):
    torch.manual_seed(0)
    model = zoo.build(name).eval()
    shape = zoo.input_shape(name)
    rng = np.random.default_rng(1)
    calib = rng.normal(0, 1, (48, *shape)).astype(np.float32)
    g = convert_torch(model, calib, shape)
    model_bytes = graph_to_tflite_bytes(g)
    x = np.concatenate([quantize_input(g, torch_to_graph_layout(calib[:20], shape)),
                        rng.integers(-128, 128, (10, *g.tensors[g.inputs[0]].shape[1:])).astype(np.int8)])
    ours = Interpreter(g).run(x)[0]
    tflm = run_tflm(model_bytes, [x])[0]
    assert int((ours.reshape(tflm.shape) != tflm).sum()) == 0
    lite = run_litert(model_bytes, x)
    assert int(np.abs(lite.astype(np.int32) - ours.reshape(lite.shape).astype(np.int32)).max()) <= 1
    # The int8 model approximates the float one: dequantized logits within a few output steps.
    with torch.no_grad():
        ref = model(torch.from_numpy(calib[:20])).numpy()
    oq = g.tensors[g.outputs[0]].quant
    deq = (ours[:20].astype(np.float32) - oq.zero_point[0]) * oq.scale[0]
    span = float(ref.max() - ref.min())
    assert np.abs(deq.reshape(ref.shape) - ref).max() < 0.06 * span


@pytest.mark.parametrize("name,kwargs", [("lenet5", {}), ("resnet8", dict(filters=(4, 8, 8)))])
def test_ptq_prepared_model_converts_to_its_simulation(name, kwargs):
    """The observers' parameters are used as they are (every observed tensor keeps its name through BN
    folding, activation fusion and the residual adds), so the int8 graph computes what the fake-quantized
    model simulated, to one output step."""
    from tinyopt.compress import ptq

    torch.manual_seed(0)
    model = zoo.build(name, **kwargs)
    shape = zoo.input_shape(name, **kwargs)
    model.train()
    with torch.no_grad():  # non-trivial BatchNorm statistics
        for _ in range(2):
            model(torch.randn(16, *shape))
    model.eval()
    calib = torch.randn(64, *shape)
    q = ptq.quantize_static(model, [calib[:32], calib[32:]])
    g = convert_torch(q, calib.numpy(), shape)
    acts = ptq.quant_params(q)["activations"]
    graph_acts = {t.name: t for t in g.activations()}
    assert set(acts) <= set(graph_acts)
    for node_name, a in acts.items():
        t = graph_acts[node_name]
        assert (np.isclose(t.quant.scale[0], a["scale"])
                and t.quant.zero_point[0] == a["zero_point"]), node_name
    with torch.no_grad():
        sim = q(calib[:16]).numpy()  # the prepared model is still usable after conversion
    out = Interpreter(g).run(quantize_input(g, calib[:16].numpy().transpose(0, 2, 3, 1)))[0]
    oq = g.tensors[g.outputs[0]].quant
    deq = (out.astype(np.float32) - oq.zero_point[0]) * oq.scale[0]
    assert np.abs(deq - sim).max() <= 1.01 * oq.scale[0]  # at most one output step apart


def test_float_io_adds_quantize_and_dequantize():
    torch.manual_seed(1)
    model = zoo.build("lenet5").eval()
    g_float = from_torch(model, (1, 28, 28))
    calib = np.random.default_rng(2).normal(0, 1, (32, 28, 28, 1)).astype(np.float32)
    g = convert_graph(g_float, calib, io="float")
    assert g.nodes[0].op == "QUANTIZE" and g.nodes[-1].op == "DEQUANTIZE"
    assert g.tensors[g.inputs[0]].dtype == "float32" and g.tensors[g.outputs[0]].dtype == "float32"
    ours = Interpreter(g).run(calib[:12])[0]
    tflm = run_tflm(graph_to_tflite_bytes(g), [calib[:12]])[0]
    np.testing.assert_array_equal(ours.reshape(tflm.shape), tflm)


def test_bad_calibration_data():
    g_float = from_torch(zoo.build("lenet5").eval(), (1, 28, 28))
    with pytest.raises(DataError, match="calibration set is empty"):
        convert_graph(g_float, np.zeros((0, 28, 28, 1), np.float32))
    with pytest.raises(DataError, match="NaN or inf"):
        convert_graph(g_float, np.full((2, 28, 28, 1), np.nan, np.float32))
    with pytest.raises(DataError, match=r"calibration data has shape \[2, 28, 28\]"):
        convert_graph(g_float, np.zeros((2, 28, 28), np.float32))


def test_qat_prepared_dscnn_converts_and_stays_usable():
    """QAT freezes BatchNorm statistics in its own BN class; conversion must still see plain layers."""
    import torch

    from tinyopt import zoo
    from tinyopt.compress import qat
    from tinyopt.convert import convert_torch
    from tinyopt.runtime import Interpreter

    torch.manual_seed(0)
    x = torch.randn(16, 1, 49, 10)
    gm = qat.quantize_aware_train(zoo.build("dscnn"), (x, torch.randint(0, 12, (16,))), epochs=1,
                                  batch_size=8)
    before = gm(x)
    g = convert_torch(gm, x.numpy(), (1, 49, 10))
    assert torch.equal(gm(x), before)  # the prepared model is untouched
    q = g.tensors[g.inputs[0]].quant
    xq = np.clip(np.round(x.numpy().transpose(0, 2, 3, 1) / q.scale[0]) + q.zero_point[0], -128, 127)
    out = Interpreter(g).run(xq.astype(np.int8))[0]
    assert out.shape == (16, 12) and out.dtype == np.int8
