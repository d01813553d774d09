"""PRELU against TFLM (75 seeded configurations, 56 of them int8, over alpha's broadcast patterns: one value,
per channel, full, partial), a hand calculation, its C kernel against the runtime (in place inside a network),
conversion, and the doors (per-channel slopes move from NCHW to NHWC)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ops._activation import (
    assert_c_matches_runtime,
    converted_matches_tflm,
    needs_cc,
    onnx_graph_matches,
    random_qparams,
    random_shape,
    torch_graph_matches,
)
from runtime._reference import assert_matches_reference, qtensor, random_int8
from tinyopt import ops
from tinyopt.errors import UnsupportedOpError
from tinyopt.export.tflite import single_op_model
from tinyopt.graph.ir import Graph, Node, Tensor
from tinyopt.runtime import Interpreter

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def alpha_shape(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[int, ...]:
    """One of the broadcast patterns of alpha onto a batch-1 input shape."""
    kind = int(rng.integers(0, 5))
    if kind == 0:
        return (1,)                                 # one value
    if kind == 1:
        return (shape[-1],)                         # per channel, rank 1
    if kind == 2:
        return (1,) * (len(shape) - 2) + (shape[-1],)  # per channel, as TFLite's converter writes it
    if kind == 3:
        return tuple(shape[1:])                     # one per element
    return tuple(d if rng.random() < 0.5 else 1 for d in shape[1:])  # partial broadcast


def _model(shape, ash, rng, quantized: bool):
    if not quantized:
        a = (rng.normal(size=ash) * 0.5).astype(np.float32)
        return single_op_model("PRELU", [Tensor("x", shape), Tensor("a", ash, data=a)], Tensor("y", (1,)))
    si, zi = random_qparams(rng)
    sa, za = random_qparams(rng, -3, 0)
    so, zo = si * 10 ** rng.uniform(-1, 1), int(rng.integers(-128, 128))
    a = rng.integers(-128, 128, size=ash).astype(np.int8)
    return single_op_model("PRELU", [qtensor("x", shape, si, zi), qtensor("a", ash, sa, za, data=a)],
                           qtensor("y", (1,), so, zo))


@pytest.mark.parametrize("seed", range(75))
def test_prelu_matches_tflm(seed):
    rng = np.random.default_rng(seed)
    shape = random_shape(rng)
    ash = alpha_shape(rng, shape)
    if seed % 4 == 0:
        g = _model(shape, ash, rng, quantized=False)
        assert_matches_reference(g, rng.normal(size=(5, *shape[1:])).astype(np.float32))
        return
    g = _model(shape, ash, rng, quantized=True)
    assert g.tensors["y"].shape == shape
    assert_matches_reference(g, random_int8(rng, (6, *shape[1:])))


def test_hand_computed_values():
    """Scales: input 0.5 (zero point -10), alpha 0.25 (zero point 0), output 0.5 (zero point 0).
    x = -6 is 2.0 -> 2.0 -> 4; x = -14 is -2.0, alpha q 1 or 3 (0.25, 0.75): -0.5 -> -1 and -1.5 -> -3."""
    a = np.array([1, 3], np.int8)
    g = single_op_model("PRELU", [qtensor("x", (1, 2), 0.5, -10), qtensor("a", (2,), 0.25, 0, data=a)],
                        qtensor("y", (1,), 0.5, 0))
    p = ops.get("PRELU").prepare(g, g.nodes[0], True)
    assert (p.input_offset, p.alpha_offset, p.output_offset) == (10, 0, 0)
    x = np.array([[-6, -14], [-14, -6]], np.int8)
    assert Interpreter(g).run(x)[0].tolist() == [[4, -3], [-1, 4]]
    assert_matches_reference(g, x)


@needs_cc
@pytest.mark.parametrize("ash", [(1,), (8,), (1, 1, 8), (5, 1, 8), (5, 3, 8), (5, 1, 1)])
def test_c_kernel_equals_runtime(ash, tmp_path):
    rng = np.random.default_rng(17 + len(ash))
    g = _model((1, 5, 3, 8), ash, rng, quantized=True)
    assert_c_matches_runtime(g, random_int8(rng, (5, 5, 3, 8)), tmp_path)


@needs_cc
def test_c_kernel_in_place_inside_a_network(tmp_path):
    """PRELU whose output is an arena buffer (the planner may write it over its input), then LEAKY_RELU."""
    rng = np.random.default_rng(18)
    a = rng.integers(-128, 128, size=(1, 1, 6)).astype(np.int8)
    g = Graph("net", source="<net>")
    for t in (qtensor("x", (1, 4, 4, 6), 0.05, 3), qtensor("a", a.shape, 0.01, -4, data=a),
              qtensor("h", (1, 4, 4, 6), 0.04, -1), qtensor("y", (1, 4, 4, 6), 0.03, 2)):
        g.add_tensor(t)
    g.add_node(Node("prelu", "PRELU", ["x", "a"], ["h"], {}))
    g.add_node(Node("leaky", "LEAKY_RELU", ["h"], ["y"], {"alpha": 0.2}))
    g.inputs, g.outputs = ["x"], ["y"]
    g.validate()
    xs = random_int8(rng, (5, 4, 4, 6))
    got = assert_c_matches_runtime(g, xs, tmp_path)
    from tinyopt.export.tflite import graph_to_tflite_bytes
    assert_matches_reference(g, xs, graph_to_tflite_bytes(g))
    assert len({r.tobytes() for r in got}) > 1


@needs_cc
def test_c_generator_refuses_a_computed_alpha(tmp_path):
    from tinyopt.export.c import generate_sources

    g = Graph("net", source="<net>")
    for t in (qtensor("x", (1, 6), 0.05, 3), qtensor("a", (1, 6), 0.01, 0), qtensor("y", (1, 6), 0.05, 3)):
        g.add_tensor(t)
    g.add_node(Node("prelu", "PRELU", ["x", "a"], ["y"], {}))
    g.inputs, g.outputs = ["x", "a"], ["y"]
    g.validate()
    g.inputs = ["x"]  # a second input would be refused first; keep it as a computed (non-constant) alpha
    with pytest.raises(UnsupportedOpError, match=r"PRELU whose alpha is not a constant.*Fix: give alpha"):
        generate_sources(g)


# -- doors -------------------------------------------------------------------------------------------------

class Prelus(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 1)
        self.per_channel, self.shared = torch.nn.PReLU(4), torch.nn.PReLU()
        self.fc = torch.nn.Linear(4 * 5 * 2, 6)
        self.per_feature = torch.nn.PReLU(6)
        with torch.no_grad():
            self.per_channel.weight.copy_(torch.tensor([0.1, -0.5, 2.0, 0.3]))
            self.per_feature.weight.copy_(torch.linspace(-1, 1, 6))

    def forward(self, x):
        y = self.shared(self.per_channel(self.conv(x)))
        return self.per_feature(self.fc(torch.flatten(y, 1)))


def test_doors_match_pytorch_and_onnxruntime(tmp_path):
    x = np.random.default_rng(1).normal(size=(3, 3, 5, 2)).astype(np.float32)
    for g in (torch_graph_matches(Prelus(), (3, 5, 2), x),
              onnx_graph_matches(Prelus(), (3, 5, 2), x, tmp_path / "prelu.onnx")):
        alphas = [g.tensors[n.inputs[1]] for n in g.nodes if n.op == "PRELU"]
        assert [a.shape for a in alphas] == [(1, 1, 4), (1,), (6,)]
        np.testing.assert_allclose(alphas[0].data.ravel(), [0.1, -0.5, 2.0, 0.3])


def test_float_model_converts_and_runs_in_tflm():
    torch.manual_seed(0)
    calib = np.random.default_rng(3).normal(size=(32, 3, 5, 2)).astype(np.float32)
    g = converted_matches_tflm(Prelus(), (3, 5, 2), calib, np.random.default_rng(4))
    assert [n.op for n in g.nodes].count("PRELU") == 3


def test_per_feature_slopes_after_a_flatten_follow_the_graph_order(tmp_path):
    """After flattening NCHW the graph holds the features in (h, w, c) order: the slopes follow."""
    torch.manual_seed(1)
    m = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 1), torch.nn.Flatten(), torch.nn.PReLU(3 * 2 * 2),
                            torch.nn.Linear(12, 4))
    with torch.no_grad():
        m[2].weight.copy_(torch.linspace(-1, 1, 12))
    x = np.random.default_rng(2).normal(size=(3, 2, 2, 2)).astype(np.float32)
    graphs = torch_graph_matches(m, (2, 2, 2), x), onnx_graph_matches(m, (2, 2, 2), x, tmp_path / "f.onnx")
    for g in graphs:
        alpha = [g.tensors[n.inputs[1]].data for n in g.nodes if n.op == "PRELU"][0]
        # graph feature 1 is (h 0, w 0, c 1): framework feature 1 * 2 * 2 + 0 = 4
        assert alpha.shape == (12,) and alpha[1] == pytest.approx(m[2].weight[4].item())


def test_refusals_name_the_node_and_the_fix():
    from tinyopt.errors import ModelFormatError
    from tinyopt.graph.torch_import import NchwBuilder, Val
    from tinyopt.ops.prelu import build

    def alpha(n):
        return Tensor("a", (n,), data=np.ones(n, np.float32))

    with pytest.raises(ModelFormatError, match=r"alpha of shape \[4\] does not broadcast.*Fix: give alpha"):
        single_op_model("PRELU", [Tensor("x", (1, 3, 5)), alpha(4)], Tensor("y", (1,)))
    g = single_op_model("PRELU", [Tensor("x", (1, 2, 2, 2, 2)), alpha(1)], Tensor("y", (1,)))
    with pytest.raises(UnsupportedOpError, match=r"\(PRELU\): a rank-5 PRELU.*Fix: TFLM's PRELU handles up"):
        Interpreter(g).run(np.zeros((1, 2, 2, 2, 2), np.float32))
    b = NchwBuilder("m", "m.onnx", "onnx")
    with pytest.raises(UnsupportedOpError, match=r"slope of shape \[6, 1, 1\] on a grouped input.*Fix: give"):
        build(b, "p", Val("x", "grouped", (1, 2, 3, 4, 4)), np.ones((6, 1, 1), np.float32), onnx=True)
