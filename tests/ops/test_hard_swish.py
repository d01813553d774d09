"""HARD_SWISH against TFLM (75 seeded configurations, 56 of them int8; every int8 value at extreme scales;
a hand calculation), its C kernel against the runtime, conversion, and the swish family's doors (HardSwish,
HardSigmoid, SiLU) against PyTorch and ONNX Runtime."""

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
from runtime._reference import assert_matches_reference, qtensor, random_int8, run_tflm
from tinyopt import ops
from tinyopt.errors import UnsupportedOpError
from tinyopt.export.tflite import graph_to_tflite_bytes, single_op_model
from tinyopt.graph.ir import Tensor
from tinyopt.graph.spec import spec_to_graph
from tinyopt.runtime import Interpreter

pytestmark = pytest.mark.usefixtures("one_torch_thread")
ALL_INT8 = np.arange(-128, 128, dtype=np.int8).reshape(16, 1, 16)


def _int8_model(shape, si, zi, so, zo):
    return single_op_model("HARD_SWISH", [qtensor("x", shape, si, zi)], qtensor("y", (1,), so, zo))


@pytest.mark.parametrize("seed", range(75))
def test_hard_swish_matches_tflm(seed):
    rng = np.random.default_rng(seed)
    shape = random_shape(rng)
    if seed % 4 == 0:  # float32: inputs across the three pieces (-3, [−3, 3], 3)
        g = single_op_model("HARD_SWISH", [Tensor("x", shape)], Tensor("y", (1,)))
        out = assert_matches_reference(g, (rng.normal(size=(5, *shape[1:])) * 4).astype(np.float32))[0]
        assert out.dtype == np.float32
        return
    si, zi = random_qparams(rng)
    so, zo = si * 10 ** rng.uniform(-1.4, 0.5), int(rng.integers(-128, 128))  # TFLM needs so > si / 128
    assert_matches_reference(_int8_model(shape, si, zi, so, zo), random_int8(rng, (6, *shape[1:])))


@pytest.mark.parametrize("si,zi,so,zo", [
    (1e-7, 3, 1e-7, -5),      # reluish exponent -16: gemmlowp's int16 mask is -1
    (3e-8, 0, 1e-9, 100),     # reluish exponent -18, saturated output
    (1e-6, -20, 3e-6, 7),     # reluish exponent -13
    (50.0, 0, 40.0, 0),       # reluish exponent 13: the saturating left shifts
    (1.0, 0, 1 / 100, 0),     # output exponent 0
    (1.0, 5, 1 / 127, -3),    # output multiplier 0.992: just inside what TFLM accepts
    (0.02, 10, 0.02 / 60, 120),
    (0.1, -128, 0.05, -128),
])
def test_every_int8_value_at_extreme_scales(si, zi, so, zo):
    assert_matches_reference(_int8_model((1, 1, 16), si, zi, so, zo), ALL_INT8)


def test_hand_computed_values():
    """Scale 1/8 in and out, zero points 0: x = 3.0 (q 24) -> 3.0; x = -1.5 (q -12) -> -0.375 (q -3).
    For q = -12: hires -1536; preshift = (-1536 * 16384 + 2^14) >> 15 = -768; reluish multiplier
    (1/1024) / (3/32768) = 10.67 = 21845/32768 * 2^4: (-1536 << 3) -> -12288, x 21845 -> -8192, << 1 ->
    -16384, to [0, 1]: 8192; 8192 * -768 / 2^15 = -192; -192 / 2^6 = -3."""
    g = _int8_model((1, 3), 0.125, 0, 0.125, 0)
    p = ops.get("HARD_SWISH").prepare(g, g.nodes[0], True)
    assert (p.output_multiplier_fixedpoint_int16, p.output_multiplier_exponent) == (16384, -6)
    assert (p.reluish_multiplier_fixedpoint_int16, p.reluish_multiplier_exponent) == (21845, 4)
    x = np.array([[24, 0, -12]], np.int8)
    assert Interpreter(g).run(x)[0].tolist() == [[24, 0, -3]]
    assert_matches_reference(g, x)


