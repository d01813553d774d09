"""convert: low-bit grids kept exact, shared weights quantized per tensor, encodings marked (issue #17)."""

from __future__ import annotations

import numpy as np
import pytest

from tinyopt.convert.quantize import grid_scales, quantize_weight
from tinyopt.graph.ir import Encoding


def test_a_4_bit_grid_keeps_its_integers():
    rng = np.random.default_rng(0)
    step = rng.uniform(0.01, 0.1, 6).astype(np.float32)
    k = rng.integers(-7, 8, size=(6, 3, 3, 2))
    k[:, 0, 0, 0] = 7  # every channel reaches the grid's end
    w = (k * step[:, None, None, None]).astype(np.float32)
    q, scale = quantize_weight(w, 0)
    np.testing.assert_array_equal(q, k)  # not re-rounded to k * 127 / 7
    np.testing.assert_allclose(scale, step, rtol=1e-6)


def test_ternary_channels_and_a_folded_batchnorm_scale_stay_on_their_grid():
    alpha = np.float32([0.3, 0.05])
    t = np.array([[1, 0, -1, 1], [0, -1, -1, 0]])
    w = (t * alpha[:, None]).astype(np.float32) * np.float32([[1.7], [0.4]])  # per-channel BN scale
    q, _ = quantize_weight(w, 0)
    np.testing.assert_array_equal(q, t)
    assert np.isfinite(grid_scales(w, 0)).all()


def test_continuous_weights_quantize_as_before():
    w = np.random.default_rng(1).normal(size=(4, 50)).astype(np.float32)
    assert np.isnan(grid_scales(w, 0)).all()
    q, scale = quantize_weight(w, 0)
    np.testing.assert_allclose(scale, np.abs(w).max(axis=1) / 127, rtol=1e-6)
    assert np.abs(q).max() == 127


def test_shared_weights_are_quantized_per_tensor_when_encoding():
    rng = np.random.default_rng(2)
    codebook = rng.normal(size=16).astype(np.float32)
    w = codebook[rng.integers(0, 16, size=(8, 40))]
    q, scale = quantize_weight(w, 0, codebook=True)
    assert scale.shape == (1,)  # one table of int8 values for every channel
    assert len(np.unique(q)) <= 16
    _, per_channel = quantize_weight(w, 0)
    assert per_channel.shape == (8,)


@pytest.mark.usefixtures("one_torch_thread")
def test_a_compressed_model_converts_with_its_encodings():
    import torch

    from tinyopt.convert.convert import convert_torch
    from tinyopt.graph.encoding import check

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(4 * 6 * 6, 5))
    with torch.no_grad():
        w = net[0].weight
        step = w.abs().amax(dim=(1, 2, 3), keepdim=True) / 7
        w.copy_(torch.round(w / step).clamp(-7, 7) * step)  # 4-bit per-channel fake quantization
        lin = net[3].weight
        lin.mul_((torch.rand_like(lin) < 0.1).float())      # 90 % pruned
    x = np.random.default_rng(0).normal(size=(16, 1, 8, 8)).astype(np.float32)
    plain = convert_torch(net, x, (1, 8, 8))
    coded = convert_torch(net, x, (1, 8, 8), encode=True)
    assert all(t.encoding is None for t in plain.tensors.values())
    weights = [coded.tensors[n.inputs[1]] for n in coded.nodes if len(n.inputs) > 1 and n.inputs[1]]
    assert weights[0].encoding == Encoding(4)
    assert weights[1].encoding.sparse
    for t in weights:
        check(t)
    np.testing.assert_array_equal(plain.tensors[plain.nodes[0].inputs[1]].data, weights[0].data)  # grid exact
