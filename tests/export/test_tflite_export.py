"""TFLite writer: round trips through our importer, TFLM and LiteRT, single-op models, and refusals."""

from __future__ import annotations

import numpy as np
import pytest
import tflite
from tflite_micro.python.tflite_micro import runtime

from conftest import KWS_FLOAT, KWS_INT8, RESNET_FLOAT, RESNET_INT8, need
from tinyopt.errors import ModelFormatError, UnsupportedOpError
from tinyopt.export.tflite import graph_to_tflite_bytes, save_tflite, single_op_model
from tinyopt.graph.ir import Graph, Node, QuantParams, Tensor
from tinyopt.graph.spec import spec_to_graph
from tinyopt.graph.tflite_import import load_tflite, tflite_bytes_to_graph

ALL = [KWS_INT8, KWS_FLOAT, RESNET_INT8, RESNET_FLOAT]
IDS = ["kws-int8", "kws-float", "resnet-int8", "resnet-float"]


def _assert_same_graph(a: Graph, b: Graph) -> None:
    assert [(n.op, n.name, n.inputs, n.outputs, n.attrs) for n in a.nodes] == \
           [(n.op, n.name, n.inputs, n.outputs, n.attrs) for n in b.nodes]
    assert (a.inputs, a.outputs, list(a.tensors)) == (b.inputs, b.outputs, list(b.tensors))
    for name, t in a.tensors.items():
        u = b.tensors[name]
        assert (t.shape, t.dtype, t.constant, t.quant) == (u.shape, u.dtype, u.constant, u.quant), name
        if t.data is not None:
            assert u.data.dtype == t.data.dtype and np.array_equal(t.data, u.data), name


@pytest.mark.parametrize("path", ALL, ids=IDS)
def test_round_trip_gives_the_same_graph_and_bytes(path, tmp_path):
    g = load_tflite(need(path))
    data = graph_to_tflite_bytes(g)
    assert data == graph_to_tflite_bytes(g.copy())  # deterministic
    out = save_tflite(g, tmp_path / "m.tflite")
    assert out.read_bytes() == data
    h = load_tflite(out)
    _assert_same_graph(g, h)
    assert graph_to_tflite_bytes(h) == data  # a fixed point after one trip


@pytest.mark.parametrize("path", [KWS_INT8, RESNET_INT8], ids=["kws-int8", "resnet-int8"])
def test_tflm_outputs_identical_to_the_original(path):
    original = need(path).read_bytes()
    written = graph_to_tflite_bytes(load_tflite(path))
    a, b = runtime.Interpreter.from_bytes(original), runtime.Interpreter.from_bytes(written)
    shape = tuple(a.get_input_details(0)["shape"])
    rng = np.random.default_rng(2024)
    outputs = set()
    for _ in range(20):
        x = rng.integers(-128, 128, size=shape, dtype=np.int8)
        a.set_input(x, 0)
        a.invoke()
        b.set_input(x, 0)
        b.invoke()
        ya, yb = a.get_output(0), b.get_output(0)
        assert ya.dtype == np.int8 and np.array_equal(ya, yb)
        outputs.add(ya.tobytes())
    assert len(outputs) > 1  # the inputs really exercise the model


@pytest.mark.parametrize("path", ALL, ids=IDS)
def test_litert_runs_the_written_file_like_the_original(path):
    from ai_edge_litert.interpreter import Interpreter

    results = []
    for content in (need(path).read_bytes(), graph_to_tflite_bytes(load_tflite(path))):
        it = Interpreter(model_content=content)
        it.allocate_tensors()
        d = it.get_input_details()[0]
        rng = np.random.default_rng(5)
        if d["dtype"] == np.int8:
            x = rng.integers(-128, 128, size=d["shape"]).astype(np.int8)
        else:
            x = rng.standard_normal(d["shape"]).astype(np.float32)
        it.set_tensor(d["index"], x)
        it.invoke()
        results.append(it.get_tensor(it.get_output_details()[0]["index"]))
    assert "serving_default" in it.get_signature_list()  # ours carries a signature; the originals do not
    np.testing.assert_array_equal(results[0], results[1])