def test_an_output_scale_tflm_refuses_is_refused_by_name():
    """so <= si / 128 needs a left-shifting output multiplier: TFLM's Prepare fails, so does ours, clearly."""
    g = _int8_model((1, 1, 16), 1.0, 0, 1 / 200, 0)
    with pytest.raises(UnsupportedOpError, match=r"node 0 'y' \(HARD_SWISH\).*output scale.*Fix: calibrate"):
        Interpreter(g).run(ALL_INT8)
    with pytest.raises(RuntimeError):
        run_tflm(graph_to_tflite_bytes(g), [ALL_INT8])


@needs_cc
@pytest.mark.parametrize("shape,kernel", [((1, 2, 4, 16), "hard_swish"), ((1, 4, 4, 16), "lut")])
def test_c_kernel_equals_runtime(shape, kernel, tmp_path):
    """Below 256 elements the arithmetic kernel, from 256 on the table (see TABLE_FROM); every int8 value."""
    rng = np.random.default_rng(14)
    for k, (si, zi, so, zo) in enumerate([(0.05, 3, 0.04, -20), (1e-7, 3, 1e-7, -5), (50.0, 0, 40.0, 0),
                                          (1.0, -128, 1 / 100, 127), random_qparams(rng) * 2]):
        so = max(so, si / 100)
        g = _int8_model(shape, si, zi, so, zo)
        xs = np.concatenate([ALL_INT8.reshape(-1, *shape[1:]), random_int8(rng, (3, *shape[1:]))])
        assert_c_matches_runtime(g, xs, tmp_path / str(k), kernel)


# -- doors -------------------------------------------------------------------------------------------------

class Swishes(torch.nn.Module):
    """Every PyTorch spelling the record converts."""

    def __init__(self):
        super().__init__()
        self.hs, self.hsig, self.silu = torch.nn.Hardswish(), torch.nn.Hardsigmoid(), torch.nn.SiLU()

    def forward(self, x):
        a = self.hs(x) + torch.nn.functional.hardswish(x * 2)
        b = self.hsig(x) * torch.nn.functional.hardsigmoid(x - 1)
        return a + b + self.silu(x) - torch.nn.functional.silu(x * 3)


def _ops(g):
    return [n.op for n in g.nodes]


def test_torch_door_matches_pytorch():
    x = (np.random.default_rng(1).normal(size=(3, 2, 5, 4)) * 4).astype(np.float32)
    g = torch_graph_matches(Swishes(), (2, 5, 4), x)
    names = _ops(g)
    assert names.count("HARD_SWISH") == 2 and names.count("LOGISTIC") == 2 and names.count("RELU6") == 2


def test_onnx_hard_swish_and_fused_hard_sigmoid_match_onnxruntime(tmp_path):
    """opset 14 writes HardSwish; opset 13 writes HardSigmoid(1/6, 1/2) + Mul(x, .), which becomes one
    HARD_SWISH; a HardSigmoid read by more than its Mul stays a hard sigmoid."""
    x = (np.random.default_rng(2).normal(size=(3, 2, 5, 4)) * 4).astype(np.float32)
    for opset in (13, 14):
        g = onnx_graph_matches(torch.nn.Hardswish(), (2, 5, 4), x, tmp_path / f"hs{opset}.onnx", opset)
        assert _ops(g) == ["HARD_SWISH"]

    class Shared(torch.nn.Module):
        def forward(self, x):
            s = torch.nn.functional.hardsigmoid(x)
            return x * s + s

    g = onnx_graph_matches(Shared(), (2, 5, 4), x, tmp_path / "shared.onnx")
    assert "HARD_SWISH" not in _ops(g) and _ops(g).count("RELU6") == 1


