"""ELU against TFLM (75 seeded configurations, 56 of them int8; every int8 value on 40 random scale pairs), a
hand check of the lookup table, its C kernel against the runtime, conversion, and the doors (alpha 1 only)."""

from __future__ import annotations

import math

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
from tinyopt.graph.ir import Tensor
from tinyopt.graph.torch_import import from_torch

pytestmark = pytest.mark.usefixtures("one_torch_thread")
ALL_INT8 = np.arange(-128, 128, dtype=np.int8).reshape(16, 1, 16)


def _model(shape, si=None, zi=0, so=None, zo=0):
    if si is None:
        return single_op_model("ELU", [Tensor("x", shape)], Tensor("y", (1,)))
    return single_op_model("ELU", [qtensor("x", shape, si, zi)], qtensor("y", (1,), so, zo))


@pytest.mark.parametrize("seed", range(75))
def test_elu_matches_tflm(seed):
    rng = np.random.default_rng(seed)
    shape = random_shape(rng)
    if seed % 4 == 0:
        x = (rng.normal(size=(5, *shape[1:])) * 3).astype(np.float32)
        assert_matches_reference(_model(shape), x)
        return
    si, zi = random_qparams(rng)
    so, zo = si * 10 ** rng.uniform(-1, 1), int(rng.integers(-128, 128))
    assert_matches_reference(_model(shape, si, zi, so, zo), random_int8(rng, (6, *shape[1:])))


def test_every_int8_value_on_random_scales():
    """The whole table, where float rounding decides: 40 scale pairs, including outputs finer than inputs."""
    rng = np.random.default_rng(99)
    for _ in range(40):
        si, zi = random_qparams(rng, -3, 1)
        assert_matches_reference(_model((1, 1, 16), si, zi, si * 10 ** rng.uniform(-2, 1),
                                        int(rng.integers(-128, 128))), ALL_INT8)


def test_table_by_hand():
    """Scale 1/16 in, 1/64 out, zero points 0: q = -16 is -1.0 -> e^-1 - 1 = -0.63212 -> x 64 = -40.46 -> -40;
    q = 8 is 0.5 -> 32; q = -128 is -8.0 -> -0.99966 x 64 = -63.98 -> -64; q = 127 saturates at 127."""
    g = _model((1, 4), 1 / 16, 0, 1 / 64, 0)
    p = ops.get("ELU").prepare(g, g.nodes[0], True)
    assert round((math.exp(-1) - 1) * 64) == -40
    assert [int(p.table[np.uint8(np.int8(v))]) for v in (-16, 8, -128, 127)] == [-40, 32, -64, 127]
    assert_matches_reference(g, np.array([[-16, 8, -128, 127]], np.int8))


def test_an_overflowing_table_is_refused():
    g = _model((1, 4), 100.0, 0, 1e-8, 0)
    with pytest.raises(UnsupportedOpError, match=r"\(ELU\).*lookup table overflows int32.*Fix: calibrate"):
        ops.get("ELU").prepare(g, g.nodes[0], True)


@needs_cc
def test_c_kernel_equals_runtime(tmp_path):
    rng = np.random.default_rng(16)
    for k in range(3):
        si, zi = random_qparams(rng, -2, 0)
        g = _model((1, 8, 32), si, zi, si * 10 ** rng.uniform(-1, 1), int(rng.integers(-128, 128)))
        xs = np.concatenate([ALL_INT8.reshape(1, 8, 32), random_int8(rng, (3, 8, 32))])
        assert_c_matches_runtime(g, xs, tmp_path / str(k), "lut")


# -- doors -------------------------------------------------------------------------------------------------

class Elus(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.act = torch.nn.ELU()

    def forward(self, x):
        return self.act(x) - torch.nn.functional.elu(x * 2)


def test_doors_match_pytorch_and_onnxruntime(tmp_path):
    x = (np.random.default_rng(1).normal(size=(3, 2, 5, 4)) * 2).astype(np.float32)
    for g in (torch_graph_matches(Elus(), (2, 5, 4), x),
              onnx_graph_matches(Elus(), (2, 5, 4), x, tmp_path / "elu.onnx")):
        assert [n.op for n in g.nodes].count("ELU") == 2


def test_an_alpha_other_than_one_is_refused():
    with pytest.raises(UnsupportedOpError, match=r"ELU with alpha 0.5 \(TFLite's ELU has alpha 1\).*Fix: tr"):
        from_torch(torch.nn.Sequential(torch.nn.ELU(alpha=0.5)), (4,))


def test_float_model_converts_and_runs_in_tflm():
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Conv2d(2, 6, 3), torch.nn.ELU(), torch.nn.Conv2d(6, 4, 1),
                            torch.nn.ELU())
    calib = np.random.default_rng(3).normal(size=(32, 2, 6, 6)).astype(np.float32)
    g = converted_matches_tflm(m, (2, 6, 6), calib, np.random.default_rng(4))
    assert [n.op for n in g.nodes].count("ELU") == 2