def test_written_file_layout_read_by_the_generated_bindings():
    data = graph_to_tflite_bytes(load_tflite(need(RESNET_INT8)))
    assert data[4:8] == b"TFL3"
    m = tflite.Model.GetRootAsModel(data, 0)
    assert m.Version() == 3 and m.SubgraphsLength() == 1
    assert m.Buffers(0).DataLength() == 0
    names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    codes = [m.OperatorCodes(i) for i in range(m.OperatorCodesLength())]
    assert [names[c.BuiltinCode()] for c in codes] == ["CONV_2D", "ADD", "AVERAGE_POOL_2D", "RESHAPE",
                                                        "FULLY_CONNECTED", "SOFTMAX"]
    assert all(c.DeprecatedBuiltinCode() == c.BuiltinCode() for c in codes)  # all codes < 127
    # int8 kernels record the versions the converter gives them (the original file says the same).
    assert [c.Version() for c in codes] == [3, 2, 2, 1, 4, 2]
    for i in range(1, m.BuffersLength()):
        tab = m.Buffers(i)._tab
        assert m.Buffers(i).DataLength() > 0 and tab.Vector(tab.Offset(4)) % 16 == 0
    sig = m.SignatureDefs(0)
    assert sig.SignatureKey() == b"serving_default" and sig.Inputs(0).Name() == b"input_1_int8"
    sg = m.Subgraphs(0)
    assert sg.Tensors(sig.Inputs(0).TensorIndex()).Name() == b"input_1_int8"


