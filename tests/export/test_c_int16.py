"""The C library's 16x8 kernels (kernels/*_int16.c): host builds (-std=c99 -Wall -Wextra -Werror -pedantic)
equal the numpy runtime bit for bit on seeded random layers of every kind (the runtime equals TFLM, see
tests/ops/test_int16.py), converted 16x8 networks equal TFLM, and the Cortex-M4 build under qemu equals the
host. The generator's int16 plumbing: typed invoke, even arena offsets, one dtype per side of invoke."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tinyopt import zoo
from tinyopt.convert import convert_graph, torch_to_graph_layout
from tinyopt.errors import UnsupportedOpError
from tinyopt.export.c import generate_sources, write_library
from tinyopt.export.c.board import build_host, build_m4, require, run_host, run_qemu
from tinyopt.export.tflite import graph_to_tflite_bytes, single_op_model
from tinyopt.graph.ir import Tensor
from tinyopt.graph.torch_import import from_torch
from tinyopt.ops.add import Add
from tinyopt.ops.average_pool_2d import AveragePool2D
from tinyopt.ops.concatenation import Concatenation
from tinyopt.ops.conv_2d import Conv2D
from tinyopt.ops.depthwise_conv_2d import DepthwiseConv2D
from tinyopt.ops.fully_connected import FullyConnected
from tinyopt.ops.logistic import Logistic
from tinyopt.ops.max_pool_2d import MaxPool2D
from tinyopt.ops.mean import Mean
from tinyopt.ops.mul import Mul
from tinyopt.ops.pad import Pad
from tinyopt.ops.quantize import Quantize
from tinyopt.ops.relu import Relu
from tinyopt.ops.relu6 import Relu6
from tinyopt.ops.softmax import Softmax
from tinyopt.ops.sub import Sub
from tinyopt.ops.tanh import Tanh
from tinyopt.ops.transpose import Transpose
from tinyopt.runtime import Interpreter

sys.path.insert(0, str(Path(__file__).parents[1]))
from ops.test_int16 import binary, q16, random_int16, scale, weighted_layer
from runtime._reference import qtensor, run_tflm

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="no host C compiler (cc)")


def c_outputs(graph, inputs: list[np.ndarray], tmp: Path) -> np.ndarray:
    """The host library's outputs for rows of the graph's one or two inputs (several inputs lie back to
    back in invoke's buffer), as the output's dtype."""
    lib = generate_sources(graph)
    write_library(lib.files, tmp / "lib")
    exe = build_host(tmp / "lib", tmp / "infer")
    rows = np.concatenate([np.ascontiguousarray(a).reshape(len(a), -1).view(np.int8) for a in inputs], axis=1)
    out_dtype = np.int16 if graph.tensors[graph.outputs[0]].dtype == "int16" else np.int8
    return run_host(exe, rows, lib.output_bytes, out_dtype)


def assert_c_equals_runtime(graph, inputs, tmp: Path) -> np.ndarray:
    inputs = inputs if isinstance(inputs, list) else [inputs]
    ref = Interpreter(graph).run(inputs)[0]
    ours = c_outputs(graph, inputs, tmp)
    np.testing.assert_array_equal(ours, ref.reshape(len(ref), -1))
    return ours


# -- every kernel against the runtime -----------------------------------------------------------------------

@pytest.mark.parametrize("op", [Conv2D.name, DepthwiseConv2D.name, FullyConnected.name])
@pytest.mark.parametrize("seed", range(0, 50, 7))
def test_weighted_layers(op, seed, tmp_path):
    g, rng = weighted_layer(seed, op, "int32" if seed % 3 == 1 and op != DepthwiseConv2D.name else "int64")
    assert_c_equals_runtime(g, random_int16(rng, (6, *g.tensors["x"].shape[1:])), tmp_path)


def test_dense_offsets_and_per_tensor_scale(tmp_path):
    """Input and output zero points (applied as TFLM applies them) and one weight scale per tensor."""
    rng = np.random.default_rng(7)
    w = rng.integers(-127, 128, (5, 9)).astype(np.int8)
    g = single_op_model(FullyConnected.name, [
        q16("x", (1, 9), 0.001, 37), qtensor("w", (5, 9), 0.01, 0, data=w),
        qtensor("b", (5,), 1e-5, 0, data=rng.integers(-1000, 1000, 5).astype(np.int64), dtype="int64")],
        q16("y", (1,), 0.05, -12), dict(activation="RELU"))
    assert_c_equals_runtime(g, random_int16(rng, (8, 9)), tmp_path)


@pytest.mark.parametrize("op", [Add.name, Sub.name, Mul.name])
@pytest.mark.parametrize("seed", range(0, 50, 7))
def test_arithmetic_with_broadcasting(op, seed, tmp_path):
    g, x = binary(seed, op)
    assert_c_equals_runtime(g, x, tmp_path)


@pytest.mark.parametrize("op", [Add.name, Mul.name])
def test_arithmetic_with_a_constant_operand(op, tmp_path):
    rng = np.random.default_rng(3)
    c = rng.integers(-32768, 32768, (1, 1, 1, 5)).astype(np.int16)
    g = single_op_model(op, [q16("a", (1, 3, 4, 5), 0.001),
                             qtensor("c", c.shape, 0.002, 0, data=c, dtype="int16")],
                        q16("y", (1,), 0.004), dict(activation="NONE"))
    assert_c_equals_runtime(g, random_int16(rng, (4, 3, 4, 5)), tmp_path)


@pytest.mark.parametrize("op", [Logistic.name, Tanh.name])
@pytest.mark.parametrize("s", [2.0 ** -12, 2.0 ** -11, 2.0 ** -15, 3e-4, 0.37])
def test_sigmoid_and_tanh_on_every_input(op, s, tmp_path):
    g = single_op_model(op, [q16("x", (1, 256), s)], q16("y", (1,), 1.0 / 32768))
    assert_c_equals_runtime(g, np.arange(-32768, 32768, dtype=np.int16).reshape(256, 256), tmp_path)


@pytest.mark.parametrize("op", [Relu.name, Relu6.name])
def test_relu_and_relu6_on_every_input(op, tmp_path):
    g = single_op_model(op, [q16("x", (1, 256), 2.0 ** -9)],
                        q16("y", (1,), 2.0 ** -9 if op == Relu6.name else 1e-3))
    assert_c_equals_runtime(g, np.arange(-32768, 32768, dtype=np.int16).reshape(256, 256), tmp_path)


@pytest.mark.parametrize("seed", range(4))
def test_softmax(seed, tmp_path):
    rng = np.random.default_rng(300 + seed)
    depth, rows = int(rng.integers(1, 40)), int(rng.integers(1, 4))
    g = single_op_model(Softmax.name, [q16("x", (1, rows, depth), scale(rng, -16, -4))],
                        q16("y", (1,), 1.0 / 32768), {"beta": float(rng.choice([1.0, 0.5, 2.0]))})
    x = random_int16(rng, (8, rows, depth))
    x[3] = 0
    assert_c_equals_runtime(g, x, tmp_path)


@pytest.mark.parametrize("op", [MaxPool2D.name, AveragePool2D.name])
@pytest.mark.parametrize("seed", range(3))
def test_pooling(op, seed, tmp_path):
    rng = np.random.default_rng(500 + seed)
    s = scale(rng)
    attrs = dict(filter=(3, 2), stride=(2, 1 + seed % 2), padding=("SAME", "VALID")[seed % 2],
                 activation=("NONE", "RELU", "RELU6")[seed])
    g = single_op_model(op, [q16("x", (1, 7, 6, 3), s)], q16("y", (1,), s), attrs)
    assert_c_equals_runtime(g, random_int16(rng, (5, 7, 6, 3)), tmp_path)


@pytest.mark.parametrize("seed", range(6))
def test_mean(seed, tmp_path):
    rng = np.random.default_rng(600 + seed)
    shape = (1, *(int(d) for d in rng.integers(1, 7, 3)))
    axes = sorted(int(a) for a in rng.choice([1, 2, 3], size=int(rng.integers(1, 4)), replace=False))
    g = single_op_model(Mean.name, [q16("x", shape, scale(rng)), Tensor("a", (len(axes),), "int32",
                                                                       data=np.array(axes, np.int32))],
                        q16("y", (1,), scale(rng)), {"keep_dims": bool(seed % 2)})
    assert_c_equals_runtime(g, random_int16(rng, (5, *shape[1:])), tmp_path)


@pytest.mark.parametrize("seed", range(4))
def test_concatenation_and_pad(seed, tmp_path):
    rng = np.random.default_rng(700 + seed)
    s = scale(rng)
    shape = (1, *(int(d) for d in rng.integers(1, 5, 3)))
    axis = 1 + seed % 3
    other = list(shape)
    other[axis] = int(rng.integers(1, 4))
    g = single_op_model(Concatenation.name, [q16("a", shape, s), q16("b", tuple(other), s)],
                        q16("y", (1,), s), {"axis": axis, "activation": "NONE"})
    assert_c_equals_runtime(g, [random_int16(rng, (4, *shape[1:])), random_int16(rng, (4, *other[1:]))],
                            tmp_path / "concat")
    pads = np.zeros((4, 2), np.int32)
    pads[1:] = rng.integers(0, 3, (3, 2))
    g = single_op_model(Pad.name, [q16("x", shape, s), Tensor("p", (4, 2), "int32", data=pads)],
                        q16("y", (1,), s))
    assert_c_equals_runtime(g, random_int16(rng, (4, *shape[1:])), tmp_path / "pad")


@pytest.mark.parametrize("kind", ["s16_s16", "s16_s8", "s8_s16"])
def test_requantizations(kind, tmp_path):
    rng = np.random.default_rng(9)
    x = q16("x", (1, 40), 0.0003) if kind.startswith("s16") else qtensor("x", (1, 40), 0.05, -7)
    y = q16("y", (1,), 0.0007) if kind.endswith("s16") else qtensor("y", (1,), 0.03, 11)
    g = single_op_model(Quantize.name, [x], y)
    xs = (random_int16(rng, (6, 40)) if kind.startswith("s16")
          else rng.integers(-128, 128, (6, 40)).astype(np.int8))
    out = assert_c_equals_runtime(g, xs, tmp_path)
    assert out.dtype == (np.int16 if kind.endswith("s16") else np.int8)
    assert f"requantize_{kind}" in generate_sources(g).files["tinyopt_model.c"]


# -- networks -----------------------------------------------------------------------------------------------

def gap_cnn():
    """Convolutions, then a global average pool (MEAN over H and W), then a dense layer."""
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Conv2d(4, 8, 3, stride=2),
                               torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                               torch.nn.Linear(8, 5)).eval()


def converted(name: str, n: int = 48):
    torch.manual_seed(0)
    model = gap_cnn() if name == "gap_cnn" else zoo.build(name).eval()
    shape = (1, 12, 12) if name == "gap_cnn" else zoo.input_shape(name)
    x = torch_to_graph_layout(np.random.default_rng(1).normal(0, 1, (n, *shape)).astype(np.float32), shape)
    g = convert_graph(from_torch(model, shape), x, activations="int16")
    s = float(g.tensors[g.inputs[0]].quant.scale[0])
    xq = np.clip(np.round(x[:8] / s), -32768, 32767).astype(np.int16)
    xq[0] = np.random.default_rng(5).integers(-32768, 32768, xq[0].shape)
    return g, xq


@pytest.mark.parametrize("name", ["digits_cnn", "dscnn", "resnet8", "gap_cnn"])
def test_converted_16x8_network_equals_tflm(name, tmp_path):
    """conv, depthwise, pooling, residual ADD, MEAN, dense: the whole 16x8 library equals TFLM on the
    model."""
    g, xq = converted(name)
    if name == "gap_cnn":
        assert Mean.name in {n.op for n in g.nodes}
    ours = c_outputs(g, [xq], tmp_path)
    ref = run_tflm(graph_to_tflite_bytes(g), [xq])[0]
    np.testing.assert_array_equal(ours, ref.reshape(len(ref), -1))
    assert len({r.tobytes() for r in ref}) > 1


def activation_net():
    """A dense layer, TANH, MUL/SUB by constants, LOGISTIC, SOFTMAX and an int16 -> int8 QUANTIZE at the end
    (the softmax requantized to 1/256, zero point -128): int16 in, int8 out; and int16 input rows."""
    from tinyopt.graph.ir import Node

    torch.manual_seed(0)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(12, 6)

        def forward(self, x):
            h = torch.tanh(self.fc(x))
            return torch.softmax(torch.sigmoid(h * 1.5 - 0.25) * 4.0, dim=1)

    x = np.random.default_rng(0).normal(0, 1, (64, 12)).astype(np.float32)
    g = convert_graph(from_torch(Net().eval(), (12,)), x, activations="int16")
    out = g.tensors[g.outputs[0]]
    y8 = g.unique_name("y8")
    g.add_tensor(qtensor(y8, out.shape, 1.0 / 256, -128))
    g.add_node(Node(y8, Quantize.name, [out.name], [y8]))
    g.outputs = [y8]
    g.validate()
    s = float(g.tensors[g.inputs[0]].quant.scale[0])
    return g, np.clip(np.round(x[:10] / s), -32768, 32767).astype(np.int16)


def test_network_with_softmax_tanh_and_mixed_edges_equals_tflm(tmp_path):
    """Every element-wise 16x8 kernel kind in one library, int16 in and int8 out."""
    g, xq = activation_net()
    assert {n.op for n in g.nodes} >= {FullyConnected.name, Tanh.name, Mul.name, Logistic.name, Softmax.name,
                                       Quantize.name}
    ours = c_outputs(g, [xq], tmp_path)
    assert ours.dtype == np.int8
    np.testing.assert_array_equal(ours, run_tflm(graph_to_tflite_bytes(g), [xq])[0].reshape(10, -1))


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
                    reason="no arm-none-eabi-gcc or qemu-system-arm")
@pytest.mark.parametrize("net", ["resnet8", "activations"])
def test_cortex_m4_under_qemu_equals_host(net, tmp_path):
    """Built for the MPS2-AN386 Cortex-M4 and run under qemu, the 16x8 libraries give the host build's
    outputs: resnet8 (conv, residual ADD, average pool, dense; int16 out) and the activation network (TANH,
    MUL, SUB, LOGISTIC, SOFTMAX, QUANTIZE to int8 out)."""
    require("arm-none-eabi-gcc")
    g, xq = converted("resnet8") if net == "resnet8" else activation_net()
    dtype = np.int16 if g.tensors[g.outputs[0]].dtype == "int16" else np.int8
    lib = generate_sources(g)
    write_library(lib.files, tmp_path / "lib")
    rows = xq[:3].reshape(3, -1)
    host = run_host(build_host(tmp_path / "lib", tmp_path / "infer"), rows, lib.output_bytes, dtype)
    build = build_m4(tmp_path / "lib", tmp_path / "m4", rows)
    m4, counts = run_qemu(build.elf, lib.output_bytes, dtype=dtype)
    np.testing.assert_array_equal(m4, host)
    assert (counts > 0).all()


# -- the generator's int16 plumbing -------------------------------------------------------------------------

def test_typed_invoke_and_even_offsets():
    g, _ = converted("digits_cnn", 16)
    lib = generate_sources(g)
    h, c = lib.files["tinyopt_model.h"], lib.files["tinyopt_model.c"]
    assert "int tinyopt_invoke(const int16_t *input, int16_t *output);" in h
    assert "typedef int16_t tinyopt_input_t;" in h and "int16_t *tinyopt_input_buffer(void);" in h
    offsets = [int(m) for m in re.findall(r"\(int16_t \*\)\(arena \+ (\d+)\)", c)]
    assert offsets and all(o % 2 == 0 for o in offsets)
    assert all(b.offset % 2 == 0 for b in lib.plan.planner.buffers.values())
    # an int8 model keeps its int8 interface
    w = qtensor("w", (2, 4), 0.1, 0, data=np.ones((2, 4), np.int8))
    g8 = single_op_model(FullyConnected.name, [qtensor("x", (1, 4), 0.1, 0), w], qtensor("y", (1,), 0.1, 0),
                         {"activation": "NONE"})
    header = generate_sources(g8).files["tinyopt_model.h"]
    assert "int tinyopt_invoke(const int8_t *input, int8_t *output);" in header


def test_mixed_input_dtypes_and_an_operator_without_int16_c_kernel_are_refused():
    g = single_op_model(Add.name, [q16("a", (1, 4), 0.01), q16("b", (1, 4), 0.01)], q16("y", (1,), 0.02),
                        {"activation": "NONE"})
    a = g.tensors["a"]
    g.tensors["a"] = Tensor("a", a.shape, "int8", quant=a.quant)
    with pytest.raises(UnsupportedOpError, match="the graph inputs mix int16 and int8"):
        generate_sources(g)
    perm = Tensor("perm", (4,), "int32", data=np.array([0, 2, 1, 3], np.int32))
    m = single_op_model(Transpose.name, [q16("x", (1, 3, 4, 2), 0.01), perm], q16("y", (1,), 0.01))
    with pytest.raises(UnsupportedOpError, match="node 0 'y' \\(TRANSPOSE\\).*int16.*Fix:"):
        generate_sources(m)
