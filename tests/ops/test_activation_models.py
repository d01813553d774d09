"""The activation family in whole networks: torchvision's MobileNetV3 (small, large) through both doors and
EfficientNet-B0 through the PyTorch door compute what PyTorch computes; MobileNetV3-small converted to int8
runs bit-exactly in TFLM and in the C library; a float network using HARD_SWISH,
LEAKY_RELU, PRELU and ELU converts to int8 that TFLM runs bit-exactly, and whose C library equals TFLM on
the host and under qemu on a Cortex-M4."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from ops._activation import HAVE_ARM, HAVE_CC, to_graph_layout
from runtime._reference import assert_matches_reference, random_int8, run_tflm
from tinyopt.convert.convert import convert_torch
from tinyopt.export.tflite import graph_to_tflite_bytes
from tinyopt.graph.onnx_import import load_onnx
from tinyopt.graph.torch_import import from_torch
from tinyopt.runtime import Interpreter

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def torchvision_models():
    """torchvision's model definitions (its PyPI wheel is a CUDA build: with CPU torch its import needs the
    two operator schemas declared first; the models themselves are plain Python)."""
    import importlib.util

    if importlib.util.find_spec("torchvision") is None:
        pytest.skip("torchvision is not installed (pip install torchvision)")
    for name, schema in [("nms", "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"),
                         ("qnms", "(Tensor qdets, Tensor scores, float iou_threshold) -> Tensor")]:
        try:
            torch.library.define(f"torchvision::{name}", schema)
        except RuntimeError:  # declared already (by an earlier test, or by a CPU torchvision build)
            pass
    from torchvision import models

    return models


def lively(m: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random BatchNorm statistics and affine terms, so activations stay O(1) through an untrained network
    (with the defaults they shrink towards 0 and a comparison would test little)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                c = mod.num_features
                mod.weight.copy_(torch.rand(c, generator=g) + 0.5)
                mod.bias.copy_(torch.randn(c, generator=g) * 0.2)
                mod.running_mean.copy_(torch.randn(c, generator=g) * 0.2)
                mod.running_var.copy_(torch.rand(c, generator=g) * 1.5 + 0.5)
    return m.eval()


def _close(got: np.ndarray, want: np.ndarray) -> None:
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4 * float(np.abs(want).max()))


def _ops(g) -> dict[str, int]:
    out: dict[str, int] = {}
    for n in g.nodes:
        out[n.op] = out.get(n.op, 0) + 1
    return out


@pytest.mark.parametrize("arch,hard_swishes", [("mobilenet_v3_small", 19), ("mobilenet_v3_large", 21)])
def test_mobilenet_v3_through_both_doors(arch, hard_swishes, tmp_path):
    """Every nn.Hardswish becomes one HARD_SWISH through both doors (ONNX opset 13 writes HardSigmoid + Mul);
    the squeeze-excite Hardsigmoid becomes ADD, RELU6, MUL and a broadcasting MUL."""
    models = torchvision_models()
    torch.manual_seed(0)
    m = lively(getattr(models, arch)(weights=None))
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        want = m(x).numpy()
    path = tmp_path / f"{arch}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(m, x[:1], str(path), dynamo=False, opset_version=13)
    graphs = [from_torch(m, (3, 96, 96)), load_onnx(path)]
    for g in graphs:
        _close(Interpreter(g).run(to_graph_layout(x.numpy()))[0], want)
        assert _ops(g)["HARD_SWISH"] == hard_swishes
    assert _ops(graphs[0]) == _ops(graphs[1])


@pytest.mark.slow
def test_mobilenet_v3_small_converts_to_int8_that_tflm_and_the_c_library_run_bit_exactly(tmp_path):
    """19 HARD_SWISH, and the squeeze-excite hard sigmoids as ADD (RELU6 fused) and MUL by 1/6, then the
    broadcasting MUL, all requantized as TFLM does; the generated C library (host) gives TFLM's bytes."""
    models = torchvision_models()
    torch.manual_seed(0)
    m = lively(models.mobilenet_v3_small(weights=None))
    calib = np.random.default_rng(0).normal(size=(16, 3, 96, 96)).astype(np.float32)
    g = convert_torch(m, calib, (3, 96, 96))
    assert _ops(g)["HARD_SWISH"] == 19
    xs = random_int8(np.random.default_rng(1), (3, 96, 96, 3))
    out = assert_matches_reference(g, xs, graph_to_tflite_bytes(g))[0]
    assert len({r.tobytes() for r in out}) == 3
    if not HAVE_CC:
        pytest.skip("no host C compiler (cc): TFLM and the runtime were compared")
    from tinyopt.export.c import generate_sources, write_library
    from tinyopt.export.c.board import build_host, run_host

    lib = generate_sources(g)
    write_library(lib.files, tmp_path / "lib")
    host = run_host(build_host(tmp_path / "lib", tmp_path / "host"), xs.reshape(3, -1), lib.output_bytes)
    np.testing.assert_array_equal(host, out.reshape(3, -1))


