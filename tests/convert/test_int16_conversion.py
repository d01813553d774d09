"""16x8 conversion (issue #14): float models → int16 activations, int8 weights, int64 biases, through
``convert_graph(activations="int16")``, ``tinyopt.convert(..., activations="int16")`` and ``tinyopt convert
--activations int16``. The converted models run in TFLM bit for bit as in our runtime, and stay closer to
the float model than their int8 twins."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import tinyopt
from tinyopt import zoo
from tinyopt.cli import main
from tinyopt.convert import convert_graph, torch_to_graph_layout
from tinyopt.errors import ConfigError, UnsupportedOpError
from tinyopt.export.tflite import graph_to_tflite_bytes
from tinyopt.graph.torch_import import from_torch
from tinyopt.runtime import Interpreter

sys.path.insert(0, str(Path(__file__).parents[1]))
from runtime._reference import assert_matches_reference, run_tflm

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def quantize16(g, x_graph_layout: np.ndarray) -> np.ndarray:
    s = float(g.tensors[g.inputs[0]].quant.scale[0])
    return np.clip(np.round(x_graph_layout / s), -32768, 32767).astype(np.int16)


def output_error(g, out: np.ndarray, ref: np.ndarray) -> float:
    q = g.tensors[g.outputs[0]].quant
    deq = (out.astype(np.float32) - q.zero_point[0]) * q.scale[0]
    return float(np.abs(deq.reshape(ref.shape) - ref).max())


@pytest.mark.parametrize("name", ["lenet5", "dscnn", "resnet8"])
def test_zoo_cnn_at_16x8_runs_in_tflm_and_beats_int8(name):
    """Every activation int16 with zero point 0, every bias int64, weights int8; TFLM computes our bytes;
    the dequantized output is nearer the float model than the int8 conversion's."""
    torch.manual_seed(0)
    model = zoo.build(name).eval()
    shape = zoo.input_shape(name)
    calib = np.random.default_rng(1).normal(0, 1, (48, *shape)).astype(np.float32)
    fg = from_torch(model, shape)
    x = torch_to_graph_layout(calib, shape)
    g16 = convert_graph(fg, x, activations="int16")
    acts = [t for t in g16.activations()]
    assert {t.dtype for t in acts} == {"int16"} and all(int(t.quant.zero_point[0]) == 0 for t in acts)
    weighted = [n for n in g16.nodes if len(n.inputs) > 2 and n.inputs[2]]
    assert weighted and all(g16.tensors[n.inputs[1]].dtype == "int8"
                            and g16.tensors[n.inputs[2]].dtype == "int64"
                            for n in weighted)
    xq = quantize16(g16, x[:12])
    out16 = assert_matches_reference(g16, xq)[0]
    g8 = convert_graph(fg, x, activations="int8")
    s8, z8 = g8.tensors[g8.inputs[0]].quant.scale[0], g8.tensors[g8.inputs[0]].quant.zero_point[0]
    out8 = Interpreter(g8).run(np.clip(np.round(x[:12] / s8) + z8, -128, 127).astype(np.int8))[0]
    with torch.no_grad():
        ref = model(torch.from_numpy(calib[:12])).numpy()
    e16, e8 = output_error(g16, out16, ref), output_error(g8, out8, ref)
    assert e16 < 0.75 * e8  # the int8 weights are common to both: activations are what 16 bits refine


def _kws_lstm():
    class Kws(torch.nn.Module):
        """A keyword-spotting-like recurrent classifier: 10 frames of 6 features, the last step classified."""

        def __init__(self):
            super().__init__()
            self.rnn = torch.nn.LSTM(6, 8, batch_first=True)
            self.fc = torch.nn.Linear(8, 4)

        def forward(self, x):
            y, _ = self.rnn(x)
            return self.fc(y[:, -1])

    torch.manual_seed(1)
    return Kws().eval()


