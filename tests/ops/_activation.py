"""What the activation-family tests share: random quantization, the C library against the numpy runtime,
the two framework doors against their own frameworks, and conversion of a float graph checked in TFLM."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from runtime._reference import assert_matches_reference, random_int8
from tinyopt.export.tflite import graph_to_tflite_bytes
from tinyopt.runtime import Interpreter

HAVE_CC = shutil.which("cc") is not None
HAVE_ARM = HAVE_CC and shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")
needs_cc = pytest.mark.skipif(not HAVE_CC, reason="no host C compiler (cc)")
needs_arm = pytest.mark.skipif(not HAVE_ARM, reason="Cortex-M toolchain or qemu absent")


def random_shape(rng: np.random.Generator, max_rank: int = 4) -> tuple[int, ...]:
    """A batch-1 shape of rank 2..max_rank with small dimensions."""
    rank = int(rng.integers(2, max_rank + 1))
    return (1, *(int(d) for d in rng.integers(1, 7, size=rank - 1)))


def random_qparams(rng: np.random.Generator, lo: float = -3, hi: float = 0.5) -> tuple[float, int]:
    """A log-uniform scale in [10^lo, 10^hi] and a zero point anywhere in int8."""
    return float(10 ** rng.uniform(lo, hi)), int(rng.integers(-128, 128))


def c_outputs(graph, xs: np.ndarray, tmp: Path) -> np.ndarray:
    """The generated library, built for the host with -std=c99 -Wall -Werror, on int8 inputs xs (N, ...)."""
    from tinyopt.export.c import generate_sources, write_library
    from tinyopt.export.c.board import build_host, run_host

    lib = generate_sources(graph)
    write_library(lib.files, tmp / "lib")
    exe = build_host(tmp / "lib", tmp / "infer")
    return run_host(exe, xs.reshape(len(xs), -1), lib.output_bytes)


def assert_c_matches_runtime(graph, xs: np.ndarray, tmp: Path, kernel: str | None = None) -> np.ndarray:
    """The C library (built with kernels/<kernel>.c, when given) equals the numpy runtime, every byte;
    returns the outputs."""
    ours = Interpreter(graph).run(xs)[0].reshape(len(xs), -1)
    got = c_outputs(graph, xs, tmp)
    if kernel is not None:
        files = sorted(p.name for p in (tmp / "lib").iterdir())
        assert f"tinyopt_{kernel}.c" in files, files
    np.testing.assert_array_equal(got, ours)
    return got


def torch_graph_matches(module, shape, x, atol: float = 1e-5):
    """The PyTorch door's float graph computes what the module computes (NCHW in, NHWC out)."""
    import torch

    from tinyopt.graph.torch_import import from_torch

    module = module.eval()
    g = from_torch(module, shape)
    with torch.no_grad():
        want = module(torch.from_numpy(x)).numpy()
    got = Interpreter(g).run(to_graph_layout(x))[0]
    np.testing.assert_allclose(got, to_graph_layout(want), atol=atol, rtol=1e-5)
    return g


def onnx_graph_matches(module, shape, x, path: Path, opset: int = 13, atol: float = 1e-5):
    """The ONNX door's float graph computes what ONNX Runtime computes on the exported module."""
    import onnxruntime as ort
    import torch

    from tinyopt.graph.onnx_import import load_onnx

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), torch.zeros(1, *shape), str(path), dynamo=False, opset_version=opset)
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    want = np.concatenate([s.run(None, {name: x[i:i + 1]})[0] for i in range(len(x))])
    g = load_onnx(path)
    got = Interpreter(g).run(to_graph_layout(x))[0]
    np.testing.assert_allclose(got, to_graph_layout(want), atol=atol, rtol=1e-5)
    return g


def to_graph_layout(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1)) if a.ndim == 4 else a


def converted_matches_tflm(module, shape, calib: np.ndarray, rng: np.random.Generator):
    """A float PyTorch module converted to int8 (calibrated on ``calib``, PyTorch layout) runs in TFLM
    exactly as in our runtime, on the calibration rows and on random int8 rows with extremes."""
    from tinyopt.convert.convert import convert_torch

    g = convert_torch(module.eval(), calib, shape)
    x = g.tensors[g.inputs[0]]
    rows = random_int8(rng, (6, *x.shape[1:]))
    s, z = float(x.quant.scale[0]), int(x.quant.zero_point[0])
    real = np.clip(np.round(to_graph_layout(calib[:4]) / s) + z, -128, 127).astype(np.int8)
    assert_matches_reference(g, np.concatenate([rows, real]), graph_to_tflite_bytes(g))
    return g
