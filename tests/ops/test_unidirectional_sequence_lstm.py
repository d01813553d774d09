"""UNIDIRECTIONAL_SEQUENCE_LSTM against TFLM (float32, int8, 16x8), its conversion, its int8 C kernel, and the
recurrent doors (nn.LSTM / nn.GRU, ONNX LSTM / GRU) against PyTorch and ONNX Runtime."""

from __future__ import annotations

import numpy as np
import pytest

from ops._oracles import (
    assert_c_equals_runtime,
    assert_torch_matches,
    c_library_outputs,
    from_graph_layout,
    needs_cc,
    to_nhwc,
    weights_summing_to,
)
from runtime._reference import assert_matches_reference, qtensor, random_int8
from tinyopt.errors import TinyoptError, UnsupportedOpError
from tinyopt.export.tflite import graph_to_tflite_bytes, single_op_model
from tinyopt.graph.ir import QuantParams, Tensor
from tinyopt.graph.tflite_import import tflite_bytes_to_graph
from tinyopt.ops import _lstm as lq
from tinyopt.ops.unidirectional_sequence_lstm import UnidirectionalSequenceLstm, cell_scale
from tinyopt.runtime import Interpreter

OP = "UNIDIRECTIONAL_SEQUENCE_LSTM"
assert OP == UnidirectionalSequenceLstm.name


def lstm_graph(seed: int, dtype: str, time_major: bool = False):
    """A one-node LSTM: random T, I, S, weights, quantization (power-of-two cell scales 2^-15..2^-9), cell
    clip on some seeds; and 5 input rows."""
    rng = np.random.default_rng(seed)
    t, i, s = (int(v) for v in rng.integers(1, 9, size=3))
    shape = (t, 1, i) if time_major else (1, t, i)
    ins: list = [None] * 24
    if dtype == "float32":
        ins[0] = Tensor("x", shape)
        for k in range(1, 9):
            w = rng.normal(0, 0.6, size=(s, i) if k <= 4 else (s, s)).astype(np.float32)
            ins[k] = Tensor(f"w{k}", w.shape, data=w)
            if k <= 4:
                ins[k + 11] = Tensor(f"b{k}", (s,), data=rng.normal(0, 0.3, size=s).astype(np.float32))
        ins[18], ins[19] = Tensor("h", (1, s), variable=True), Tensor("c", (1, s), variable=True)
        y = Tensor("y", (1,))
        x = rng.normal(size=(5, *shape[1:]) if not time_major else shape).astype(np.float32)
    else:
        wide = dtype == "int16"
        xs, xz = (float(rng.uniform(1e-4, 1e-3)), 0) if wide else (float(rng.uniform(0.01, 0.1)),
                                                                   int(rng.integers(-20, 21)))
        hs, hz = (float(rng.uniform(2e-5, 6e-5)), 0) if wide else (float(rng.uniform(0.004, 0.02)),
                                                                   int(rng.integers(-20, 21)))
        ins[0] = qtensor("x", shape, xs, xz, dtype=dtype)
        for k in range(1, 9):
            shp = (s, i) if k <= 4 else (s, s)
            ws = float(rng.uniform(0.002, 0.05))
            ins[k] = qtensor(f"w{k}", shp, ws, 0, data=rng.integers(-127, 128, size=shp).astype(np.int8))
            if k <= 4:
                bdt = "int64" if wide else "int32"
                ins[k + 11] = qtensor(f"b{k}", (s,), np.float32(xs) * np.float32(ws), 0, dtype=bdt,
                                      data=rng.integers(-3000, 3000, size=s).astype(bdt))
        ins[18] = Tensor("h", (1, s), dtype, quant=QuantParams(hs, hz), variable=True)
        ins[19] = Tensor("c", (1, s), "int16", quant=QuantParams(2.0 ** int(rng.integers(-15, -8)), 0),
                         variable=True)
        y = qtensor("y", (1,), hs, hz, dtype=dtype)
        rows = shape if time_major else (5, *shape[1:])
        x = rng.integers(-32768, 32768, size=rows).astype(np.int16) if wide else random_int8(rng, rows)
    clip = float(rng.choice([0.0, 0.0, 0.5, 3.0]))
    g = single_op_model(OP, ins, y, {"activation": "TANH", "cell_clip": clip, "time_major": time_major})
    return g, x


