"""Oracles of the resize, transposed-convolution and batch-matmul tests: TFLM on a converted graph, the
generated C library against the numpy runtime and TFLM, ONNX Runtime and PyTorch against the doors."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from runtime._reference import assert_matches_reference, run_tflm
from tinyopt.export.tflite import graph_to_tflite_bytes
from tinyopt.graph.ir import Graph
from tinyopt.runtime import Interpreter

needs_cc = pytest.mark.skipif(shutil.which("cc") is None, reason="no host C compiler (cc)")


def to_nhwc(a: np.ndarray) -> np.ndarray:
    """A framework batch (N, C, H, W) / (N, C, L) in the graph's layout (the doors' rule)."""
    if a.ndim == 4:
        return np.ascontiguousarray(a.transpose(0, 2, 3, 1))
    if a.ndim == 3:
        return np.ascontiguousarray(a.transpose(0, 2, 1)[:, None])
    return a


def to_framework(got: np.ndarray, want_shape) -> np.ndarray:
    """Our output (N, graph shape) in the framework's order (NCHW, NCL or as it is)."""
    if len(want_shape) == 4 and got.ndim == 4:
        return got.transpose(0, 3, 1, 2)
    if len(want_shape) == 3 and got.ndim == 4 and got.shape[1] == 1:
        return got[:, 0].transpose(0, 2, 1)
    return got.reshape(want_shape)


def c_outputs(graph: Graph, xs: np.ndarray, tmp: Path) -> np.ndarray:
    """The generated library (host build: -std=c99 -Wall -Wextra -Werror -pedantic) on each row of ``xs``."""
    from tinyopt.export.c import generate_sources, write_library
    from tinyopt.export.c.board import build_host, run_host

    lib = generate_sources(graph)
    write_library(lib.files, tmp / "lib")
    exe = build_host(tmp / "lib", tmp / "infer")
    return run_host(exe, xs.reshape(len(xs), -1), lib.output_bytes)


def assert_c_matches(graph: Graph, xs: np.ndarray, tmp: Path) -> np.ndarray:
    """The C library equals the numpy runtime and TFLM on every row, every value."""
    ours = Interpreter(graph).run(xs)[0].reshape(len(xs), -1)
    tflm = run_tflm(graph_to_tflite_bytes(graph), [xs])[0].reshape(len(xs), -1)
    c = c_outputs(graph, xs, tmp)
    for name, other in (("numpy", ours), ("TFLM", tflm)):
        bad = np.argwhere(c != other)
        assert bad.size == 0, f"{len(bad)} mismatches with {name}, first at {bad[0].tolist()}"
    return c


def convert_and_match_tflm(graph: Graph, calib: np.ndarray, xs: np.ndarray) -> Graph:
    """``convert_graph`` to int8; our int8 runtime equals TFLM on the written .tflite, every value."""
    from tinyopt.convert import convert_graph

    q = convert_graph(graph, calib)
    assert_matches_reference(q, quantize_input(q, xs))
    return q


def quantize_input(q: Graph, xs: np.ndarray) -> np.ndarray:
    x = q.tensors[q.inputs[0]]
    q = np.round(xs / float(x.quant.scale[0])) + int(x.quant.zero_point[0])
    return np.clip(q, -128, 127).astype(np.int8)


def dequantize_output(q: Graph, out: np.ndarray) -> np.ndarray:
    t = q.tensors[q.outputs[0]]
    return (out.astype(np.float64) - float(t.quant.zero_point[0])) * float(t.quant.scale[0])


def onnx_file(tmp: Path, nodes, x_shape, inits=(), opset: int = 17, name: str = "m.onnx") -> Path:
    """A one-input ONNX model: input 'x' of ``x_shape``, output 'y' (the last node's output)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in inits])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    path = tmp / name
    onnx.save(onnx.shape_inference.infer_shapes(model), str(path))
    return path


def ort_run(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    return np.concatenate([s.run(None, {name: x[i:i + 1]})[0] for i in range(len(x))])


def assert_onnx_matches_ort(path: Path, x: np.ndarray, atol: float = 1e-5) -> Graph:
    """load_onnx(path) run by our interpreter equals ONNX Runtime on ``x`` (framework layout)."""
    from tinyopt.graph.onnx_import import load_onnx

    g = load_onnx(path)
    want = ort_run(path, x)
    got = Interpreter(g).run(to_nhwc(x))[0]
    np.testing.assert_allclose(to_framework(got, want.shape), want, atol=atol, rtol=1e-5)
    return g


def export_onnx(module, shape, path: Path, opset: int = 17) -> Path:
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), torch.zeros(1, *shape), str(path), dynamo=False, opset_version=opset)
    return path


def assert_torch_matches(module, shape, batch: int = 3, atol: float = 1e-5, seed: int = 1) -> Graph:
    """from_torch(module) run by our interpreter equals the module's own output."""
    import torch

    from tinyopt.graph.torch_import import from_torch

    module.eval()
    g = from_torch(module, shape)
    x = torch.randn(batch, *shape, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        want = module(x).numpy()
    got = Interpreter(g).run(to_nhwc(x.numpy()))[0]
    np.testing.assert_allclose(to_framework(got, want.shape), want, atol=atol, rtol=1e-5)
    return g
