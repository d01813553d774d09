"""SVD factorization: exact at full rank, Eckart-Young error, rank rules by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from tinyopt.compress.lowrank import choose_rank, factorize, finetune_, lowrank_
from tinyopt.errors import ConfigError


def test_choose_rank_by_hand():
    s = np.array([4.0, 3.0, 2.0, 1.0])  # energies 16, 9, 4, 1 of 30
    assert choose_rank(s, 10, 20, energy=0.5) == 1      # 16/30 = 0.53
    assert choose_rank(s, 10, 20, energy=0.8) == 2      # 25/30 = 0.83
    assert choose_rank(s, 10, 20, energy=29 / 30) == 3  # exactly reached at 29/30
    assert choose_rank(s, 10, 20, energy=1.0) == 4
    assert choose_rank(s, 10, 20, ratio=0.5) == 3       # r * (10 + 20) <= 100 -> r = 3
    assert choose_rank(s, 10, 20, ratio=0.01) == 1      # never below 1
    for kw in ({"energy": 0.0}, {"ratio": 1.5}, {}, {"energy": 0.5, "ratio": 0.5}):
        with pytest.raises(ConfigError):
            choose_rank(s, 10, 20, where="fc1", **kw)


def test_full_rank_is_exact_linear_and_conv():
    torch.manual_seed(0)
    lin = nn.Linear(20, 10)
    x = torch.randn(5, 20)
    torch.testing.assert_close(factorize(lin, 10)(x), lin(x), atol=1e-5, rtol=0)
    conv = nn.Conv2d(3, 8, 3, stride=2, padding=1, dilation=1)
    x = torch.randn(2, 3, 9, 9)
    torch.testing.assert_close(factorize(conv, 8)(x), conv(x), atol=1e-5, rtol=0)


def test_truncation_error_is_eckart_young():
    torch.manual_seed(1)
    u, _ = torch.linalg.qr(torch.randn(10, 10))
    v, _ = torch.linalg.qr(torch.randn(20, 10))
    s = torch.tensor([5.0, 4, 3, 2, 1, 0.5, 0.4, 0.3, 0.2, 0.1])
    lin = nn.Linear(20, 10, bias=False)
    with torch.no_grad():
        lin.weight.copy_(u @ torch.diag(s) @ v.T)
    f = factorize(lin, energy=0.95)  # cumulative 25, 41, 50, 54 of 55.55: 54/55.55 = 0.972 -> rank 4
    assert f[0].out_features == 4
    approx = f[1].weight @ f[0].weight
    err = torch.linalg.norm(lin.weight - approx).item()
    assert err == pytest.approx(float(torch.sqrt((s[4:] ** 2).sum())), rel=1e-4)


def test_lowrank_model_in_place_and_finetune():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(4, 16, 3), nn.ReLU(), nn.Flatten(), nn.Linear(16 * 4 * 4, 64), nn.ReLU(),
                          nn.Linear(64, 3))
    before = sum(p.numel() for p in model.parameters())
    ranks = lowrank_(model, ratio=0.25)
    # conv 16 x 36: 0.25 * 576 // 52 = 2; fc 64 x 256: 0.25 * 16384 // 320 = 12; fc 3 x 64: 48 // 67 -> 1,
    # but 1 * 67 = 67 < 192 weights, so it is replaced too.
    assert ranks == {"0": 2, "3": 12, "5": 1}
    assert sum(p.numel() for p in model.parameters()) < before / 3
    x = torch.randn(64, 4, 6, 6)
    y = torch.randint(0, 3, (64,))
    losses = []
    finetune_(model, [(x, y)], epochs=20, lr=1e-2, on_epoch=lambda e, loss: losses.append(loss))
    assert losses[-1] < losses[0]


def test_bad_layers():
    model = nn.Sequential(nn.Conv2d(4, 4, 3, groups=4), nn.Linear(3, 3))
    with pytest.raises(ConfigError, match="groups=4") as e:
        factorize(model[0], 1, where="0")
    assert "0:" in str(e.value)
    with pytest.raises(ConfigError, match="no Linear/Conv2d layer '0'"):
        lowrank_(model, energy=0.9, layers=["0"])
    with pytest.raises(ConfigError, match="rank 5 is outside 1..3"):
        factorize(model[1], 5)
    with pytest.raises(ConfigError, match="cannot factorize a ReLU"):
        factorize(nn.ReLU(), 1)


def test_recipe_step_lowrank():
    from tinyopt.compress._steps import run_recipe
    from tinyopt.compress.recipe import Recipe, StepContext

    torch.manual_seed(4)
    model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 4))
    x, y = torch.randn(64, 32), torch.randint(0, 4, (64,))
    out, rows = run_recipe(model, Recipe.from_dict({"steps": [{"lowrank": {"energy": 0.5, "epochs": 1}}]}),
                           StepContext(x, y, x, y))
    assert isinstance(out[0], nn.Sequential) and rows[1].params < rows[0].params