@pytest.mark.parametrize("seed", range(30))
def test_float32_matches_tflm(seed):
    g, x = lstm_graph(seed, "float32")
    assert_matches_reference(g, x)


@pytest.mark.parametrize("seed", range(40))
def test_int8_matches_tflm(seed):
    g, x = lstm_graph(100 + seed, "int8")
    assert_matches_reference(g, x)


@pytest.mark.parametrize("seed", range(12))
def test_int16_activations_match_tflm(seed):
    g, x = lstm_graph(200 + seed, "int16")
    assert_matches_reference(g, x)


@pytest.mark.parametrize("dtype", ["float32", "int8"])
def test_time_major_matches_tflm(dtype):
    """[T, 1, I] runs as one invocation (the runtime's rows need batch 1 first, so the kernel is called
    directly on the whole sequence)."""
    from tinyopt.runtime.prepare import prepare_node

    for seed in range(4):
        g, x = lstm_graph(300 + seed, dtype, time_major=True)
        node = g.nodes[0]
        rec = UnidirectionalSequenceLstm()
        ins = [g.tensors[n].data if n and g.tensors[n].constant else None for n in node.inputs]
        ins[0] = x
        ours = rec.eval(prepare_node(g, node), ins)
        from tflite_micro.python.tflite_micro import runtime

        interp = runtime.Interpreter.from_bytes(graph_to_tflite_bytes(g))
        interp.set_input(x, 0)
        interp.invoke()
        ref = interp.get_output(0)
        if dtype == "int8":
            np.testing.assert_array_equal(ours, ref)
        else:
            np.testing.assert_allclose(ours, ref, atol=1e-5, rtol=1e-5)


def test_sigmoid_table_endpoints_by_hand():
    """sigmoid(0) = 1/2 -> 32768; sigmoid(1/24) = 0.51042 -> 33451; the saturated end 65535."""
    assert lq.SIGMOID_TABLE[0] == 32768 and lq.SIGMOID_TABLE[1] == 33451 and lq.SIGMOID_TABLE[255] == 65535
    # logistic16 at 0 (Q3.12) is 1/2 in Q0.15; tanh16 at 0 is 0; both odd/even symmetric around 0
    assert lq.logistic16(np.array([0]))[0] == 16384 and lq.tanh16(np.array([0]), 3, 0)[0] == 0
    # x = 2^12 (1.0 in Q3.12): sigmoid(1) = 0.7311 -> 0.7311 * 32768 = 23955.8, table interpolation 23955
    assert abs(int(lq.logistic16(np.array([4096]))[0]) - 23956) <= 1


def test_cell_scale_bounds_the_sequence():
    """|c_t| < t: T = 49 frames need a range of 49 -> 2^-9 (32767 * 2^-9 = 64); a clip of 3 -> 2^-13 (4)."""
    assert cell_scale(49, 0.0) == 2.0 ** -9
    assert cell_scale(49, 3.0) == 2.0 ** -13
    assert cell_scale(1, 0.0) == 2.0 ** -15


def test_variable_state_survives_tflite_round_trip():
    g, x = lstm_graph(7, "int8")
    back = tflite_bytes_to_graph(graph_to_tflite_bytes(g))
    node = back.nodes[0]
    assert back.tensors[node.inputs[18]].variable and back.tensors[node.inputs[19]].variable
    assert back.inputs == [node.inputs[0]]
    np.testing.assert_array_equal(Interpreter(back).run(x)[0], Interpreter(g).run(x)[0])


def test_variants_and_non_variable_state_are_refused():
    g, x = lstm_graph(3, "float32")
    node = g.nodes[0]
    s = g.tensors[node.inputs[18]].shape[1]
    g.add_tensor(Tensor("peep", (s,), data=np.ones(s, np.float32)))
    node.inputs[9] = "peep"
    with pytest.raises(UnsupportedOpError, match="peephole"):
        Interpreter(g)
    g, x = lstm_graph(3, "float32")
    g.tensors[g.nodes[0].inputs[18]].variable = False
    g.inputs.append(g.nodes[0].inputs[18])
    with pytest.raises(UnsupportedOpError, match="not a variable tensor"):
        Interpreter(g)


