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
    """Float NHWC conv. SAME: out = ceil(n / s), total pad = (out-1)*s + k - n, the extra pixel after.
    VALID: out = (n - k) // s + 1, no padding."""
    _, h, wd, _ = x.shape
    o, kh, kw, _ = w.shape
    if pad == "SAME":
        oh, ow = -(-h // stride), -(-wd // stride)
        ph, pw = max((oh - 1) * stride + kh - h, 0), max((ow - 1) * stride + kw - wd, 0)
    else:
        oh, ow, ph, pw = (h - kh) // stride + 1, (wd - kw) // stride + 1, 0, 0
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
    real = _conv_reference(sx * (xq.astype(float) - zx), w * sw[:, None, None, None], bias * sx * sw, 2,
                           "SAME")
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


# -- every writable operator, run by both interpreters ------------------------------------------------
def _x(shape, seed=3):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _i32(name, values):
    arr = np.asarray(values, np.int32)
    return Tensor(name, arr.shape, "int32", data=arr)


_A, _B = _x((1, 4, 6, 3), 3), _x((1, 4, 6, 3), 4)
_DW = _x((1, 3, 3, 6), 5)
# (op, extra input tensors, attrs, inputs fed, expected output): references in numpy.
OP_CASES = {
    "ADD": ([Tensor("b", _B.shape)], {"activation": "RELU6"}, [_A, _B], np.clip(_A + _B, 0, 6)),
    "SUB": ([Tensor("b", _B.shape)], {"activation": "NONE"}, [_A, _B], _A - _B),
    "MUL": ([Tensor("b", _B.shape)], {"activation": "RELU_N1_TO_1"}, [_A, _B], np.clip(_A * _B, -1, 1)),
    "CONCATENATION": ([Tensor("b", _B.shape)], {"axis": -1, "activation": "NONE"}, [_A, _B],
                      np.concatenate([_A, _B], axis=-1)),
    "MAX_POOL_2D": ([], {"filter": (2, 3), "stride": (2, 3), "padding": "VALID", "activation": "NONE"}, [_A],
                    _A.reshape(1, 2, 2, 2, 3, 3).max(axis=(2, 4))),
    "AVERAGE_POOL_2D": ([], {"filter": (2, 2), "stride": (2, 2), "padding": "VALID", "activation": "RELU"},
                        [_A], np.maximum(_A.reshape(1, 2, 2, 3, 2, 3).mean(axis=(2, 4)), 0)),
    "MEAN": ([_i32("axes", [1, 2])], {"keep_dims": True}, [_A], _A.mean(axis=(1, 2), keepdims=True)),
    "PAD": ([_i32("pads", [[0, 0], [1, 2], [0, 1], [0, 0]])], {}, [_A],
            np.pad(_A, ((0, 0), (1, 2), (0, 1), (0, 0)))),
    "RESHAPE": ([_i32("shape", [1, -1])], {"new_shape": (1, -1)}, [_A], _A.reshape(1, -1)),
    "SOFTMAX": ([], {"beta": 0.5}, [_A], np.exp(0.5 * _A) / np.exp(0.5 * _A).sum(-1, keepdims=True)),
    "LOGISTIC": ([], {}, [_A], 1 / (1 + np.exp(-_A))),
    "TANH": ([], {}, [_A], np.tanh(_A)),
    "RELU": ([], {}, [_A], np.maximum(_A, 0)),
    "RELU6": ([], {}, [3 * _A], np.clip(3 * _A, 0, 6)),
    "DEPTHWISE_CONV_2D": ([Tensor("w", _DW.shape, data=_DW),
                           Tensor("bias", (6,), data=np.arange(6, dtype=np.float32))],
                          {"stride": (1, 1), "padding": "VALID", "dilation": (1, 1), "depth_multiplier": 2,
                           "activation": "NONE"},
                          [_A],
                          # output channel c*2+m uses input channel c
                          np.stack([sum(_A[0, i:i + 3, j:j + 3, :].repeat(2, -1)[a, b] * _DW[0, a, b]
                                        for a in range(3) for b in range(3))
                                    for i in range(2) for j in range(4)]).reshape(1, 2, 4, 6) + np.arange(6)),
}


@pytest.mark.parametrize("op", list(OP_CASES))
def test_every_float_op_round_trips_and_runs(op):
    from ai_edge_litert.interpreter import Interpreter

    extra, attrs, feeds, expected = OP_CASES[op]
    x = Tensor("x", feeds[0].shape)
    g = single_op_model(op, [x, *extra], Tensor("y", ()), attrs)
    data = graph_to_tflite_bytes(g)
    h = tflite_bytes_to_graph(data, f"{op}.tflite")
    _assert_same_graph(g, h)
    assert h.tensors["y"].shape == expected.shape
    tflm = runtime.Interpreter.from_bytes(data)
    for i, f in enumerate(feeds):
        tflm.set_input(f, i)
    tflm.invoke()
    np.testing.assert_allclose(tflm.get_output(0), expected, rtol=1e-5, atol=1e-5)
    lite = Interpreter(model_content=data)
    lite.allocate_tensors()
    for d, f in zip(lite.get_input_details(), feeds):
        lite.set_tensor(d["index"], f)
    lite.invoke()
    np.testing.assert_allclose(lite.get_tensor(lite.get_output_details()[0]["index"]), expected,
                               rtol=1e-5, atol=1e-5)


def test_quantize_then_dequantize_in_tflm():
    """QUANTIZE float → int8 then DEQUANTIZE back: q = clip(round(x / 0.02) + 4), x' = 0.02 * (q - 4)."""
    g = Graph("qdq", source="<qdq>")
    g.add_tensor(Tensor("x", (1, 16)))
    g.add_tensor(Tensor("q", (1, 16), "int8", quant=QuantParams(0.02, 4)))
    g.add_tensor(Tensor("y", (1, 16)))
    g.add_node(Node("q", "QUANTIZE", ["x"], ["q"]))
    g.add_node(Node("y", "DEQUANTIZE", ["q"], ["y"]))
    g.inputs, g.outputs = ["x"], ["y"]
    data = graph_to_tflite_bytes(g)
    _assert_same_graph(g, tflite_bytes_to_graph(data, "qdq.tflite"))
    x = np.linspace(-3, 3, 16, dtype=np.float32).reshape(1, 16)
    tflm = runtime.Interpreter.from_bytes(data)
    tflm.set_input(x, 0)
    tflm.invoke()
    q = np.clip(np.round(x / np.float32(0.02)) + 4, -128, 127)
    np.testing.assert_allclose(tflm.get_output(0), 0.02 * (q - 4), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("op", ["CONV_2D", "DEPTHWISE_CONV_2D"])
def test_convolution_without_bias_gets_explicit_zeros(op):
    """Bias-less convolutions crash TFLM/LiteRT (depthwise) or are refused (LiteRT conv): the writer adds
    zeros, which leaves the result unchanged: y = conv(x, w) + 0."""
    from ai_edge_litert.interpreter import Interpreter

    x = _x((1, 5, 5, 2), 9)
    w = _x((3, 3, 3, 2) if op == "CONV_2D" else (1, 3, 3, 2), 10)
    attrs = {"stride": (1, 1), "padding": "VALID", "dilation": (1, 1), "activation": "NONE"}
    if op == "DEPTHWISE_CONV_2D":
        attrs["depth_multiplier"] = 1
    g = single_op_model(op, [Tensor("x", x.shape), Tensor("w", w.shape, data=w), None], Tensor("y", ()),
                        attrs)
    data = graph_to_tflite_bytes(g)
    assert g.nodes[0].inputs[2] == ""  # the caller's graph is left alone
    h = tflite_bytes_to_graph(data, "nobias.tflite")
    bias = h.tensors[h.nodes[0].inputs[2]]
    assert bias.shape == (w.shape[0] if op == "CONV_2D" else w.shape[3],) and not bias.data.any()
    if op == "CONV_2D":
        expected = _conv_reference(x, w, 0.0, 1, "VALID")
    else:
        # depth multiplier 1: y[i, j, c] = sum over the 3x3 window of x[i+a, j+b, c] * w[a, b, c]
        expected = np.array([[(x[0, i:i + 3, j:j + 3] * w[0]).sum(axis=(0, 1)) for j in range(3)]
                             for i in range(3)])[None]
    tflm = runtime.Interpreter.from_bytes(data)
    tflm.set_input(x, 0)
    tflm.invoke()
    np.testing.assert_allclose(tflm.get_output(0), expected, rtol=1e-5, atol=1e-5)
    lite = Interpreter(model_content=data)
    lite.allocate_tensors()
    lite.set_tensor(lite.get_input_details()[0]["index"], x)
    lite.invoke()
    np.testing.assert_allclose(lite.get_tensor(lite.get_output_details()[0]["index"]), expected,
                               rtol=1e-5, atol=1e-5)


def test_int8_convolution_zero_bias_is_quantized_per_channel():
    sw = np.array([0.01, 0.02], np.float32)
    w = np.ones((2, 1, 1, 3), np.int8)
    g = single_op_model("CONV_2D", [Tensor("x", (1, 2, 2, 3), "int8", quant=QuantParams(0.5, 0)),
                                    Tensor("w", w.shape, "int8", data=w,
                                           quant=QuantParams(sw, [0, 0], axis=0))],
                        Tensor("y", (), "int8", quant=QuantParams(0.1, 0)), {"padding": "VALID"})
    h = tflite_bytes_to_graph(graph_to_tflite_bytes(g), "q.tflite")
    bias = h.tensors[h.nodes[0].inputs[2]]
    # bias scale = input scale x weight scale: 0.5 * 0.01 = 0.005, 0.5 * 0.02 = 0.01
    assert bias.dtype == "int32" and np.allclose(bias.quant.scale, [0.005, 0.01]) and bias.quant.axis == 0


@pytest.mark.parametrize(("dtype", "values", "fragment"), [
    ("int8", np.array([0, 5, 200, -3]), r"values in \[-3, 200\], outside the int8 range"),
    ("int8", np.array([0.5, 1.0, 2.0, 3.0]), "fractional values but is int8"),
    ("float32", np.array([0.0, np.nan, 1.0, 2.0]), "NaN or infinite"),
    ("int32", np.arange(3), "holds 3 values but shape"),
])
def test_constant_values_that_would_not_survive_the_cast_are_refused(dtype, values, fragment):
    g = single_op_model("ADD",
                        [Tensor("x", (1, 4), dtype), Tensor("c", (1, 4), dtype, data=np.zeros((1, 4)))],
                        Tensor("y", (), dtype))
    g.tensors["c"].data = values
    with pytest.raises(ModelFormatError, match=fragment):
        graph_to_tflite_bytes(g)


def test_integer_data_in_range_is_written_exactly():
    """int64 arrays holding int8-range values (what numpy arithmetic produces) are written as int8."""
    g = single_op_model("ADD", [Tensor("x", (1, 4), "int8", quant=QuantParams(0.1, 0)),
                                Tensor("c", (1, 4), "int8", data=np.array([[-128, -1, 0, 127]]),
                                       quant=QuantParams(0.1, 0))],
                        Tensor("y", (), "int8", quant=QuantParams(0.2, 0)))
    h = tflite_bytes_to_graph(graph_to_tflite_bytes(g), "c.tflite")
    assert h.tensors["c"].data.dtype == np.int8 and h.tensors["c"].data.tolist() == [[-128, -1, 0, 127]]


@pytest.mark.parametrize(("path", "arena"), [(KWS_INT8, 24_272), (RESNET_INT8, 55_984)],
                         ids=["kws", "resnet"])
def test_tflm_arena_of_the_written_file_equals_the_original(path, arena, capfd):
    """TFLM's own arena (as tflite-micro reports it: KWS 24,272 B, ResNet-8 55,984 B) does not change after a
    round trip."""
    sizes = []
    for content in (need(path).read_bytes(), graph_to_tflite_bytes(load_tflite(path))):
        runtime.Interpreter.from_bytes(content).print_allocations()
        out = capfd.readouterr()
        line = next(x for x in (out.out + out.err).splitlines() if "Arena allocation total" in x)
        sizes.append(int(line.split("total")[1].split()[0]))
    assert sizes == [arena, arena]


# -- int8 single-op models: TFLM and LiteRT against a float reference ----------------------------------
def _q(scale, zero):
    return QuantParams(scale, zero)


_QX = (0.05, 2)
# op -> (extra inputs, attrs, output quant, float reference of the dequantized inputs)
INT8_CASES = {
    "ADD": ([Tensor("b", (1, 4, 6, 3), "int8", quant=_q(0.04, -3))], {"activation": "NONE"}, (0.08, 1),
            lambda a, b: a + b),
    "SUB": ([Tensor("b", (1, 4, 6, 3), "int8", quant=_q(0.04, -3))], {"activation": "RELU"}, (0.05, -20),
            lambda a, b: np.maximum(a - b, 0)),
    "MUL": ([Tensor("b", (1, 4, 6, 3), "int8", quant=_q(0.04, -3))], {"activation": "NONE"}, (0.1, 0),
            lambda a, b: a * b),
    "MAX_POOL_2D": ([], {"filter": (2, 2), "stride": (2, 2), "padding": "SAME", "activation": "NONE"}, _QX,
                    lambda a: a.reshape(1, 2, 2, 3, 2, 3).max(axis=(2, 4))),
    "AVERAGE_POOL_2D": ([], {"filter": (4, 6), "stride": (1, 1), "padding": "VALID", "activation": "NONE"},
                        _QX, lambda a: a.mean(axis=(1, 2), keepdims=True)),
    "MEAN": ([_i32("axes", [1, 2])], {"keep_dims": True}, (0.03, -1),
             lambda a: a.mean(axis=(1, 2), keepdims=True)),
    "PAD": ([_i32("pads", [[0, 0], [1, 1], [2, 0], [0, 0]])], {}, _QX,
            lambda a: np.pad(a, ((0, 0), (1, 1), (2, 0), (0, 0)))),
    "CONCATENATION": ([Tensor("b", (1, 4, 6, 3), "int8", quant=_q(*_QX))], {"axis": 3, "activation": "NONE"},
                      _QX, lambda a, b: np.concatenate([a, b], axis=3)),
    "RESHAPE": ([_i32("shape", [1, 72])], {"new_shape": (1, 72)}, _QX, lambda a: a.reshape(1, 72)),
    "SOFTMAX": ([], {"beta": 1.0}, (1 / 256, -128), lambda a: np.exp(a) / np.exp(a).sum(-1, keepdims=True)),
    "LOGISTIC": ([], {}, (1 / 256, -128), lambda a: 1 / (1 + np.exp(-a))),
    "TANH": ([], {}, (1 / 128, 0), np.tanh),
    "RELU": ([], {}, _QX, lambda a: np.maximum(a, 0)),
    "RELU6": ([], {}, _QX, lambda a: np.clip(a, 0, 6)),
}


@pytest.mark.parametrize("op", list(INT8_CASES))
def test_every_int8_op_runs_in_tflm_and_litert(op):
    from ai_edge_litert.interpreter import Interpreter

    extra, attrs, (sy, zy), reference = INT8_CASES[op]
    x = Tensor("x", (1, 4, 6, 3), "int8", quant=_q(*_QX))
    g = single_op_model(op, [x, *extra], Tensor("y", (), "int8", quant=_q(sy, zy)), attrs)
    data = graph_to_tflite_bytes(g)
    _assert_same_graph(g, tflite_bytes_to_graph(data, f"{op}.tflite"))
    rng = np.random.default_rng(42)
    feeds = [rng.integers(-128, 128, g.tensors[name].shape).astype(np.int8) for name in g.inputs]
    real = [g.tensors[name].quant.scale[0] * (f.astype(float) - g.tensors[name].quant.zero_point[0])
            for name, f in zip(g.inputs, feeds)]
    expected = np.clip(np.round(reference(*real) / sy) + zy, -128, 127)
    tflm = runtime.Interpreter.from_bytes(data)
    for i, f in enumerate(feeds):
        tflm.set_input(f, i)
    tflm.invoke()
    got = tflm.get_output(0).astype(int)
    lite = Interpreter(model_content=data)
    lite.allocate_tensors()
    for d, f in zip(lite.get_input_details(), feeds):
        lite.set_tensor(d["index"], f)
    lite.invoke()
    other = lite.get_tensor(lite.get_output_details()[0]["index"]).astype(int)
    assert got.shape == expected.shape == other.shape
    assert np.abs(got - expected).max() <= 1 and np.abs(other - got).max() <= 1


def test_mean_axes_from_attrs_are_written_as_an_operand():
    """The PyTorch/ONNX importers put MEAN's axes in attrs; TFLite only reads an int32 operand."""
    g = single_op_model("MEAN", [Tensor("x", _A.shape)], Tensor("y", ()),
                        {"axes": (1, 2), "keep_dims": False})
    data = graph_to_tflite_bytes(g)
    h = tflite_bytes_to_graph(data, "mean.tflite")
    assert h.tensors[h.nodes[0].inputs[1]].data.tolist() == [1, 2] and h.tensors["y"].shape == (1, 3)
    tflm = runtime.Interpreter.from_bytes(data)
    tflm.set_input(_A, 0)
    tflm.invoke()
    np.testing.assert_allclose(tflm.get_output(0), _A.mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)
    g.nodes[0].attrs.pop("axes")
    with pytest.raises(ModelFormatError, match="MEAN has neither an axes operand"):
        graph_to_tflite_bytes(g)


def test_converted_pytorch_model_is_written_and_runs():
    """The convert door's int8 Graph (float I/O: QUANTIZE ... DEQUANTIZE) through the writer: TFLM and
    LiteRT agree within one output step, and the file re-imports to the same graph."""
    torch = pytest.importorskip("torch")
    from ai_edge_litert.interpreter import Interpreter

    from tinyopt import zoo
    from tinyopt.convert.convert import convert_torch

    torch.manual_seed(0)
    model = zoo.build("digits_cnn").eval()
    shape = zoo.input_shape("digits_cnn")
    g = convert_torch(model, torch.randn(16, *shape), shape, io="float")
    data = graph_to_tflite_bytes(g)
    h = tflite_bytes_to_graph(data, "digits.tflite")
    assert [n.op for n in h.nodes] == [n.op for n in g.nodes] and h.nodes[0].op == "QUANTIZE"
    out_scale = g.tensors[g.nodes[-1].inputs[0]].quant.scale[0]
    x = np.random.default_rng(0).standard_normal(g.tensors[g.inputs[0]].shape).astype(np.float32)
    tflm = runtime.Interpreter.from_bytes(data)
    tflm.set_input(x, 0)
    tflm.invoke()
    lite = Interpreter(model_content=data)
    lite.allocate_tensors()
    lite.set_tensor(lite.get_input_details()[0]["index"], x)
    lite.invoke()
    diff = np.abs(tflm.get_output(0) - lite.get_tensor(lite.get_output_details()[0]["index"]))
    assert diff.max() <= out_scale * 1.001


def test_writer_reads_its_output_back_and_names_the_bad_tensor():
    g = single_op_model("RELU", [Tensor("x", (1, 4), "int8", quant=QuantParams(0.1, 0))],
                        Tensor("y", (), "int8", quant=QuantParams(0.1, 0)))
    g.tensors["y"].quant = QuantParams(0.0, 0)
    with pytest.raises(ModelFormatError, match="tensor 1 'y': has quantization scale 0.0"):
        graph_to_tflite_bytes(g)
    g.tensors["y"].quant = None
    with pytest.raises(ModelFormatError, match="'y': is an int8 activation without quantization"):
        graph_to_tflite_bytes(g)


def test_single_op_model_docstring_example():
    import doctest

    import tinyopt.export.tflite as module

    result = doctest.testmod(module)
    assert result.attempted >= 5 and result.failed == 0


# -- property: write then read is the identity on valid single-op graphs --------------------------------
def _random_graph(draw_int, draw_choice, seed):
    rng = np.random.default_rng(seed)
    op = draw_choice(["CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "AVERAGE_POOL_2D", "FULLY_CONNECTED"])
    h, w, c = draw_int(1, 9), draw_int(1, 9), draw_int(1, 5)
    k, s = draw_int(1, 3), draw_int(1, 3)
    attrs = {"stride": (s, draw_int(1, 3)), "padding": draw_choice(["SAME", "VALID"]),
             "activation": draw_choice(["NONE", "RELU", "RELU6", "RELU_N1_TO_1"])}
    if attrs["padding"] == "VALID":
        k = min(k, h, w)
    x = Tensor("x", (1, h, w, c), "int8",
               quant=QuantParams(rng.uniform(0.01, 1), int(rng.integers(-128, 128))))
    y = Tensor("y", (), "int8", quant=QuantParams(rng.uniform(0.01, 1), int(rng.integers(-128, 128))))
    if op in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
        return single_op_model(op, [x], Tensor("y", (), "int8", quant=x.quant), dict(attrs, filter=(k, k)))
    if op == "FULLY_CONNECTED":
        o = draw_int(1, 6)
        wt = rng.integers(-127, 128, (o, h * w * c)).astype(np.int8)
        ws = rng.uniform(0.001, 0.1, 1).astype(np.float32)
        return single_op_model(op, [x, Tensor("w", wt.shape, "int8", data=wt, quant=QuantParams(ws, [0])),
                                    Tensor("b", (o,), "int32",
                                           data=rng.integers(-999, 999, o).astype(np.int32),
                                           quant=QuantParams(x.quant.scale * ws, [0]))], y,
                               {"activation": attrs["activation"], "keep_num_dims": False})
    m = draw_int(1, 2) if op == "DEPTHWISE_CONV_2D" else 1
    o = c * m if op == "DEPTHWISE_CONV_2D" else draw_int(1, 6)
    shape = (1, k, k, o) if op == "DEPTHWISE_CONV_2D" else (o, k, k, c)
    wt = rng.integers(-127, 128, shape).astype(np.int8)
    ws = rng.uniform(0.001, 0.1, o).astype(np.float32)
    axis = 3 if op == "DEPTHWISE_CONV_2D" else 0
    attrs["dilation"] = (1, 1)
    if op == "DEPTHWISE_CONV_2D":
        attrs["depth_multiplier"] = m
    return single_op_model(op, [x, Tensor("w", shape, "int8", data=wt,
                                          quant=QuantParams(ws, np.zeros(o), axis=axis)),
                                Tensor("b", (o,), "int32", data=rng.integers(-999, 999, o).astype(np.int32),
                                       quant=QuantParams(x.quant.scale * ws, np.zeros(o), axis=0))], y, attrs)


def test_write_then_read_is_the_identity_and_tflm_agrees_with_litert():
    from ai_edge_litert.interpreter import Interpreter
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    @settings(max_examples=10, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(st.data())
    def check(data):
        g = _random_graph(lambda lo, hi: data.draw(st.integers(lo, hi)),
                          lambda xs: data.draw(st.sampled_from(xs)), data.draw(st.integers(0, 2**31)))
        blob = graph_to_tflite_bytes(g)
        _assert_same_graph(g, tflite_bytes_to_graph(blob, "random.tflite"))
        x = np.random.default_rng(0).integers(-128, 128, g.tensors["x"].shape).astype(np.int8)
        tflm = runtime.Interpreter.from_bytes(blob)
        tflm.set_input(x, 0)
        tflm.invoke()
        lite = Interpreter(model_content=blob)
        lite.allocate_tensors()
        lite.set_tensor(lite.get_input_details()[0]["index"], x)
        lite.invoke()
        ours, theirs = tflm.get_output(0).astype(int), lite.get_tensor(lite.get_output_details()[0]["index"])
        assert ours.shape == theirs.shape == g.tensors["y"].shape
        assert np.abs(ours - theirs).max() <= 1

    check()