# -- single-op models ------------------------------------------------------------------------------
def _conv_reference(x, w, b, stride, pad):
    """Float NHWC conv, TFLite SAME padding: out = ceil(n / s), total pad = (out-1)*s + k - n, extra after."""
    _, h, wd, _ = x.shape
    o, kh, kw, _ = w.shape
    oh, ow = -(-h // stride), -(-wd // stride)
    ph, pw = max((oh - 1) * stride + kh - h, 0), max((ow - 1) * stride + kw - wd, 0)
    xp = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    y = np.zeros((1, oh, ow, o))
    for i in range(oh):
        for j in range(ow):
            win = xp[0, i * stride:i * stride + kh, j * stride:j * stride + kw, :]
            y[0, i, j] = np.tensordot(w, win, axes=([1, 2, 3], [0, 1, 2])) + b
    return y


def test_single_op_int8_conv_per_channel_runs_in_tflm():
    rng = np.random.default_rng(0)
    sx, zx, sy, zy = 0.05, 3, 0.08, -5
    sw = rng.uniform(0.005, 0.02, 4).astype(np.float32)
    w = rng.integers(-127, 128, (4, 3, 3, 3)).astype(np.int8)
    bias = rng.integers(-2000, 2000, 4).astype(np.int32)
    x = Tensor("x", (1, 9, 9, 3), "int8", quant=QuantParams(sx, zx))
    g = single_op_model(
        "CONV_2D",
        [x, Tensor("w", w.shape, "int8", data=w, quant=QuantParams(sw, np.zeros(4), axis=0)),
         Tensor("b", (4,), "int32", data=bias, quant=QuantParams(sx * sw, np.zeros(4), axis=0))],
        Tensor("y", (), "int8", quant=QuantParams(sy, zy)),
        {"stride": (2, 2), "padding": "SAME", "dilation": (1, 1), "activation": "NONE"})
    assert g.tensors["y"].shape == (1, 5, 5, 4) and g.inputs == ["x"]  # ceil(9 / 2) = 5
    interp = runtime.Interpreter.from_bytes(graph_to_tflite_bytes(g))
    xq = rng.integers(-128, 128, (1, 9, 9, 3)).astype(np.int8)
    interp.set_input(xq, 0)
    interp.invoke()
    got = interp.get_output(0).astype(int)
    real = _conv_reference(sx * (xq.astype(float) - zx), w * sw[:, None, None, None], bias * sx * sw, 2, "SAME")
    expected = np.clip(np.round(real / sy) + zy, -128, 127)
    # Fixed-point requantization vs float: at most one step apart, and mostly equal.
    assert np.abs(got - expected).max() <= 1 and np.mean(got == expected) > 0.9


def test_single_op_float_fully_connected_in_tflm_and_litert():
    from ai_edge_litert.interpreter import Interpreter

    rng = np.random.default_rng(1)
    w = rng.standard_normal((5, 8)).astype(np.float32)
    b = rng.standard_normal(5).astype(np.float32)
    g = single_op_model("FULLY_CONNECTED", [Tensor("x", (1, 8)), Tensor("w", w.shape, data=w),
                                            Tensor("b", (5,), data=b)], Tensor("y", ()),
                        {"activation": "RELU", "keep_num_dims": False})
    data = graph_to_tflite_bytes(g)
    x = rng.standard_normal((1, 8)).astype(np.float32)
    expected = np.maximum(x @ w.T + b, 0)
    tflm = runtime.Interpreter.from_bytes(data)
    tflm.set_input(x, 0)
    tflm.invoke()
    np.testing.assert_allclose(tflm.get_output(0), expected, rtol=1e-5, atol=1e-6)
    lite = Interpreter(model_content=data)
    lite.allocate_tensors()
    lite.set_tensor(lite.get_input_details()[0]["index"], x)
    lite.invoke()
    np.testing.assert_allclose(lite.get_tensor(lite.get_output_details()[0]["index"]), expected,
                               rtol=1e-5, atol=1e-6)


def test_single_op_without_bias_and_reshape_from_attrs():
    """An absent optional input is written as -1 and comes back as ""; RESHAPE without a shape operand
    carries its new shape in the options table."""
    w = np.ones((2, 4), np.float32)
    g = single_op_model("FULLY_CONNECTED", [Tensor("x", (1, 4)), Tensor("w", w.shape, data=w), None],
                        Tensor("y", ()))
    h = tflite_bytes_to_graph(graph_to_tflite_bytes(g), "fc.tflite")
    assert h.nodes[0].inputs == ["x", "w", ""] and h.tensors["y"].shape == (1, 2)
    r = single_op_model("RESHAPE", [Tensor("x", (1, 2, 3, 4))], Tensor("y", ()), {"new_shape": (1, -1)})
    h = tflite_bytes_to_graph(graph_to_tflite_bytes(r), "reshape.tflite")
    assert h.nodes[0].attrs == {"new_shape": (1, -1)} and h.tensors["y"].shape == (1, 24)


# -- refusals ---------------------------------------------------------------------------------------
def test_batch_norm_is_refused_with_a_fix(tmp_path):
    g = Graph("bn", source="bn.yaml")
    for name in ("x", "y"):
        g.add_tensor(Tensor(name, (1, 2, 2, 3)))
    for name in ("gamma", "beta", "mean", "var"):
        g.add_tensor(Tensor(name, (3,), data=np.ones(3, np.float32)))
    g.add_node(Node("y", "BATCH_NORM", ["x", "gamma", "beta", "mean", "var"], ["y"], {"epsilon": 1e-3}))
    g.inputs, g.outputs = ["x"], ["y"]
    target = tmp_path / "bn.tflite"
    with pytest.raises(UnsupportedOpError, match="BATCH_NORM cannot be written.*fold batch norm"):
        save_tflite(g, target)
    assert list(tmp_path.iterdir()) == []  # nothing written, no temporary left


def test_architecture_without_weights_is_refused():
    g = spec_to_graph({"input": [4, 4, 1], "layers": [{"type": "conv2d", "filters": 2, "kernel": 3}]})
    with pytest.raises(ModelFormatError, match="constant without values"):
        graph_to_tflite_bytes(g)


def test_unwritable_dtype_and_activation_are_refused():
    g = single_op_model("RELU", [Tensor("x", (1, 4))], Tensor("y", ()))
    g.tensors["x"].dtype = "int4"
    with pytest.raises(ModelFormatError, match="dtype int4 cannot be written"):
        graph_to_tflite_bytes(g)
    g = single_op_model("ADD", [Tensor("a", (1, 4)), Tensor("b", (1, 4))], Tensor("y", ()),
                        {"activation": "GELU"})
    with pytest.raises(UnsupportedOpError, match="activation 'GELU' has no TFLite encoding"):
        graph_to_tflite_bytes(g)


def test_invalid_graph_is_refused_before_writing():
    g = single_op_model("RELU", [Tensor("x", (1, 4))], Tensor("y", ()))
    g.nodes[0].inputs = ["y"]  # a tensor both input and output of one node
    with pytest.raises(ModelFormatError, match="both input and output"):
        graph_to_tflite_bytes(g)
