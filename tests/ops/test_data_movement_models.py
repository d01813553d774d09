"""The data movement family in whole networks. torchvision's ShuffleNetV2 (x0.5), ResNet-18 and SqueezeNet
1.1 at 96x96 load through both doors and compute what PyTorch and ONNX Runtime compute (channel shuffles,
chunk/cat, max pools with padding and ceil_mode); ShuffleNetV2 converted to int8 runs bit-exactly in TFLM
and in its C library;
a small network using every operator of the family converts to int8 that TFLM runs bit-exactly, and its
C library equals TFLM on the host and under qemu on a Cortex-M4."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ops._data_movement import HAVE_CC, export_onnx, nhwc, ops_of
from runtime._reference import assert_matches_reference, random_int8, run_tflm
from tinyopt.convert import convert_graph
from tinyopt.export.tflite import graph_to_tflite_bytes
from tinyopt.graph.onnx_import import load_onnx
from tinyopt.graph.torch_import import from_torch
from tinyopt.runtime import Interpreter

pytestmark = pytest.mark.usefixtures("one_torch_thread")
HAVE_ARM = HAVE_CC and shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")


def torchvision_models():
    """torchvision's model definitions (its PyPI wheel is a CUDA build: with CPU torch its import needs the
    two operator schemas declared first; the model code is plain Python)."""
    import importlib.util

    if importlib.util.find_spec("torchvision") is None:
        pytest.skip("torchvision is not installed (pip install --no-deps torchvision)")
    for name, schema in [("nms", "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"),
                         ("qnms", "(Tensor qdets, Tensor scores, float iou_threshold) -> Tensor")]:
        try:
            torch.library.define(f"torchvision::{name}", schema)
        except RuntimeError:  # declared already (an earlier test, or a CPU build of torchvision)
            pass
    from torchvision import models

    return models


def lively(m: torch.nn.Module) -> torch.nn.Module:
    """Seeded BatchNorm statistics, so activations stay O(1) through an untrained network."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                c = mod.num_features
                mod.weight.copy_(torch.rand(c, generator=g) + 0.5)
                mod.bias.copy_(torch.randn(c, generator=g) * 0.2)
                mod.running_mean.copy_(torch.randn(c, generator=g) * 0.2)
                mod.running_var.copy_(torch.rand(c, generator=g) * 1.5 + 0.5)
    return m.eval()


ARCHS = {  # what each one exercises
    "shufflenet_v2_x0_5": {"GATHER", "PADV2", "CONCATENATION"},  # shuffles, chunk/cat, the padded stem pool
    "resnet18": {"PADV2", "MAX_POOL_2D"},                         # MaxPool2d(3, 2, padding=1)
    "squeezenet1_1": {"MAX_POOL_2D", "CONCATENATION"},           # MaxPool2d(3, 2, ceil_mode=True)
}


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_torchvision_model_through_both_doors(arch, tmp_path):
    import onnxruntime as ort

    torch.manual_seed(0)
    m = lively(getattr(torchvision_models(), arch)(weights=None))
    x = np.random.default_rng(0).normal(size=(2, 3, 96, 96)).astype(np.float32)
    with torch.no_grad():
        want = m(torch.from_numpy(x)).numpy()
    tol = 1e-4 * float(np.abs(want).max())
    g = from_torch(m, (3, 96, 96))
    assert ARCHS[arch] <= set(ops_of(g))
    np.testing.assert_allclose(Interpreter(g).run(nhwc(x))[0], want, atol=tol, rtol=0)
    path = export_onnx(m, (3, 96, 96), tmp_path / f"{arch}.onnx")
    h = load_onnx(path)
    assert ARCHS[arch] <= set(ops_of(h))  # ONNX's Reshape/Transpose/Reshape shuffle is one GATHER too
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ref = np.concatenate([s.run(None, {s.get_inputs()[0].name: x[i: i + 1]})[0] for i in range(2)])
    np.testing.assert_allclose(Interpreter(h).run(nhwc(x))[0], ref, atol=tol, rtol=0)


def _shufflenet_int8():
    torch.manual_seed(0)
    m = lively(torchvision_models().shufflenet_v2_x0_5(weights=None))
    g = from_torch(m, (3, 96, 96))
    calib = np.random.default_rng(1).normal(size=(8, 96, 96, 3)).astype(np.float32)
    return convert_graph(g, calib)


def test_shufflenet_int8_runs_bit_exact_in_tflm():
    q = _shufflenet_int8()
    assert {"GATHER", "PADV2", "SPLIT"} <= set(ops_of(q))
    assert_matches_reference(q, random_int8(np.random.default_rng(2), (2, 96, 96, 3)))