def test_keyword_spotting_lstm_at_16x8_runs_in_tflm():
    """The LSTM's 16x8 kernel (int16 input and hidden state, int64 gate biases) with the TRANSPOSE, SLICE,
    RESHAPE and dense layer around it."""
    m = _kws_lstm()
    g = from_torch(m, (10, 6))
    calib = torch.randn(32, 10, 6, generator=torch.Generator().manual_seed(0)).numpy()
    x = torch_to_graph_layout(calib, (10, 6))
    q = convert_graph(g, x, activations="int16")
    lstm = next(n for n in q.nodes if len(n.inputs) == 24)
    assert q.tensors[lstm.inputs[0]].dtype == "int16" and q.tensors[lstm.inputs[12]].dtype == "int64"
    xq = quantize16(q, x[:8])
    xq[0] = np.random.default_rng(3).integers(-32768, 32768, xq[0].shape)
    out = assert_matches_reference(q, xq)[0]
    with torch.no_grad():
        ref = m(torch.from_numpy(calib[1:8])).numpy()
    assert output_error(q, out[1:], ref) < 0.01 * float(np.abs(ref).max())


def test_facade_and_cli_give_the_same_16x8_bytes(tmp_path, capsys):
    """A float .tflite converted by ``tinyopt convert --activations int16`` and by the facade: the same
    bytes; the int16 model infers as TFLM runs it."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                              torch.nn.Flatten(), torch.nn.Linear(4 * 3 * 3, 3),
                              torch.nn.Softmax(dim=1)).eval()
    src = tmp_path / "net_float.tflite"
    src.write_bytes(graph_to_tflite_bytes(from_torch(net, (1, 8, 8))))
    x = np.random.default_rng(0).uniform(-1, 1, (64, 8, 8, 1)).astype(np.float32)  # the file's NHWC
    np.savez(tmp_path / "calib.npz", x=x)
    out = tmp_path / "cli.tflite"
    code = main(["convert", str(src), "--calib", str(tmp_path / "calib.npz"), "--out", str(out),
                 "--activations", "int16"])
    stdout = capsys.readouterr().out
    assert code == 0 and "int16 activations, int16 I/O" in stdout
    m = tinyopt.convert(str(src), calib=x, activations="int16")
    assert m.inputs[0]["dtype"] == "int16"
    api = tinyopt.deploy(m, target="tflite", out=tmp_path / "api.tflite").out
    assert out.read_bytes() == api.read_bytes()
    xq = quantize16(m.graph, x[:8])
    np.testing.assert_array_equal(tinyopt.infer(m, xq), run_tflm(out.read_bytes(), [xq])[0])


def test_bad_activations_option_is_refused(tmp_path, capsys):
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2)).eval()
    x = np.zeros((4, 1, 2, 2), np.float32)
    with pytest.raises(ConfigError, match="unknown --activations 'int4'.*Fix: use int8.*or int16"):
        tinyopt.convert(net, calib=x, example_input=torch.zeros(1, 1, 2, 2), activations="int4")
    np.savez(tmp_path / "calib.npz", x=np.zeros((4, 49, 10, 1), np.float32))
    code = main(["convert", "zoo:dscnn", "--calib", str(tmp_path / "calib.npz"), "--out",
                 str(tmp_path / "o.tflite"), "--activations", "int4"])
    err = capsys.readouterr().err
    assert code == 2 and "unknown --activations" in err and "Traceback" not in err
    assert not (tmp_path / "o.tflite").exists()


def test_operator_without_16x8_kernel_is_named():
    """HARD_SWISH has no 16x8 kernel in TFLM: the conversion names it instead of writing a model TFLM
    cannot run."""
    net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Hardswish()).eval()
    g = from_torch(net, (4,))
    with pytest.raises(UnsupportedOpError,
                       match="HARD_SWISH has no 16x8 kernel in TFLM.*Fix: convert with int8"):
        convert_graph(g, np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32), activations="int16")


def test_16x8_model_file_round_trips():
    """The written .tflite reads back with int16 tensors and int64 biases, and runs as the graph did."""
    from tinyopt.graph.tflite_import import tflite_bytes_to_graph

    torch.manual_seed(0)
    model = zoo.build("digits_cnn").eval()
    shape = zoo.input_shape("digits_cnn")
    x = torch_to_graph_layout(np.random.default_rng(1).normal(0, 1, (16, *shape)).astype(np.float32), shape)
    g = convert_graph(from_torch(model, shape), x, activations="int16")
    back = tflite_bytes_to_graph(graph_to_tflite_bytes(g))
    assert {t.dtype for t in back.activations()} == {"int16"}
    xq = quantize16(g, x)
    np.testing.assert_array_equal(Interpreter(back).run(xq)[0], Interpreter(g).run(xq)[0])


def test_float_io_at_16x8_runs_in_tflm():
    """``io="float"``: a float → int16 QUANTIZE in front, an int16 → float DEQUANTIZE behind, as TFLM runs
    them (the float outputs equal to 1e-5, the int16 inside exactly)."""
    from tinyopt.convert import convert_torch
    from tinyopt.ops.dequantize import Dequantize
    from tinyopt.ops.quantize import Quantize

    torch.manual_seed(0)
    net = zoo.build("digits_cnn").eval()
    shape = zoo.input_shape("digits_cnn")
    x = np.random.default_rng(0).normal(0, 1, (32, *shape)).astype(np.float32)
    g = convert_torch(net, x, shape, activations="int16", io="float")
    assert g.nodes[0].op == Quantize.name and g.nodes[-1].op == Dequantize.name
    assert g.tensors[g.nodes[0].outputs[0]].dtype == "int16"
    assert_matches_reference(g, torch_to_graph_layout(x[:8], shape))


def test_branching_cnn_at_16x8_runs_in_tflm():
    """Two branches concatenated (their outputs requantized to the concatenation's parameters by inserted
    int16 QUANTIZEs), a zero pad, a standalone RELU6, a global average pool (MEAN), the dense head:
    converted at 16x8, the same bytes in TFLM as in our runtime and in the C library."""
    import shutil
    import tempfile

    from tinyopt.export.c import generate_sources, write_library
    from tinyopt.export.c.board import build_host, run_host
    from tinyopt.ops.concatenation import Concatenation
    from tinyopt.ops.mean import Mean
    from tinyopt.ops.pad import Pad
    from tinyopt.ops.quantize import Quantize
    from tinyopt.ops.relu6 import Relu6

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = torch.nn.Conv2d(1, 3, 3, padding=1)
            self.b = torch.nn.Conv2d(1, 2, 1)
            self.pad = torch.nn.ZeroPad2d(1)
            self.c = torch.nn.Conv2d(5, 4, 3, stride=2)
            self.fc = torch.nn.Linear(4, 3)

        def forward(self, x):
            y = torch.nn.functional.relu6(torch.cat([torch.relu(self.a(x)), self.b(x) * 3.0], dim=1))
            return self.fc(torch.relu(self.c(self.pad(y))).mean(dim=(2, 3)))

    torch.manual_seed(0)
    net = Net().eval()
    calib = np.random.default_rng(0).normal(0, 1, (32, 1, 10, 10)).astype(np.float32)
    x = torch_to_graph_layout(calib, (1, 10, 10))
    q = convert_graph(from_torch(net, (1, 10, 10)), x, activations="int16")
    assert {Concatenation.name, Pad.name, Mean.name, Quantize.name, Relu6.name} <= {n.op for n in q.nodes}
    xq = quantize16(q, x[:6])
    out = assert_matches_reference(q, xq)[0]
    with torch.no_grad():
        ref = net(torch.from_numpy(calib[:6])).numpy()
    assert output_error(q, out, ref) < 0.02 * float(np.abs(ref).max())
    if shutil.which("cc") is None:
        return  # the host C compiler is what CI has; the rest needs it
    with tempfile.TemporaryDirectory() as tmp:
        lib = generate_sources(q)
        write_library(lib.files, Path(tmp) / "lib")
        c = run_host(build_host(Path(tmp) / "lib", Path(tmp) / "infer"), xq.reshape(6, -1), lib.output_bytes,
                     np.int16)
    np.testing.assert_array_equal(c, out.reshape(6, -1))
