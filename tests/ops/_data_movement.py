"""What the data movement operator tests share: seeded tensors, the oracles (TFLM for one operator and for a
converted graph, ONNX Runtime and torch for the doors) and the C library against the numpy runtime."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np

from runtime._reference import assert_matches_reference, qtensor, random_int8
from tinyopt.graph.ir import Tensor
from tinyopt.runtime import Interpreter

HAVE_CC = shutil.which("cc") is not None


def ci(name: str, values) -> Tensor:
    """A constant int32 operand (axes, sizes, indices)."""
    v = np.asarray(values, np.int32)
    return Tensor(name, v.shape, "int32", data=v)


def act(name: str, shape, is_int: bool, scale: float = 0.05, zp: int = -3) -> Tensor:
    """An activation: int8 with (scale, zero point), or float32."""
    return qtensor(name, shape, scale, zp) if is_int else Tensor(name, tuple(shape))


def rows(rng: np.random.Generator, shape, is_int: bool, n: int = 4) -> np.ndarray:
    """``n`` seeded rows of a batch-1 ``shape``: int8 with the extreme rows first, or normal float32."""
    if is_int:
        return random_int8(rng, (n, *shape[1:]))
    return rng.normal(size=(n, *shape[1:])).astype(np.float32)


def matches_tflm(graph, inputs) -> list[np.ndarray]:
    """Our runtime equals TFLM on ``graph`` (exact for int8, 1e-5 for float32), and the .tflite read back by
    our importer (options, shapes re-inferred) computes the same; our outputs."""
    from tinyopt.export.tflite import graph_to_tflite_bytes
    from tinyopt.graph.tflite_import import tflite_bytes_to_graph

    ours = assert_matches_reference(graph, inputs)
    back = tflite_bytes_to_graph(graph_to_tflite_bytes(graph))
    assert [n.op for n in back.nodes] == [n.op for n in graph.nodes]
    for a, b in zip(Interpreter(back).run(inputs), ours):
        np.testing.assert_array_equal(a, b)
    return ours


def converted_matches_tflm(float_graph, seed: int = 0, n_calib: int = 32):
    """convert (calibrated on seeded data) → the int8 graph's runtime equals TFLM on the .tflite written from
    it; returns the int8 graph."""
    from tinyopt.convert import convert_graph

    rng = np.random.default_rng(seed)
    x = float_graph.tensors[float_graph.inputs[0]]
    calib = rng.normal(size=(n_calib, *x.shape[1:])).astype(np.float32)
    g = convert_graph(float_graph, calib)
    assert all(g.tensors[t].dtype == "int8" for t in (*g.inputs, *g.outputs))
    assert_matches_reference(g, random_int8(rng, (8, *x.shape[1:])))
    return g


def c_equals_runtime(graph, tmp: Path, n: int = 6, seed: int = 0) -> np.ndarray:
    """The generated C library (host build, -std=c99 -Wall -Wextra -Werror -pedantic) equals the numpy
    runtime on seeded int8 inputs; returns the outputs."""
    from tinyopt.export.c import generate_sources, write_library
    from tinyopt.export.c.board import build_host, run_host

    x = graph.tensors[graph.inputs[0]]
    xs = random_int8(np.random.default_rng(seed), (n, *x.shape[1:]))
    lib = generate_sources(graph)
    write_library(lib.files, tmp / "lib")
    got = run_host(build_host(tmp / "lib", tmp / "exe"), xs.reshape(n, -1), lib.output_bytes)
    want = Interpreter(graph).run(xs)[0].reshape(n, -1)
    np.testing.assert_array_equal(got, want)
    return got


def nhwc(a: np.ndarray, layout: str = "channels_first") -> np.ndarray:
    """A framework (N, C, H, W) or (N, C, L) array in the graph's layout (``plain``: as it is)."""
    if layout == "plain":
        return a
    if a.ndim == 4:
        return np.ascontiguousarray(a.transpose(0, 2, 3, 1))
    if a.ndim == 3:
        return np.ascontiguousarray(a.transpose(0, 2, 1)[:, None])
    return a


def torch_matches(module, shape, seed: int = 0, n: int = 3, atol: float = 1e-5,
                  layout: str = "channels_first"):
    """The PyTorch door: our runtime on the converted graph equals the module on seeded inputs; the graph.
    ``layout``: how the model's output is held (``plain``: a 3-D/4-D output kept in the framework's order)."""
    import torch

    from tinyopt.graph.torch_import import from_torch

    g = from_torch(module.eval(), shape)
    x = np.random.default_rng(seed).normal(size=(n, *shape)).astype(np.float32)
    with torch.no_grad():
        want = module(torch.from_numpy(x)).numpy()
    got = Interpreter(g).run(nhwc(x))[0]
    np.testing.assert_allclose(got, nhwc(want, layout), atol=atol, rtol=0)
    return g


def export_onnx(module, shape, path: Path, opset: int = 13) -> Path:
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), torch.zeros(1, *shape), str(path), dynamo=False, opset_version=opset)
    return path


def onnx_matches(path: Path, shape, seed: int = 0, n: int = 3, atol: float = 1e-5,
                 layout: str = "channels_first"):
    """The ONNX door: our runtime on the loaded graph equals ONNX Runtime, row by row; the graph."""
    import onnxruntime as ort

    from tinyopt.graph.onnx_import import load_onnx

    g = load_onnx(path)
    x = np.random.default_rng(seed).normal(size=(n, *shape)).astype(np.float32)
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    want = np.concatenate([s.run(None, {name: x[i: i + 1]})[0] for i in range(n)])
    got = Interpreter(g).run(nhwc(x))[0]
    np.testing.assert_allclose(got, nhwc(want, layout), atol=atol, rtol=0)
    return g


def ops_of(graph) -> list[str]:
    return [n.op for n in graph.nodes]