@pytest.mark.skipif(not HAVE_CC, reason="no host C compiler (cc)")
def test_shufflenet_c_library_equals_tflm(tmp_path):
    from tinyopt.export.c import generate_sources, write_library
    from tinyopt.export.c.board import build_host, run_host

    q = _shufflenet_int8()
    lib = generate_sources(q)
    write_library(lib.files, tmp_path / "lib")
    xs = random_int8(np.random.default_rng(3), (2, 96, 96, 3))
    got = run_host(build_host(tmp_path / "lib", tmp_path / "exe"), xs.reshape(2, -1), lib.output_bytes)
    np.testing.assert_array_equal(got, run_tflm(graph_to_tflite_bytes(q), [xs])[0].reshape(2, -1))


class Mover(torch.nn.Module):
    """Every data movement operator of the family in one small network."""

    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.pool = torch.nn.MaxPool2d(3, 2, 1)                     # PADV2 + MAX_POOL_2D
        self.branch = torch.nn.Conv2d(4, 4, 3, padding=1)
        self.up = torch.nn.Conv2d(8, 16, 1)
        self.head = torch.nn.Conv2d(8, 6, 1)

    def forward(self, x):
        y = self.pool(torch.relu(self.stem(x)))                    # (N, 8, 6, 5)
        a, b = y.chunk(2, dim=1)                                    # SPLIT
        y = torch.cat((a, torch.relu(self.branch(b))), 1)           # CONCATENATION
        y = F.channel_shuffle(y, 2)                                 # GATHER
        z = F.pixel_shuffle(self.up(y), 2)                          # GATHER (CRD order) + DEPTH_TO_SPACE
        z = F.pad(z[:, :, 1:, ::2], (0, 1, 1, 0))                   # STRIDED_SLICE, PAD
        z = F.pixel_unshuffle(z[:, :, :, :6], 2)                    # SLICE, SPACE_TO_DEPTH + GATHER
        p, q, r = torch.split(z[:, :, :5], [4, 8, 4], dim=1)        # SPLIT_V
        s = torch.stack([p.flatten(1), r.flatten(1)], 1)            # PACK (flattened: GATHERs)
        t = torch.unbind(s, 1)                                      # UNPACK
        u = self.head(q).permute(0, 2, 3, 1)                        # (N, 5, 3, 6) as NHWC: no op
        return torch.cat([u.flatten(1), t[1] + t[0]], 1)


def _mover_int8():
    torch.manual_seed(0)
    g = from_torch(Mover().eval(), (3, 12, 10))
    calib = np.random.default_rng(0).normal(size=(32, 12, 10, 3)).astype(np.float32)
    return g, convert_graph(g, calib)


def test_mover_uses_the_family_and_converts_bit_exact_in_tflm():
    g, q = _mover_int8()
    want = {"PADV2", "SPLIT", "CONCATENATION", "GATHER", "DEPTH_TO_SPACE", "STRIDED_SLICE", "PAD", "SLICE",
            "SPACE_TO_DEPTH", "SPLIT_V", "PACK", "UNPACK"}
    assert want <= set(ops_of(q)), want - set(ops_of(q))
    x = np.random.default_rng(4).normal(size=(3, 3, 12, 10)).astype(np.float32)
    torch.manual_seed(0)
    with torch.no_grad():
        want = Mover().eval()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(Interpreter(g).run(nhwc(x))[0], want, atol=1e-5, rtol=0)  # the float graph
    assert_matches_reference(q, random_int8(np.random.default_rng(3), (8, 12, 10, 3)))


@pytest.mark.skipif(not HAVE_CC, reason="no host C compiler (cc)")
def test_mover_c_library_equals_tflm(tmp_path):
    from tinyopt.export.c import generate_sources, write_library
    from tinyopt.export.c.board import build_host, run_host

    _, q = _mover_int8()
    xs = random_int8(np.random.default_rng(5), (12, 12, 10, 3))
    lib = generate_sources(q)
    write_library(lib.files, tmp_path / "lib")
    got = run_host(build_host(tmp_path / "lib", tmp_path / "exe"), xs.reshape(12, -1), lib.output_bytes)
    ref = run_tflm(graph_to_tflite_bytes(q), [xs])[0].reshape(12, -1)
    np.testing.assert_array_equal(got, ref)
    assert len({r.tobytes() for r in ref}) > 1


@pytest.mark.skipif(not HAVE_ARM, reason="Cortex-M toolchain or qemu absent")
def test_mover_on_cortex_m4_equals_the_host(tmp_path):
    from tinyopt.export.c import generate_sources, write_library
    from tinyopt.export.c.board import build_host, build_m4, run_host, run_qemu

    _, q = _mover_int8()
    lib = generate_sources(q)
    write_library(lib.files, tmp_path / "lib")
    xs = random_int8(np.random.default_rng(6), (3, 12, 10, 3)).reshape(3, -1)
    m4 = build_m4(tmp_path / "lib", tmp_path / "m4", xs)
    outs, _ = run_qemu(m4.elf, lib.output_bytes)
    host = run_host(build_host(tmp_path / "lib", tmp_path / "host"), xs, lib.output_bytes)
    np.testing.assert_array_equal(outs, host)
