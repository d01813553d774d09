"""LEAKY_RELU against TFLM (75 seeded configurations, 56 of them int8; alphas of both signs, below and above
1), a hand calculation of the negative-alpha rounding, its C kernel against the runtime, conversion, and the
doors."""

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
from tinyopt.export.tflite import single_op_model
from tinyopt.graph.ir import Tensor
from tinyopt.graph.spec import spec_to_graph
from tinyopt.graph.tflite_import import tflite_bytes_to_graph
from tinyopt.runtime import Interpreter

pytestmark = pytest.mark.usefixtures("one_torch_thread")
ALL_INT8 = np.arange(-128, 128, dtype=np.int8).reshape(16, 1, 16)
ALPHAS = (0.01, 0.1, 0.3, -0.5, -2.0, 1.7, 0.0)


def _model(shape, alpha, si=None, zi=0, so=None, zo=0):
    if si is None:
        return single_op_model("LEAKY_RELU", [Tensor("x", shape)], Tensor("y", (1,)), {"alpha": alpha})
    return single_op_model("LEAKY_RELU", [qtensor("x", shape, si, zi)], qtensor("y", (1,), so, zo),
                           {"alpha": alpha})


@pytest.mark.parametrize("seed", range(75))
def test_leaky_relu_matches_tflm(seed):
    rng = np.random.default_rng(seed)
    shape = random_shape(rng)
    alpha = float(ALPHAS[seed % len(ALPHAS)] if seed % 2 else rng.normal())
    if seed % 4 == 0:
        x = (rng.normal(size=(5, *shape[1:])) * 3).astype(np.float32)
        assert_matches_reference(_model(shape, alpha), x)
        return
    si, zi = random_qparams(rng)
    so, zo = si * 10 ** rng.uniform(-1, 1), int(rng.integers(-128, 128))
    assert_matches_reference(_model(shape, alpha, si, zi, so, zo), random_int8(rng, (6, *shape[1:])))


def test_every_int8_value():
    params = [(0.1, 0, 0.1, 0), (0.02, -128, 0.01, -100), (0.5, 20, 2.0, 5), (0.05, 0, 0.05, 0),
              (1e-3, 127, 3e-3, -3), (0.2, 3, 0.3, -7), (0.04, -9, 0.04, -9)]
    for alpha, (si, zi, so, zo) in zip(ALPHAS, params, strict=True):
        assert_matches_reference(_model((1, 1, 16), alpha, si, zi, so, zo), ALL_INT8)


def test_negative_alpha_negates_the_positive_requantization():
    """alpha -0.5, equal scales: the alpha multiplier is -0.5 = -2^30 * 2^-31. For x = -1 the product with
    -2^30 is exactly half way: SRDHM(-1, -2^30) = (2^30 + 2^30) >> 31 = 1, but TFLM multiplies by +2^30 and
    negates: -((-2^30 + 2^30) >> 31) = 0. Likewise x = -3: -((-3 * 2^30 + 2^30) >> 31) = 1 where the negative
    multiplier would give 2; x = -128: 64; x = 5 on the identity multiplier (2^30, shift 1): 5."""
    g = _model((1, 4), -0.5, 0.1, 0, 0.1, 0)
    p = ops.get("LEAKY_RELU").prepare(g, g.nodes[0], True)
    assert (p.output_multiplier_alpha, p.output_shift_alpha) == (-(1 << 30), 0)
    x = np.array([[-1, -3, 5, -128]], np.int8)
    assert Interpreter(g).run(x)[0].tolist() == [[0, 1, 5, 64]]
    assert_matches_reference(g, x)


def test_alpha_round_trips_through_the_tflite_file():
    from tinyopt.export.tflite import graph_to_tflite_bytes

    g = tflite_bytes_to_graph(graph_to_tflite_bytes(_model((1, 3), 0.2, 0.1, 0, 0.1, 0)))
    assert g.nodes[0].attrs["alpha"] == pytest.approx(0.2, rel=1e-7)


@needs_cc
@pytest.mark.parametrize("shape,kernel", [((1, 2, 64), "leaky_relu"), ((1, 4, 64), "lut")])
def test_c_kernel_equals_runtime(shape, kernel, tmp_path):
    """Below 256 elements the arithmetic kernel, from 256 on the table; every int8 value."""
    rng = np.random.default_rng(15)
    for k, alpha in enumerate((0.1, -0.5, -2.0, 1.7, 0.0)):
        si, zi = random_qparams(rng, -2, 0)
        g = _model(shape, alpha, si, zi, si * 10 ** rng.uniform(-1, 1), int(rng.integers(-128, 128)))
        xs = np.concatenate([ALL_INT8.reshape(-1, *shape[1:]), random_int8(rng, (3, *shape[1:]))])
        assert_c_matches_runtime(g, xs, tmp_path / str(k), kernel)