def test_onnx_hard_sigmoid_with_its_own_alpha_and_beta(tmp_path):
    """ONNX's defaults (alpha 0.2, beta 0.5): relu6(1.2 x + 3) / 6 with a scaling MUL first."""
    import onnx
    from onnx import TensorProto, helper

    from tinyopt.graph.onnx_import import load_onnx

    node = helper.make_node("HardSigmoid", ["x"], ["y"], alpha=0.2, beta=0.5)
    graph = helper.make_graph([node], "hsig", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 7])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 7])])
    path = tmp_path / "hsig.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    g = load_onnx(path)
    assert _ops(g) == ["MUL", "ADD", "RELU6", "MUL"]
    x = np.linspace(-5, 5, 7, dtype=np.float32).reshape(1, 7)
    np.testing.assert_allclose(Interpreter(g).run(x)[0], np.clip(0.2 * x + 0.5, 0, 1), atol=1e-6)


def test_float_model_with_the_swish_family_converts_and_runs_in_tflm():
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Hardswish(),
                            torch.nn.Conv2d(8, 8, 1), torch.nn.Hardsigmoid(), torch.nn.Conv2d(8, 6, 3),
                            torch.nn.SiLU())
    calib = np.random.default_rng(3).normal(size=(32, 3, 8, 8)).astype(np.float32)
    g = converted_matches_tflm(m, (3, 8, 8), calib, np.random.default_rng(4))
    assert {"HARD_SWISH", "LOGISTIC", "MUL"} <= set(_ops(g))


def test_spec_layer_and_activation():
    conv = {"type": "conv2d", "filters": 4, "kernel": 3, "activation": "hard_swish"}
    g = spec_to_graph({"input": [8, 8, 3], "layers": [conv, {"type": "hard_swish"}]})
    assert _ops(g) == ["CONV_2D", "HARD_SWISH", "HARD_SWISH"]
    assert g.tensors[g.outputs[0]].shape == (1, 6, 6, 4)


# (input scale, zero point, output scale, zero point, x, TFLM's output). For the first, hires / s_out in
# double gives the 31-bit multiplier 1976598483 = 30160.4993 x 2^16, in float32 1976598528 = 30160.5 x 2^16:
# the 16-bit multipliers 30160 and 30161, and the outputs 35 (TFLM's) and 36.
HARD_SWISH_TIES = [(0.045204706490039825, -31, 0.024556420743465424, 13, -12, 35),
                   (0.01762234978377819, 8, 0.006173945963382721, -14, 48, 56),
                   (0.02881159819662571, 0, 0.011030476540327072, -28, -71, -57),
                   (0.2165607511997223, 23, 0.08381874859333038, -67, 77, 72)]


@needs_cc
@pytest.mark.parametrize("si,zi,so,zo,x,want", HARD_SWISH_TIES)
def test_output_multiplier_is_the_double_ratio_on_a_rounding_tie(si, zi, so, zo, x, want, tmp_path):
    """TFLM takes hires input scale / output scale in double: the runtime and the C kernel give its output
    where the float32 ratio's 16-bit multiplier (one unit higher) gives the neighbouring one."""
    import dataclasses

    from ops._activation import c_outputs
    from tinyopt.ops.hard_swish import down_scale_int32_to_int16_multiplier
    from tinyopt.runtime.fixedpoint import quantize_multiplier

    g = _int8_model((1, 1, 1), si, zi, so, zo)
    xs = np.array([[[x]]], np.int8)
    assert int(run_tflm(graph_to_tflite_bytes(g), [xs])[0].ravel()[0]) == want
    interp = Interpreter(g)
    assert int(interp.run(xs)[0].ravel()[0]) == want
    assert int(c_outputs(g, xs, tmp_path).ravel()[0]) == want
    f32 = np.float32
    old, _ = quantize_multiplier(float(f32(f32(1 / 128) * f32(si)) / f32(so)))
    old16 = down_scale_int32_to_int16_multiplier(old)
    interp.params[0] = dataclasses.replace(interp.params[0], output_multiplier_fixedpoint_int16=old16)
    assert int(interp.run(xs)[0].ravel()[0]) != want  # the float32 ratio misses it