# -- conversion and the doors -----------------------------------------------------------------------------

def _kws(rnn: str, layers: int = 1, hidden: int = 8):
    import torch

    class Kws(torch.nn.Module):
        """A keyword-spotting-like recurrent classifier: 10 frames of 6 features, the last step classified."""

        def __init__(self):
            super().__init__()
            self.rnn = getattr(torch.nn, rnn)(6, hidden, num_layers=layers, batch_first=True)
            self.fc = torch.nn.Linear(hidden, 4)

        def forward(self, x):
            y, _ = self.rnn(x)
            return self.fc(y[:, -1])

    torch.manual_seed(layers)
    return Kws().eval()


@pytest.mark.parametrize("rnn,layers", [("LSTM", 1), ("LSTM", 2), ("GRU", 1)])
def test_torch_door_matches_pytorch(rnn, layers):
    g = assert_torch_matches(_kws(rnn, layers), (10, 6), atol=2e-5)
    ops_used = {n.op for n in g.nodes}
    assert (OP in ops_used) == (rnn == "LSTM")


def _state_model(rnn: str):
    import torch

    class WithState(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = getattr(torch.nn, rnn)(4, 5, batch_first=True)

        def forward(self, x, h, c):
            if rnn == "LSTM":
                y, (h2, c2) = self.rnn(x, (h, c))
                return y, h2, c2
            y, h2 = self.rnn(x, h + c)
            return y, h2

    torch.manual_seed(3)
    return WithState().eval()


@pytest.mark.parametrize("rnn", ["LSTM", "GRU"])
def test_torch_door_state_as_inputs_and_outputs(rnn):
    """The recurrent state comes in as graph inputs and goes out as outputs: unrolled per step."""
    import torch

    from tinyopt.graph.torch_import import from_torch

    m = _state_model(rnn)
    shapes = [(3, 4), (1, 5), (1, 5)]
    g = from_torch(m, shapes)
    assert OP not in {n.op for n in g.nodes}
    rng = np.random.default_rng(0)
    xs = [rng.normal(size=(2, *s)).astype(np.float32) for s in shapes]
    with torch.no_grad():
        want = [torch.cat(t).numpy() for t in zip(*[m(*[torch.from_numpy(x[r:r + 1]) for x in xs])
                                                     for r in range(2)])]
    got = Interpreter(g).run([to_nhwc(x) for x in xs])
    assert len(got) == len(want)
    for a, w in zip(got, want):
        np.testing.assert_allclose(from_graph_layout(a, w.shape), w, atol=2e-5)


def test_torch_door_refusals():
    import torch

    from tinyopt.graph.torch_import import from_torch

    class Bi(torch.nn.Module):
        def __init__(self, **kw):
            super().__init__()
            self.rnn = torch.nn.LSTM(4, 3, **kw)

        def forward(self, x):
            return self.rnn(x)[0]

    with pytest.raises(UnsupportedOpError, match="bidirectional"):
        from_torch(Bi(batch_first=True, bidirectional=True), (5, 4))
    with pytest.raises(UnsupportedOpError, match="batch_first=False"):
        from_torch(Bi(), (5, 4))


def _onnx_recurrent(tmp_path, op: str, with_state: bool, seed: int = 0, linear_before_reset: int = 0,
                    layout: int = 1):
    """A hand-built ONNX LSTM / GRU with a Gemm head on Y_h: batch-major X (layout=1, what tinyopt reads), or
    its time-major twin (layout=0, what ONNX Runtime runs; with batch 1 the same bytes)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    t, i, h = 6, 5, 4
    gates = 4 if op == "LSTM" else 3
    inits = [numpy_helper.from_array(rng.normal(0, 0.5, size=(1, gates * h, i)).astype(np.float32), "W"),
             numpy_helper.from_array(rng.normal(0, 0.5, size=(1, gates * h, h)).astype(np.float32), "R"),
             numpy_helper.from_array(rng.normal(0, 0.2, size=(1, 2 * gates * h)).astype(np.float32), "B"),
             numpy_helper.from_array(rng.normal(0, 0.5, size=(3, h)).astype(np.float32), "fcw")]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, t, i] if layout else [t, 1, i])]
    rnn_ins = ["x", "W", "R", "B", ""]
    if with_state:
        inputs.append(helper.make_tensor_value_info("h0", TensorProto.FLOAT, [1, 1, h]))
        rnn_ins.append("h0")
        if op == "LSTM":
            inputs.append(helper.make_tensor_value_info("c0", TensorProto.FLOAT, [1, 1, h]))
            rnn_ins.append("c0")
    attrs = {"hidden_size": h, "layout": layout}
    if op == "GRU":
        attrs["linear_before_reset"] = linear_before_reset
    outs = ["Y", "Y_h"] + (["Y_c"] if op == "LSTM" else [])
    nodes = [helper.make_node(op, rnn_ins, outs, **attrs),
             helper.make_node("Reshape", ["Y_h", "shape"], ["hflat"]),
             helper.make_node("Gemm", ["hflat", "fcw"], ["logits"], transB=1)]
    inits.append(numpy_helper.from_array(np.array([1, h], np.int64), "shape"))
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3])]
    if with_state:
        outputs.append(helper.make_tensor_value_info("Y", TensorProto.FLOAT,
                                                     [1, t, 1, h] if layout else [t, 1, 1, h]))
        if op == "LSTM":
            outputs.append(helper.make_tensor_value_info("Y_c", TensorProto.FLOAT, [1, 1, h]))
    model = helper.make_model(helper.make_graph(nodes, "rnn", inputs, outputs, inits),
                              opset_imports=[helper.make_opsetid("", 14)])
    onnx.checker.check_model(model)
    path = tmp_path / f"{op}_{layout}.onnx"
    onnx.save(model, str(path))
    return path, [tuple(d.dim_value for d in v.type.tensor_type.shape.dim) for v in inputs]


@pytest.mark.parametrize("op,with_state,lbr", [("LSTM", False, 0), ("LSTM", True, 0), ("GRU", False, 0),
                                               ("GRU", True, 0), ("GRU", True, 1)])
def test_onnx_door_matches_onnxruntime(tmp_path, op, with_state, lbr):
    import onnxruntime as ort

    from tinyopt.graph.onnx_import import load_onnx

    path, shapes = _onnx_recurrent(tmp_path, op, with_state, linear_before_reset=lbr)
    # ORT has no layout=1
    twin, _ = _onnx_recurrent(tmp_path, op, with_state, linear_before_reset=lbr, layout=0)
    g = load_onnx(path)
    assert (OP in {n.op for n in g.nodes}) == (op == "LSTM" and not with_state)
    sess = ort.InferenceSession(str(twin), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    xs = [rng.normal(size=(3, *s[1:])).astype(np.float32) for s in shapes]
    names = [i.name for i in sess.get_inputs()]
    feeds = [{n: (x[r:r + 1].reshape(x.shape[1], 1, -1) if n == "x"
                  else x[r:r + 1]) for n, x in zip(names, xs)}
             for r in range(3)]
    want = [np.stack([o.ravel() for o in t]) for t in zip(*[sess.run(None, f) for f in feeds])]
    # X, read only by the recurrent layer, is a plain (N, T, features) sequence; the states are (N, C, L)
    got = Interpreter(g).run([to_nhwc(x) if len(g.tensors[t].shape) == 4 else x
                              for x, t in zip(xs, g.inputs)])
    assert g.tensors[g.inputs[0]].shape == (1, 6, 5)
    assert len(got) == len(want)
    for a, w in zip(got, want):  # every output is plain (batch, ...) in the framework's order
        np.testing.assert_allclose(a.reshape(3, -1), w, atol=2e-5)


def test_onnx_door_refuses_reverse_and_time_major(tmp_path):
    import onnx

    from tinyopt.graph.onnx_import import load_onnx

    path, _ = _onnx_recurrent(tmp_path, "LSTM", False)
    model = onnx.load(str(path))
    for attr in model.graph.node[0].attribute:
        if attr.name == "layout":
            attr.i = 0
    onnx.save(model, str(path))
    with pytest.raises(UnsupportedOpError, match="layout=0"):
        load_onnx(path)
    model.graph.node[0].attribute.append(onnx.helper.make_attribute("direction", "bidirectional"))
    onnx.save(model, str(path))
    with pytest.raises(TinyoptError, match="bidirectional"):
        load_onnx(path)


@pytest.mark.parametrize("rnn", ["LSTM", "GRU"])
def test_converted_kws_model_matches_tflm(rnn):
    """The float graph of the keyword-spotting-like model converted to int8 runs bit-exact in TFLM."""
    import torch

    from tinyopt.convert import convert_graph
    from tinyopt.graph.torch_import import from_torch

    m = _kws(rnn)
    g = from_torch(m, (10, 6))
    calib = to_nhwc(torch.randn(32, 10, 6, generator=torch.Generator().manual_seed(0)).numpy())
    q = convert_graph(g, calib)
    if rnn == "LSTM":
        node = next(n for n in q.nodes if n.op == OP)
        cell = q.tensors[node.inputs[19]]
        assert cell.dtype == "int16" and cell.variable and float(cell.quant.scale[0]) == cell_scale(10, 0.0)
        assert q.tensors[node.inputs[18]].quant == q.tensors[node.outputs[0]].quant
    rng = np.random.default_rng(2)
    s, z = q.tensors[q.inputs[0]].quant.scale[0], q.tensors[q.inputs[0]].quant.zero_point[0]
    xq = np.clip(np.round(calib[:6] / s) + z, -128, 127).astype(np.int8)
    xq[0] = rng.integers(-128, 128, size=xq[0].shape)
    ours = assert_matches_reference(q, xq)[0]
    # int8 stays close to the float model: the argmax agrees on most rows
    fl = Interpreter(g).run(calib[:6])[0]
    so, zo = q.tensors[q.outputs[0]].quant.scale[0], q.tensors[q.outputs[0]].quant.zero_point[0]
    assert np.abs((ours[1:].astype(np.float32) - zo) * so - fl[1:]).max() < 0.25


@needs_cc
@pytest.mark.parametrize("seed", range(8))
def test_c_library_equals_runtime_and_tflm(seed, tmp_path):
    """kernels/lstm.c (int8, one sequence from the reset state) on the seeded int8 layers above (cell clip on
    some): host library = numpy runtime = TFLM."""
    g, x = lstm_graph(seed, "int8")
    want = assert_matches_reference(g, x)[0]
    assert_c_equals_runtime(g, x, tmp_path)
    np.testing.assert_array_equal(c_library_outputs(g, x, tmp_path / "b"), want.reshape(len(x), -1))


@needs_cc
def test_c_library_of_a_converted_keyword_spotting_lstm_equals_tflm(tmp_path):
    """A model-level check: nn.LSTM + dense head through the PyTorch door, converted to int8 (one fused
    UNIDIRECTIONAL_SEQUENCE_LSTM), its C library = TFLM; a 16x8 LSTM is refused by name."""
    import torch

    from tinyopt.convert import convert_graph
    from tinyopt.export.c import generate_sources
    from tinyopt.graph.torch_import import from_torch

    g = from_torch(_kws("LSTM"), (10, 6))
    calib = to_nhwc(torch.randn(32, 10, 6, generator=torch.Generator().manual_seed(0)).numpy())
    q = convert_graph(g, calib)
    assert OP in [n.op for n in q.nodes]
    xq = random_int8(np.random.default_rng(4), (6, *q.tensors[q.inputs[0]].shape[1:]))
    want = assert_matches_reference(q, xq)[0]
    np.testing.assert_array_equal(c_library_outputs(q, xq, tmp_path), want.reshape(len(xq), -1))
    g16, _ = lstm_graph(0, "int16")
    with pytest.raises(UnsupportedOpError, match="16x8"):
        generate_sources(g16)


def test_cortex_m4_equals_host(tmp_path):
    """The LSTM library cross-compiled for the Cortex-M4 (MPS2-AN386 under qemu) gives the host's bytes."""
    import shutil

    from tinyopt.export.c import generate_sources, write_library
    from tinyopt.export.c.board import build_m4, run_qemu

    if not (shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm") and shutil.which("cc")):
        pytest.skip("Cortex-M toolchain, qemu or host compiler absent")
    g, x = lstm_graph(5, "int8")
    lib = generate_sources(g)
    write_library(lib.files, tmp_path / "lib")
    outs, _ = run_qemu(build_m4(tmp_path / "lib", tmp_path / "m4", x[:3]).elf, lib.output_bytes)
    np.testing.assert_array_equal(outs, c_library_outputs(g, x[:3], tmp_path / "host"))


def _cell_gate_only(xs: float, ws: float, acc: int):
    """One step, one unit, every state at 2^-15: only the cell gate has input weights (k of them, summing to
    acc for an input of ones); the other gates sit at sigmoid(0) = 1/2, so h = tanh(i g) / 2 is small enough
    for the int8 output at 2^-15 to show a one-unit change of the cell gate's pre-activation."""
    row = weights_summing_to(acc)
    k = len(row)
    ins: list = [None] * 24
    ins[0] = qtensor("x", (1, 1, k), xs, 0)
    for j in range(1, 9):
        shp, s = ((1, k), ws if j == 3 else 0.01) if j <= 4 else ((1, 1), 0.01)
        w = (row if j == 3 else np.zeros(shp)).reshape(shp).astype(np.int8)
        ins[j] = qtensor(f"w{j}", shp, s, 0, data=w)
        if j <= 4:
            ins[j + 11] = qtensor(f"b{j}", (1,), np.float32(xs) * np.float32(s), 0, dtype="int32",
                                  data=np.zeros(1, np.int32))
    ins[18] = Tensor("h", (1, 1), "int8", quant=QuantParams(2.0 ** -15, 0), variable=True)
    ins[19] = Tensor("c", (1, 1), "int16", quant=QuantParams(2.0 ** -15, 0), variable=True)
    g = single_op_model(OP, ins, qtensor("y", (1,), 2.0 ** -15, 0),
                        {"activation": "TANH", "cell_clip": 0.0, "time_major": False})
    return g, np.ones((1, 1, k), np.int8)


# (input scale, cell-gate weight scale, acc, TFLM's output). s_in s_w / 2^-12 in double puts the cell gate's
# pre-activation at 58 and 56 (units of 2^-12), the float32 product at 59 and 57 (acc m / 2^31 on a rounding
# tie); one unit there is three at the output: TFLM's 116 and 112 against 119 and 115.
LSTM_TIES = [(0.03990593180060387, 0.006278900429606438, 57, 116),
             (0.07244406640529633, 0.0011629797518253326, 163, 112)]


@needs_cc
@pytest.mark.parametrize("xs,ws,acc,want", LSTM_TIES)
def test_gate_multiplier_is_the_double_product_on_a_rounding_tie(xs, ws, acc, want, tmp_path):
    """TFLM's gate FC multipliers come from the double product of the scales: the runtime and the C library
    give its output where the float32 product gives another."""
    import dataclasses

    from runtime._reference import run_tflm
    from tinyopt.runtime.fixedpoint import quantize_multiplier

    g, x = _cell_gate_only(xs, ws, acc)
    assert int(run_tflm(graph_to_tflite_bytes(g), [x])[0].ravel()[0]) == want
    interp = Interpreter(g)
    assert int(interp.run(x)[0].ravel()[0]) == want
    assert int(c_library_outputs(g, x, tmp_path).ravel()[0]) == want
    p = interp.params[0]
    m, s = quantize_multiplier(float(np.float32(np.float32(xs) * np.float32(ws))) / 2.0 ** -12)
    old = dict(input_multiplier=(*p.input_multiplier[:2], m, p.input_multiplier[3]),
               input_shift=(*p.input_shift[:2], s, p.input_shift[3]))
    interp.params[0] = dataclasses.replace(p, **old)
    assert int(interp.run(x)[0].ravel()[0]) != want  # the float32 product misses it