# -- doors -------------------------------------------------------------------------------------------------

class Leaky(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.act = torch.nn.LeakyReLU(0.2)

    def forward(self, x):
        return self.act(x) + torch.nn.functional.leaky_relu(x, 0.05) + torch.nn.functional.leaky_relu(x)


def test_torch_door_matches_pytorch():
    x = np.random.default_rng(1).normal(size=(3, 2, 5, 4)).astype(np.float32)
    g = torch_graph_matches(Leaky(), (2, 5, 4), x)
    alphas = [n.attrs["alpha"] for n in g.nodes if n.op == "LEAKY_RELU"]
    assert alphas == pytest.approx([0.2, 0.05, 0.01])


def test_onnx_door_matches_onnxruntime(tmp_path):
    x = np.random.default_rng(2).normal(size=(3, 2, 5, 4)).astype(np.float32)
    g = onnx_graph_matches(Leaky(), (2, 5, 4), x, tmp_path / "leaky.onnx")
    assert [n.op for n in g.nodes].count("LEAKY_RELU") == 3


def test_float_model_converts_and_runs_in_tflm():
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Conv2d(2, 6, 3), torch.nn.LeakyReLU(0.1), torch.nn.Flatten(),
                            torch.nn.Linear(6 * 4 * 4, 5), torch.nn.LeakyReLU(-0.3))
    calib = np.random.default_rng(3).normal(size=(32, 2, 6, 6)).astype(np.float32)
    g = converted_matches_tflm(m, (2, 6, 6), calib, np.random.default_rng(4))
    assert [n.op for n in g.nodes].count("LEAKY_RELU") == 2


def test_spec_layer_takes_alpha():
    layers = [{"type": "dense", "units": 3}, {"type": "leaky_relu", "alpha": 0.2}]
    g = spec_to_graph({"input": [4], "layers": layers})
    assert g.nodes[-1].op == "LEAKY_RELU" and g.nodes[-1].attrs["alpha"] == 0.2
    from tinyopt.errors import ConfigError

    with pytest.raises(ConfigError, match="'alpha' must be a number"):
        spec_to_graph({"input": [4], "layers": [{"type": "leaky_relu", "alpha": "big"}]})


def test_a_non_finite_alpha_is_refused():
    from tinyopt.errors import ModelFormatError

    g = _model((1, 4), float("nan"), 0.1, 0, 0.1, 0)
    with pytest.raises(ModelFormatError, match=r"\(LEAKY_RELU\): alpha is nan.*Fix: give a finite"):
        Interpreter(g).run(np.zeros((1, 4), np.int8))


# (input scale, zero point, output scale, zero point, alpha, x, TFLM's output). Below the zero point the
# double s_in * alpha / s_out gives 1520192357 (shift 0) for the first, float32 arithmetic 1520192384:
# (x - z_in) m / 2^31 = -190 m / 2^31 = -134.4999987 against -134.5000011, which the high multiply rounds to
# -134 / -135, + 100 = -34 / -35. The last is the identity multiplier's tie (x doubled by shift 1: 222 m /
# 2^31 = 125.5000010 with the double ratio, 125.4999980 with the float32 one).
LEAKY_TIES = [(0.024898339062929153, 62, 0.03548148646950722, 100, 1.0087884664535522, -128, -34),
              (0.5992454290390015, 46, 0.2167453169822693, -100, -0.2733515202999115, -128, 31),
              (0.09853450208902359, 0, 0.051610082387924194, -100, -0.8785164952278137, -110, 85),
              (0.7602121829986572, 0, 0.6723788976669312, 0, 0.5, 111, 126)]


@needs_cc
@pytest.mark.parametrize("si,zi,so,zo,alpha,x,want", LEAKY_TIES)
def test_multipliers_are_double_on_a_rounding_tie(si, zi, so, zo, alpha, x, want, tmp_path):
    """TFLM's LEAKY_RELU multipliers are the double s_in * alpha / s_out and s_in / s_out: the runtime and
    the C kernel give its output where float32 arithmetic gives the neighbouring one."""
    from ops._activation import c_outputs
    from runtime._reference import run_tflm
    from tinyopt.export.tflite import graph_to_tflite_bytes
    from tinyopt.runtime.fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier

    g = _model((1, 1, 1), alpha, si, zi, so, zo)
    xs = np.array([[[x]]], np.int8)
    assert int(run_tflm(graph_to_tflite_bytes(g), [xs])[0].ravel()[0]) == want
    f32 = np.float32
    old = f32(f32(si) * f32(alpha)) / f32(so) if x < zi else f32(f32(si) / f32(so))
    assert int(multiply_by_quantized_multiplier(x - zi, *quantize_multiplier(float(old)))) + zo != want
    assert int(Interpreter(g).run(xs)[0].ravel()[0]) == want
    assert int(c_outputs(g, xs, tmp_path).ravel()[0]) == want
