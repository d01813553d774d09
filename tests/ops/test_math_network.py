"""Model-level checks of the math and reduction operators: small float networks (a PyTorch CNN using
amax / mean / sum / maximum / minimum over several axes, and a graph pooling a variance through
SQUARED_DIFFERENCE) converted to int8 run bit-exact in TFLM, and the generated C library equals TFLM (host
build; once under qemu on the Cortex-M4 too)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from ops._oracles import c_library_outputs, const_i32, convert_and_match_tflm, needs_cc, to_nhwc
from runtime._reference import run_tflm
from tinyopt.export.tflite import graph_to_tflite_bytes
from tinyopt.graph.ir import Graph, Node, Tensor

pytestmark = pytest.mark.usefixtures("one_torch_thread")
HAVE_ARM = shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")


class MathNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(2, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8 + 6, 5)

    def forward(self, x):
        h = torch.relu(self.conv(x))
        peak = h.amax(dim=(2, 3), keepdim=True)             # REDUCE_MAX over H, W
        across = h.mean(dim=1, keepdim=True)                # MEAN over C
        h = torch.minimum(torch.maximum(h, across), peak)  # MAXIMUM, MINIMUM broadcast
        rows = h.sum(dim=3).mean(dim=1)                     # SUM over W, MEAN over C: (N, H)
        return self.fc(torch.cat([h.mean(dim=(2, 3)), rows], dim=1))


def _variance_graph() -> Graph:
    """x (1, 6, 5, 4) -> MEAN over C -> SQUARED_DIFFERENCE with x -> MEAN over H, W -> (1, 4)."""
    g = Graph("variance")
    for name, shape in (("x", (1, 6, 5, 4)), ("m", (1,)), ("d", (1,)), ("y", (1,))):
        g.add_tensor(Tensor(name, shape))
    g.add_tensor(const_i32("c", [3]))
    g.add_tensor(const_i32("hw", [1, 2]))
    g.add_node(Node("m", "MEAN", ["x", "c"], ["m"], {"keep_dims": True}))
    g.add_node(Node("d", "SQUARED_DIFFERENCE", ["x", "m"], ["d"]))
    g.add_node(Node("y", "MEAN", ["d", "hw"], ["y"], {"keep_dims": False}))
    g.inputs, g.outputs = ["x"], ["y"]
    return g.infer_shapes()


def _converted_math_net():
    from tinyopt.graph.torch_import import from_torch

    torch.manual_seed(0)
    g = from_torch(MathNet().eval(), (2, 6, 6))
    rng = np.random.default_rng(0)
    calib = to_nhwc(rng.normal(size=(64, 2, 6, 6)).astype(np.float32))
    xs = to_nhwc(rng.normal(size=(12, 2, 6, 6)).astype(np.float32))
    return g, convert_and_match_tflm(g, calib, xs)


def test_math_net_converts_and_runs_bit_exact_in_tflm():
    g, q = _converted_math_net()
    ops = {n.op for n in q.nodes}
    assert {"REDUCE_MAX", "MEAN", "SUM", "MAXIMUM", "MINIMUM", "CONV_2D", "FULLY_CONNECTED"} <= ops, ops


def _int8_inputs(q: Graph, n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(-128, 128, size=(n, q.tensors[q.inputs[0]].size),
                                                dtype=np.int8)


def _tflm(q: Graph, xs: np.ndarray) -> np.ndarray:
    shape = q.tensors[q.inputs[0]].shape
    return run_tflm(graph_to_tflite_bytes(q), [xs.reshape(len(xs), *shape[1:])])[0].reshape(len(xs), -1)


@needs_cc
def test_math_net_c_library_equals_tflm(tmp_path):
    _, q = _converted_math_net()
    xs = _int8_inputs(q, 40, 1)
    assert np.array_equal(c_library_outputs(q, xs, tmp_path), _tflm(q, xs))


@needs_cc
def test_variance_pooling_converts_and_its_c_library_equals_tflm(tmp_path):
    rng = np.random.default_rng(3)
    q = convert_and_match_tflm(_variance_graph(), (rng.normal(size=(64, 6, 5, 4)) * 2).astype(np.float32),
                               (rng.normal(size=(8, 6, 5, 4)) * 2).astype(np.float32))
    assert [n.op for n in q.nodes] == ["MEAN", "SQUARED_DIFFERENCE", "MEAN"]
    xs = _int8_inputs(q, 40, 4)
    assert np.array_equal(c_library_outputs(q, xs, tmp_path), _tflm(q, xs))


def _broadcast_graph() -> Graph:
    """No convolution, only the kernels of this family: x (1, 6, 5, 8) -> peak = REDUCE_MAX over H, W;
    across = MEAN over C; h = MINIMUM(peak, MAXIMUM(x, across)); SUM of SQUARED_DIFFERENCE(h, across) over
    W; MEAN over H -> (1, 8)."""
    g = Graph("broadcast")
    for name, shape in (("x", (1, 6, 5, 8)), ("peak", (1,)), ("across", (1,)), ("hi", (1,)), ("h", (1,)),
                        ("d", (1,)), ("rows", (1,)), ("y", (1,))):
        g.add_tensor(Tensor(name, shape))
    for name, axes in (("hw", [1, 2]), ("c", [3]), ("w", [2]), ("hh", [1])):
        g.add_tensor(const_i32(name, axes))
    g.add_node(Node("peak", "REDUCE_MAX", ["x", "hw"], ["peak"], {"keep_dims": True}))
    g.add_node(Node("across", "MEAN", ["x", "c"], ["across"], {"keep_dims": True}))
    g.add_node(Node("hi", "MAXIMUM", ["x", "across"], ["hi"]))
    g.add_node(Node("h", "MINIMUM", ["peak", "hi"], ["h"]))
    g.add_node(Node("d", "SQUARED_DIFFERENCE", ["h", "across"], ["d"]))
    g.add_node(Node("rows", "SUM", ["d", "w"], ["rows"], {"keep_dims": False}))
    g.add_node(Node("y", "MEAN", ["rows", "hh"], ["y"], {"keep_dims": False}))
    g.inputs, g.outputs = ["x"], ["y"]
    return g.infer_shapes()


@needs_cc
@pytest.mark.skipif(not HAVE_ARM, reason="Cortex-M toolchain or qemu absent")
def test_reductions_and_broadcasts_on_the_cortex_m4_equal_host_and_tflm(tmp_path):
    from tinyopt.export.c import generate_sources, write_library
    from tinyopt.export.c.board import build_host, build_m4, run_host, run_qemu

    rng = np.random.default_rng(6)
    q = convert_and_match_tflm(_broadcast_graph(), rng.normal(size=(64, 6, 5, 8)).astype(np.float32),
                               rng.normal(size=(8, 6, 5, 8)).astype(np.float32))
    lib = generate_sources(q)
    write_library(lib.files, tmp_path / "lib")
    xs = _int8_inputs(q, 5, 7)
    m4 = build_m4(tmp_path / "lib", tmp_path / "m4", xs)
    outs, _ = run_qemu(m4.elf, lib.output_bytes, timeout=120)
    host = run_host(build_host(tmp_path / "lib", tmp_path / "host"), xs, lib.output_bytes)
    assert np.array_equal(outs, host) and np.array_equal(host, _tflm(q, xs))
