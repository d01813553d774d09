"""BN folding on torch modules: eval-mode outputs equal the unfused model within 1e-5."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tinyopt.compress.fuse import NORMS, find_fusable, fold_bn, fold_bn_, fold_bn_model, fuse_modules_
from tinyopt.errors import ConfigError


def _randomize_bn(model: nn.Module, x: torch.Tensor) -> None:
    """Give every BN non-trivial statistics and affine parameters, as after training."""
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(x * 2 + 0.5)
        for m in model.modules():
            if isinstance(m, NORMS) and m.affine:
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    model.eval()


@pytest.mark.parametrize("bias", [True, False])
def test_fold_conv_bn_matches_by_hand_and_by_torch(bias):
    torch.manual_seed(0)
    conv, bn = nn.Conv2d(3, 4, 3, padding=1, bias=bias), nn.BatchNorm2d(4)
    x = torch.randn(2, 3, 8, 8)
    seq = nn.Sequential(conv, bn)
    _randomize_bn(seq, x)
    fused = fold_bn(conv, bn)
    torch.testing.assert_close(fused(x), seq(x), atol=1e-5, rtol=0)
    # by hand for channel 0: s = gamma / sqrt(var + eps); b' = (b - mean) * s + beta
    s = bn.weight[0] / torch.sqrt(bn.running_var[0] + bn.eps)
    b = conv.bias[0] if bias else 0.0
    torch.testing.assert_close(fused.bias[0], (b - bn.running_mean[0]) * s + bn.bias[0])
    torch.testing.assert_close(fused.weight[0], conv.weight[0] * s)


def test_fold_linear_bn1d_relu_and_depthwise():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 2))
    x = torch.randn(16, 6)
    _randomize_bn(model, x)
    ref = model(x)
    groups = fold_bn_(model)
    assert groups == [["0", "1", "2"]]
    torch.testing.assert_close(model(x), ref, atol=1e-5, rtol=0)
    assert not any(isinstance(m, NORMS) for m in model.modules())

    dw = nn.Sequential(nn.Conv2d(4, 4, 3, groups=4, bias=False), nn.BatchNorm2d(4, affine=False), nn.ReLU6())
    x = torch.randn(2, 4, 6, 6)
    _randomize_bn(dw, x)
    folded = fold_bn_model(dw)
    torch.testing.assert_close(folded(x), dw(x), atol=1e-5, rtol=0)
    assert any(isinstance(m, NORMS) for m in dw.modules())  # the non-mutating twin left dw alone


def test_nested_padding_sequential_is_found():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Sequential(nn.ZeroPad2d(1), nn.Conv2d(1, 3, 3)), nn.BatchNorm2d(3), nn.ReLU(),
                          nn.Flatten(), nn.Linear(3 * 5 * 5, 2))
    assert find_fusable(model) == [["0.1", "1", "2"]]
    x = torch.randn(4, 1, 5, 5)
    _randomize_bn(model, x)
    ref = model(x)
    fold_bn_(model)
    torch.testing.assert_close(model(x), ref, atol=1e-5, rtol=0)


def test_bad_fusions():
    with pytest.raises(ConfigError, match="BatchNorm has 3 channels but the layer has 4") as e:
        fold_bn(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(3), where="features.0")
    assert "features.0" in str(e.value)
    with pytest.raises(ConfigError, match="no running statistics"):
        fold_bn(nn.Linear(2, 3), nn.BatchNorm1d(3, track_running_stats=False))
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.Tanh())
    with pytest.raises(ConfigError, match="Tanh, not ReLU"):
        fuse_modules_(model, [["0", "1", "2"]])
    with pytest.raises(ConfigError, match="no module 'x'"):
        fuse_modules_(model, [["x", "1"]])


def test_recipe_step_fold_bn():
    from tinyopt.compress._steps import run_recipe
    from tinyopt.compress.recipe import Recipe, StepContext

    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(64, 3))
    x = torch.randn(32, 1, 6, 6)
    _randomize_bn(model, x)
    ref = model(x)
    out, rows = run_recipe(model, Recipe.from_dict({"steps": ["fold_bn"]}), StepContext(x, ref.argmax(1), x,
                                                                                         ref.argmax(1)))
    torch.testing.assert_close(out(x), ref, atol=1e-5, rtol=0)
    assert rows[1].params == rows[0].params - 8  # BatchNorm's gamma and beta are gone