def test_efficientnet_b0_through_the_pytorch_door():
    """SiLU is LOGISTIC then MUL (49 of them, plus the 16 squeeze-excite sigmoids); stochastic depth is the
    identity at inference."""
    models = torchvision_models()
    torch.manual_seed(0)
    m = lively(models.efficientnet_b0(weights=None))
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        want = m(x).numpy()
    g = from_torch(m, (3, 96, 96))
    _close(Interpreter(g).run(to_graph_layout(x.numpy()))[0], want)
    assert _ops(g)["LOGISTIC"] == 65


class Family(torch.nn.Module):
    """A small network with every member of the family, each after a layer the C library has."""

    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 8, 3, padding=1)  # SAME: no PAD node
        self.hs = torch.nn.Hardswish()
        self.dw = torch.nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.leaky = torch.nn.LeakyReLU(0.1)
        self.pw = torch.nn.Conv2d(8, 12, 1)
        self.prelu = torch.nn.PReLU(12)
        self.conv = torch.nn.Conv2d(12, 12, 3, padding=1)
        self.elu = torch.nn.ELU()
        self.fc = torch.nn.Linear(12, 5)
        with torch.no_grad():
            self.prelu.weight.copy_(torch.linspace(-0.5, 0.8, 12))

    def forward(self, x):
        x = self.elu(self.conv(self.prelu(self.pw(self.leaky(self.dw(self.hs(self.stem(x))))))))
        return torch.nn.functional.hardswish(self.fc(x.mean((2, 3))))


def _converted_family():
    torch.manual_seed(0)
    calib = np.random.default_rng(5).normal(size=(64, 3, 12, 12)).astype(np.float32)
    g = convert_torch(Family().eval(), calib, (3, 12, 12))
    assert {"HARD_SWISH", "LEAKY_RELU", "PRELU", "ELU"} <= set(_ops(g))
    xs = random_int8(np.random.default_rng(6), (12, 12, 12, 3))
    return g, xs


def test_family_network_converts_to_int8_that_tflm_runs_bit_exactly():
    g, xs = _converted_family()
    out = assert_matches_reference(g, xs, graph_to_tflite_bytes(g))[0]
    assert len({r.tobytes() for r in out}) > 1


@pytest.mark.skipif(not HAVE_CC, reason="no host C compiler (cc)")
def test_family_network_c_library_equals_tflm(tmp_path):
    from tinyopt.export.c import generate_sources, write_library
    from tinyopt.export.c.board import build_host, build_m4, run_host, run_qemu

    g, xs = _converted_family()
    lib = generate_sources(g)
    write_library(lib.files, tmp_path / "lib")
    ref = run_tflm(graph_to_tflite_bytes(g), [xs])[0].reshape(len(xs), -1)
    exe = build_host(tmp_path / "lib", tmp_path / "host")
    np.testing.assert_array_equal(run_host(exe, xs.reshape(len(xs), -1), lib.output_bytes), ref)
    if not HAVE_ARM:
        pytest.skip("Cortex-M toolchain or qemu absent: the host build was checked")
    # three inputs: the M4 harness never stops when given exactly four (1, 2, 3, 5, 6, 8 run; seen with a
    # lone table-kernel node too, so not a kernel of this family; reported to the harness's owner)
    m4 = build_m4(tmp_path / "lib", tmp_path / "m4", xs[:3])  # -Werror, Cortex-M4F flags
    outs, _ = run_qemu(m4.elf, lib.output_bytes)
    np.testing.assert_array_equal(outs, ref[:3])
